// Dagu v2.15.1's source, read at the tag `v2.15.1` of the clone in the project's cache (DAGU_SOURCE, default
// ~/.cache/dagu-auth-operator/src/dagu; scripts/build-components.sh dagu clones it or says what to put there),
// never its working tree: the OpenAPI document and its operations, for the conformance and differential tests.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { parse } from "yaml";
import { z } from "zod";
import { cacheDir } from "../../dev/components.ts";

const execFileAsync = promisify(execFile);

export const DAGU_SOURCE_VERSION = "v2.15.1";
export const DAGU_SOURCE_DIR = process.env.DAGU_SOURCE ?? join(cacheDir(), "src", "dagu");
export const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

export async function gitShow(...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("git", ["-C", DAGU_SOURCE_DIR, ...args], { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 });
  return stdout;
}

/** Undefined when the clone or its tag is there; else what to do, for the test's failure message. */
export async function daguSourceMissing(): Promise<string | undefined> {
  const tagMissing = await gitShow("rev-parse", "--verify", "--quiet", `${DAGU_SOURCE_VERSION}^{commit}`).then(
    () => false,
    () => true,
  );
  if (existsSync(DAGU_SOURCE_DIR) && !tagMissing) return undefined;
  return (
    `Dagu ${DAGU_SOURCE_VERSION}'s source is not at ${DAGU_SOURCE_DIR} (a git clone of https://github.com/dagucloud/dagu ` +
    `holding the tag ${DAGU_SOURCE_VERSION}). Run scripts/build-components.sh dagu, which clones it or says what to ` +
    `put where, or set DAGU_SOURCE to such a clone.`
  );
}

// Only what the tests read; everything else in the document passes through.
const Ref = z.object({ $ref: z.string() });
const Parameter = z.looseObject({ name: z.string(), in: z.string(), required: z.boolean().optional(), schema: z.unknown().optional() });
const Operation = z.looseObject({
  operationId: z.string().min(1),
  parameters: z.array(z.union([Ref, Parameter])).optional(),
  requestBody: z.looseObject({ required: z.boolean().optional(), content: z.record(z.string(), z.unknown()).optional() }).optional(),
  responses: z.record(z.string(), z.looseObject({ content: z.record(z.string(), z.unknown()).optional() })).optional(),
});
const OpenAPIDocument = z.looseObject({
  openapi: z.string(),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
  components: z.looseObject({ parameters: z.record(z.string(), Parameter).optional() }).optional(),
});

export interface SpecParameter {
  readonly name: string;
  readonly in: string;
  readonly required: boolean;
}

export interface SpecOperation {
  readonly method: string;
  readonly path: string;
  readonly operationId: string;
  /** It answers text/event-stream. */
  readonly streaming: boolean;
  /** Path, query and header parameters, references resolved. */
  readonly parameters: readonly SpecParameter[];
  /** The request body's media types (empty: none). */
  readonly bodyTypes: readonly string[];
}

/** The document's operations, in its order. */
export function specOperations(spec: string): SpecOperation[] {
  const document = OpenAPIDocument.parse(parse(spec, { maxAliasCount: -1 }));
  const shared = document.components?.parameters ?? {};
  const resolve = (p: z.infer<typeof Ref> | z.infer<typeof Parameter>): SpecParameter => {
    const ref = Ref.safeParse(p);
    const found = ref.success ? shared[ref.data.$ref.split("/").at(-1)!] : Parameter.parse(p);
    if (!found) throw new Error(`unresolved parameter ${JSON.stringify(p)}`);
    return { name: found.name, in: found.in, required: found.required ?? false };
  };
  const found: SpecOperation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    const common = z.array(z.union([Ref, Parameter])).optional().parse(item.parameters) ?? [];
    for (const method of HTTP_METHODS) {
      if (!(method in item)) continue;
      const operation = Operation.parse(item[method]);
      const streaming = Object.values(operation.responses ?? {}).some((response) =>
        Object.keys(response.content ?? {}).some((type) => type.startsWith("text/event-stream")),
      );
      found.push({
        method: method.toUpperCase(),
        path,
        operationId: operation.operationId,
        streaming,
        parameters: [...common, ...(operation.parameters ?? [])].map(resolve),
        bodyTypes: Object.keys(operation.requestBody?.content ?? {}),
      });
    }
  }
  return found;
}

/** `api/v1/api.yaml` at the tag. */
export const daguOpenApiDocument = (): Promise<string> => gitShow("show", `${DAGU_SOURCE_VERSION}:api/v1/api.yaml`);
