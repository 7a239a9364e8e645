// `dagu-auth convert`: reads Dagu's auth: configuration (a config file and/or the DAGU_AUTH_* variables)
// and writes the DaguAuth (resources.yaml, for Git) and the Secrets it references (secrets.yaml, never
// for Git). YAML goes to stdout or --out-dir; warnings, notes and next steps go to stderr, never a value.
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ConvertError, convertDaguAuthConfig, shellQuote, type Conversion } from "./convert.ts";
import { RESOURCES_FILE, SECRETS_FILE, renderCombined, renderResources, renderSecrets } from "./render.ts";
import { readStandaloneState } from "./standalone-state.ts";
import { parseDaguConfigYaml, type DaguConfigDocument } from "./yaml-input.ts";

export const CONVERT_USAGE = `usage: dagu-auth convert [CONFIG_FILE] [--env] [--state-dir DIR] [--namespace NS] [--name NAME] [--out-dir DIR]

Turns Dagu's auth: configuration into a DaguAuth and the Secrets it references.

  CONFIG_FILE        a Dagu config file (its auth:, tls: and remote_nodes) or a file holding only the auth: block
  --env              also read the DAGU_AUTH_* variables (and DAGU_CERT_FILE, DAGU_KEY_FILE); they win over the file
  --state-dir DIR    a standalone sidecar's --state-dir: the users, API keys and webhooks created through it
                     become DaguUser, DaguApiKey and DaguWebhook resources (new passwords and keys: see the warnings)
  --name NAME        name of the DaguAuth; the Secrets are named after it (default dagu)
  -n, --namespace NS set metadata.namespace (default: none, kubectl's current namespace applies)
  --out-dir DIR      write DIR/${RESOURCES_FILE} (for Git) and DIR/${SECRETS_FILE} (never for Git)
                     instead of both on stdout

Warnings (keys that are not converted, such as OIDC) and the next steps go to stderr.`;

export interface ConvertIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: ConvertIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

interface ConvertArgs {
  file?: string;
  env: boolean;
  name: string;
  namespace?: string;
  outDir?: string;
  stateDir?: string;
}

class UsageError extends Error {}

function parseConvertArgs(argv: readonly string[]): ConvertArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        env: { type: "boolean" },
        name: { type: "string" },
        namespace: { type: "string", short: "n" },
        "out-dir": { type: "string" },
        "state-dir": { type: "string" },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`one config file at most, got ${positionals.length}`);
  const file = positionals[0];
  if (file === undefined && !values.env) throw new UsageError("give a Dagu config file, --env, or both");
  for (const [flag, value] of [["--name", values.name], ["--namespace", values.namespace], ["--out-dir", values["out-dir"]], ["--state-dir", values["state-dir"]]] as const) {
    if (value === "") throw new UsageError(`${flag} must not be empty`);
  }
  return { file, env: values.env ?? false, name: values.name ?? "dagu", namespace: values.namespace, outDir: values["out-dir"], stateDir: values["state-dir"] };
}

