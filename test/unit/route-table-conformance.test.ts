// The route table against Dagu v2.15.1's own OpenAPI document (`api/v1/api.yaml` of the Go module
// `github.com/dagucloud/dagu/v2@v2.15.1`, read from the Go module cache, downloaded when missing).
// When the module cannot be had (no Go, or the module proxy refuses it: see docs/adr/0002) the
// comparison is skipped with the reason and the table's own invariants are still checked.
// DAGU_OPENAPI_SPEC=/path/to/api.yaml points the test at a copy of the document instead.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { z } from "zod";
import { roleAtLeast } from "../../src/sidecar/roles.ts";
import { DAGU_ROUTES, isUnauthenticated, type DaguRoute } from "../../src/sidecar/routes.ts";

const execFileAsync = promisify(execFile);

const DAGU_MODULE = "github.com/dagucloud/dagu/v2";
const DAGU_VERSION = "v2.15.1";
const SPEC_IN_MODULE = join("api", "v1", "api.yaml");
const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

type Located = { readonly file: string } | { readonly skip: string };

async function goModCache(): Promise<string> {
  const { stdout } = await execFileAsync("go", ["env", "GOMODCACHE"], { timeout: 60_000 });
  return stdout.trim();
}

const GoModDownload = z.object({ Dir: z.string().optional(), Error: z.string().optional() });

/** `go mod download -json` prints one JSON object, also on failure (with `Error`). */
async function goModDownload(): Promise<{ dir?: string; error?: string }> {
  const workDir = await mkdtemp(join(tmpdir(), "dagu-openapi-"));
  try {
    const result = await execFileAsync("go", ["mod", "download", "-json", `${DAGU_MODULE}@${DAGU_VERSION}`], {
      cwd: workDir,
      env: { ...process.env, GOFLAGS: "-mod=mod" },
      timeout: 300_000,
      maxBuffer: 4 * 1024 * 1024,
    }).catch((error: unknown) => {
      const stdout = (error as { stdout?: unknown }).stdout;
      if (typeof stdout === "string" && stdout.trim().startsWith("{")) return { stdout };
      throw error;
    });
    const parsed = GoModDownload.parse(JSON.parse(result.stdout));
    return { dir: parsed.Dir, error: parsed.Error };
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function locateSpec(): Promise<Located> {
  const explicit = process.env.DAGU_OPENAPI_SPEC;
  if (explicit) {
    return existsSync(explicit) ? { file: explicit } : { skip: `DAGU_OPENAPI_SPEC=${explicit} does not exist` };
  }
  try {
    const cached = join(await goModCache(), `${DAGU_MODULE}@${DAGU_VERSION}`, SPEC_IN_MODULE);
    if (existsSync(cached)) return { file: cached };
    const downloaded = await goModDownload();
    if (downloaded.dir) {
      const file = join(downloaded.dir, SPEC_IN_MODULE);
      return existsSync(file) ? { file } : { skip: `${file} is not in the downloaded module` };
    }
    return { skip: `go mod download ${DAGU_MODULE}@${DAGU_VERSION} failed: ${downloaded.error ?? "no module directory"}` };
  } catch (error) {
    return { skip: `cannot use Go to fetch ${DAGU_MODULE}@${DAGU_VERSION}: ${(error as Error).message}` };
  }
}

// Only what the comparison reads; everything else in the document passes through.
const Operation = z.looseObject({
  operationId: z.string().min(1),
  responses: z.record(z.string(), z.looseObject({ content: z.record(z.string(), z.unknown()).optional() })).optional(),
});
const OpenAPIDocument = z.looseObject({
  openapi: z.string(),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
});

interface SpecOperation {
  readonly method: string;
  readonly path: string;
  readonly operationId: string;
  readonly streaming: boolean;
}

function operationsOf(documentText: string): SpecOperation[] {
  const document = OpenAPIDocument.parse(parse(documentText, { maxAliasCount: -1 }));
  const operations: SpecOperation[] = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of HTTP_METHODS) {
      if (!(method in item)) continue;
      const operation = Operation.parse(item[method]);
      const streaming = Object.values(operation.responses ?? {}).some((response) =>
        Object.keys(response.content ?? {}).some((type) => type.startsWith("text/event-stream")),
      );
      operations.push({ method: method.toUpperCase(), path, operationId: operation.operationId, streaming });
    }
  }
  return operations;
}

const key = (method: string, path: string): string => `${method} ${path}`;
const openapiRoutes = DAGU_ROUTES.filter((route) => route.origin !== "router");

const located = await locateSpec();

describe(`route table vs Dagu ${DAGU_VERSION} OpenAPI document`, () => {
  const skip = "skip" in located ? located.skip : false;
  let operations: SpecOperation[] | undefined;
  const load = async (): Promise<SpecOperation[]> => {
    if (!("file" in located)) throw new Error("no OpenAPI document");
    operations ??= operationsOf(await readFile(located.file, "utf8"));
    return operations;
  };

  test("every OpenAPI operation has an entry with the same method, path and operationId", { skip }, async () => {
    const byKey = new Map(openapiRoutes.map((route) => [key(route.method, route.path), route]));
    const missing: string[] = [];
    const renamed: string[] = [];
    for (const operation of await load()) {
      const route = byKey.get(key(operation.method, operation.path));
      if (!route) missing.push(`${key(operation.method, operation.path)} (${operation.operationId})`);
      else if (route.operationId !== operation.operationId) {
        renamed.push(`${key(operation.method, operation.path)}: table ${route.operationId}, spec ${operation.operationId}`);
      }
    }
    // missing: refused by the sidecar until added; renamed: same route, other operationId.
    assert.deepEqual({ missing, renamed }, { missing: [], renamed: [] });
  });

  test("every OpenAPI entry of the table exists in the document", { skip }, async () => {
    const inSpec = new Set((await load()).map((operation) => key(operation.method, operation.path)));
    const extra = openapiRoutes.filter((route) => !inSpec.has(key(route.method, route.path)));
    assert.deepEqual(
      extra.map((route) => `${key(route.method, route.path)} (${route.operationId})`),
      [],
      "table entries without an operation (mark router-only routes with origin: \"router\")",
    );
  });

  test("router-only entries are really outside the document", { skip }, async () => {
    const inSpec = new Set((await load()).map((operation) => key(operation.method, operation.path)));
    for (const route of DAGU_ROUTES.filter((r) => r.origin === "router")) {
      assert.ok(!inSpec.has(key(route.method, route.path)), `${route.operationId} is in the OpenAPI document now`);
    }
  });

  test("operations answering text/event-stream are marked streaming", { skip }, async () => {
    const byKey = new Map(DAGU_ROUTES.map((route) => [key(route.method, route.path), route]));
    for (const operation of (await load()).filter((o) => o.streaming)) {
      const route = byKey.get(key(operation.method, operation.path));
      assert.ok(route?.streaming, `${key(operation.method, operation.path)} streams but is not marked`);
    }
  });
});

describe("route table invariants", () => {
  test("method and path pairs and operationIds are unique", () => {
    const pairs = DAGU_ROUTES.map((route) => key(route.method, route.path));
    assert.equal(new Set(pairs).size, pairs.length);
    const ids = DAGU_ROUTES.map((route) => route.operationId);
    assert.equal(new Set(ids).size, ids.length);
  });

  test("size of the table as derived (211 OpenAPI operations, 5 router routes)", () => {
    // A tripwire for reviewers: a changed count must come with a changed docs/route-permissions.md.
    assert.equal(openapiRoutes.length, 211);
    assert.equal(DAGU_ROUTES.length - openapiRoutes.length, 5);
  });

  test("exactly Dagu's public routes skip authentication", () => {
    const open = DAGU_ROUTES.filter(isUnauthenticated).map((route) => key(route.method, route.path)).sort();
    assert.deepEqual(open, ["GET /health", "POST /auth/login", "POST /auth/setup", "POST /webhooks/{fileName}"]);
    const health = DAGU_ROUTES.find((route) => route.path === "/health");
    assert.equal(health?.access, "public");
  });

  test("the sidecar answers auth, users, API keys, the webhook trigger and webhook reads", () => {
    const sidecar = DAGU_ROUTES.filter((route) => route.access === "sidecar");
    const expected = (route: DaguRoute): boolean =>
      route.path.startsWith("/auth/") ||
      route.path === "/users" ||
      route.path.startsWith("/users/") ||
      route.path === "/api-keys" ||
      route.path.startsWith("/api-keys/") ||
      (route.method === "POST" && route.path === "/webhooks/{fileName}") ||
      (route.method === "GET" && (route.path === "/webhooks" || route.path === "/dags/{fileName}/webhook"));
    assert.deepEqual(
      sidecar.map((route) => route.operationId).sort(),
      DAGU_ROUTES.filter(expected).map((route) => route.operationId).sort(),
    );
  });

  test("streaming routes always need a credential", () => {
    const streams = DAGU_ROUTES.filter((route) => route.streaming || route.path.startsWith("/events/"));
    assert.ok(streams.length >= 4);
    for (const route of streams) {
      assert.equal(isUnauthenticated(route), false, route.operationId);
      assert.ok(roleAtLeast(route.minRole, "viewer"));
    }
  });

  test("inline specs and code-changing routes need developer or above", () => {
    const find = (method: string, path: string): DaguRoute => {
      const route = DAGU_ROUTES.find((r) => r.method === method && r.path === path);
      assert.ok(route, `${method} ${path}`);
      return route;
    };
    for (const [method, path] of [
      ["POST", "/dag-runs"],
      ["POST", "/dag-runs/enqueue"],
      ["POST", "/dags"],
      ["PUT", "/dags/{fileName}/spec"],
      ["POST", "/dag-runs/{name}/{dagRunId}/edit-retry"],
      ["POST", "/sync/pull"],
      ["PUT", "/settings/base-config"],
    ] as const) {
      assert.ok(roleAtLeast(find(method, path).minRole, "developer"), `${method} ${path}`);
      assert.equal(roleAtLeast("operator", find(method, path).minRole), false, `${method} ${path}`);
    }
  });

  test("users, API keys, remote nodes, license and the terminal are admin only", () => {
    for (const route of DAGU_ROUTES) {
      if (/^\/(users|api-keys|remote-nodes)(\/|$)|^\/license\/(activate|deactivate)$|^\/terminal\//.test(route.path)) {
        assert.equal(route.minRole, "admin", `${route.method} ${route.path}`);
      }
    }
  });
});