/** Runs the command; returns the exit code (0 done, 1 not convertible, 2 usage). */
export async function runConvert(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, io: ConvertIo = processIo): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout(`${CONVERT_USAGE}\n`);
    return 0;
  }
  let args: ConvertArgs;
  try {
    args = parseConvertArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr(`dagu-auth convert: ${error.message}\n\n${CONVERT_USAGE}\n`);
    return 2;
  }
  try {
    let input: DaguConfigDocument | undefined;
    if (args.file !== undefined) {
      const text = await readFile(args.file, "utf8").catch((error: unknown) => {
        throw new ConvertError(`cannot read ${args.file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
      });
      try {
        input = parseDaguConfigYaml(text, args.file);
      } catch (error) {
        throw new ConvertError((error as Error).message, { cause: error });
      }
    }
    const state = args.stateDir !== undefined ? await readStandaloneState(args.stateDir, (message) => new ConvertError(message)) : undefined;
    const conversion = convertDaguAuthConfig(
      { document: input?.value, nonStrings: input?.nonStrings, ...(args.env ? { env } : {}), ...(state ? { state } : {}) },
      { name: args.name, ...(args.namespace !== undefined ? { namespace: args.namespace } : {}) },
    );
    const origin = [args.file, args.env ? "the DAGU_AUTH_* environment" : undefined, args.stateDir !== undefined ? `--state-dir ${args.stateDir}` : undefined].filter((s) => s !== undefined).join(" and ");
    reportFindings(conversion, io);
    if (args.outDir === undefined) {
      io.stdout(renderCombined(conversion, origin));
      io.stderr(
        conversion.secrets.length > 0
          ? `\nstdout holds ${RESOURCES_FILE} and then ${SECRETS_FILE}, each under its "# --- " header; use --out-dir to get two files.\n` +
              `REMINDER: the ${SECRETS_FILE} part holds secret values in plain text: never commit it to Git.\n`
          : `\nstdout holds ${RESOURCES_FILE}, safe for Git; there is no ${SECRETS_FILE}: nothing secret to write.\n`,
      );
      reportNextSteps(conversion, args, undefined, io);
    } else {
      await writeFiles(conversion, origin, args, io);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof ConvertError)) throw error;
    io.stderr(`dagu-auth convert: ${error.message}\n`);
    return 1;
  }
}

function reportFindings(conversion: Conversion, io: ConvertIo): void {
  for (const w of conversion.warnings) io.stderr(`WARNING: ${w.key}: ${w.message}\n`);
  for (const n of conversion.notes) io.stderr(`note: ${n}\n`);
}

async function writeFiles(conversion: Conversion, origin: string, args: ConvertArgs, io: ConvertIo): Promise<void> {
  const dir = args.outDir!;
  await mkdir(dir, { recursive: true });
  const resourcesPath = join(dir, RESOURCES_FILE);
  const secretsPath = join(dir, SECRETS_FILE);
  await writeFile(resourcesPath, renderResources(conversion, origin), { mode: 0o644 });
  const children = conversion.resources.length > 0 ? ` and ${conversion.resources.length} users, API keys and webhooks` : "";
  io.stderr(`\nwrote ${resourcesPath}: DaguAuth ${conversion.daguAuth.metadata.name}${children}. Safe for Git: no secret values.\n`);
  const secrets = renderSecrets(conversion, origin);
  if (secrets !== undefined) {
    await writeFile(secretsPath, secrets, { mode: 0o600 });
    await chmod(secretsPath, 0o600); // writeFile's mode applies only to a new file
    const names = conversion.secrets.map((s) => s.metadata.name).join(", ");
    io.stderr(`wrote ${secretsPath}: Secret ${names}. Secret values in plain text: do NOT commit it to Git.\n`);
    io.stderr(`REMINDER: apply ${SECRETS_FILE}, then delete it, or seal or encrypt it before it goes anywhere near Git (docs/gitops.md).\n`);
  } else {
    io.stderr(`no ${SECRETS_FILE}: nothing secret to write.\n`);
    const stale = await stat(secretsPath).then(() => true, () => false);
    if (stale) io.stderr(`WARNING: ${secretsPath} is left from an earlier run and does not belong to this conversion: delete it.\n`);
  }
  reportNextSteps(conversion, args, { resources: resourcesPath, secrets: secrets !== undefined ? secretsPath : undefined }, io);
}

function reportNextSteps(conversion: Conversion, args: ConvertArgs, files: { resources: string; secrets?: string } | undefined, io: ConvertIo): void {
  const ns = args.namespace !== undefined ? ` -n ${args.namespace}` : "";
  const steps = [...conversion.commands];
  if (files) {
    if (files.secrets) steps.push(`kubectl apply${ns} -f ${shellQuote(files.secrets)}`);
    steps.push(`kubectl apply${ns} -f ${shellQuote(files.resources)}`);
  }
  if (steps.length > 0) io.stderr(`\nnext:\n${steps.map((s) => `  ${s}\n`).join("")}`);
}
