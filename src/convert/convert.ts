// `dagu-auth convert`, the pure part: Dagu's `auth:` configuration (a config file's document and/or the
// DAGU_AUTH_* variables) in, a DaguAuth and the Secrets it references out, with a warning for every key
// that is not converted. The settings are read by the sidecar's own parser (dagu-config-source.ts), so
// the sidecar's --config and convert read Dagu's configuration the same way.
import { z } from "zod";
import { API_VERSION, objectName } from "../api/common.ts";
import { DaguAuth, type DaguAuthSpecInput } from "../api/dagu-auth.ts";
import { MIN_PASSWORD_LENGTH } from "../common/password-hash.ts";
import { isShortTokenSecret, shortTokenSecretWarning } from "../common/token-secret.ts";
import { mergeDaguAuthSettings, parseAuthBlock, tokenTtlSeconds, type AuthBlock, type DaguAuthSetting } from "../dagu/auth-config.ts";
import { CONTAINERS, daguEnvKey, daguKey, envLabel } from "./dagu-keys.ts";
import { parseDaguOidc, readDaguOidc } from "../dagu/oidc-config.ts";
import { cleanDaguBasePath } from "../api/base-path.ts";
import type { SidecarState } from "../sidecar/sources/state-dir.ts";
import type { SecretManifest, Warning } from "./manifests.ts";
import { convertStandaloneState, type ChildManifest } from "./standalone-state.ts";

/** A refusal: the configuration cannot be converted as it is. The message names the key. */
export class ConvertError extends Error {}

export interface ConvertOptions {
  /** metadata.name of the DaguAuth; the Secrets are named after it. */
  name: string;
  namespace?: string;
}

export interface ConvertSource {
  /** The parsed config file (a whole Dagu config with `auth:`, or a bare auth block); absent: none. */
  document?: unknown;
  /** Scalars of the file written as a YAML number or boolean (see yaml-input.ts). */
  nonStrings?: readonly { path: readonly string[]; type: string }[];
  /** The environment, when the DAGU_AUTH_* variables count (`--env`); they win over the file. */
  env?: NodeJS.ProcessEnv;
  /** A standalone sidecar's --state-dir content: its users, API keys and webhooks become resources too. */
  state?: SidecarState;
}

/** The DaguAuth as written to resources.yaml: only what the Dagu config said, defaults left to the schema. */
export type DaguAuthManifest = z.input<typeof DaguAuth>;

export interface Conversion {
  daguAuth: DaguAuthManifest;
  /** DaguUsers, DaguApiKeys and DaguWebhooks (from --state-dir), after the DaguAuth in resources.yaml. */
  resources: ChildManifest[];
  secrets: SecretManifest[];
  warnings: Warning[];
  /** Information that needs no action: overrides, aliases, what else to migrate. */
  notes: string[];
  /** Commands the user runs (the TLS Secret from Dagu's certificate files). */
  commands: string[];
}

export const SecretManifestSchema = z.object({
  apiVersion: z.literal("v1"),
  kind: z.literal("Secret"),
  metadata: z.object({ name: objectName("Secret name"), namespace: z.string().optional() }).strict(),
  type: z.literal("Opaque"),
  stringData: z.record(z.string().regex(/^[-._a-zA-Z0-9]+$/), z.string()),
});

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === "object" && v !== null && !Array.isArray(v);

/** Converts; throws ConvertError naming the key when the configuration cannot be converted. */
export function convertDaguAuthConfig(source: ConvertSource, options: ConvertOptions): Conversion {
  if (!objectName("DaguAuth name").safeParse(options.name).success) {
    throw new ConvertError(`--name ${JSON.stringify(options.name)} is not a valid resource name (lowercase letters, digits, '-' and '.')`);
  }
  if (options.namespace !== undefined && !(NAMESPACE.test(options.namespace) && options.namespace.length <= 63)) {
    throw new ConvertError(`--namespace ${JSON.stringify(options.namespace)} is not a valid namespace name`);
  }
  const warnings: Warning[] = [];
  const notes: string[] = [];
  const commands: string[] = [];
  const warn = (key: string, message: string) => warnings.push({ key, message });

  // 1. Where the keys are: a whole config file has `auth:` (and `tls:`, `remote_nodes` beside it); a
  //    bare block has the auth keys at the top, and may carry `tls:` and `remote_nodes` too.
  //    Empty values (`key:`, `~`) count as unset, as in Dagu.
  const raw = source.document ?? {};
  if (!isTree(raw)) throw new ConvertError("the config file must be a YAML mapping (a Dagu config file, or its auth: block)");
  const whole = "auth" in raw;
  const document = withoutNulls(raw);
  const block = whole ? (document.auth ?? {}) : document;
  if (!isTree(block)) throw new ConvertError("auth: must be a mapping");
  const outer: Tree = whole ? document : block;
  let parsed: AuthBlock;
  try {
    parsed = parseAuthBlock({ auth: block });
  } catch (error) {
    throw new ConvertError((error as Error).message, { cause: error });
  }
  const env = source.env ?? {};
  const settings = mergeDaguAuthSettings(parsed, env);

  // 2. Every key of the file: converted, or a warning naming it.
  const seen = new Set<string>();
  const walker = new KeyWalker(whole, seen, warn);
  walker.visit("auth", block);
  if (whole) {
    const ignored = Object.keys(document).filter((k) => k !== "auth" && !BESIDE_AUTH.includes(k) && !BASE_PATH_KEYS.includes(k));
    if (ignored.length > 0) notes.push(`top-level keys that are not about authentication were ignored: ${ignored.join(", ")}`);
    for (const k of BESIDE_AUTH) if (k in document) walker.visit(k, document[k]);
  }
  const builtinBlock = isTree(block.builtin) ? block.builtin : {};
  if ("initial_admin" in builtinBlock && "admin" in builtinBlock) {
    warn("auth.builtin.admin", "not converted: auth.builtin.initial_admin is set, and auth.builtin.admin is Dagu 1's name of it");
  }
  for (const { path, type } of source.nonStrings ?? []) {
    const label = whole || BESIDE_AUTH.includes(path[0] ?? "") ? path.join(".") : ["auth", ...path].join(".");
    const entry = daguKey(label);
    // OIDC's switches are booleans in Dagu's schema: a YAML boolean is exactly what Dagu read.
    if (type === "boolean" && /^auth\.(builtin\.)?oidc\.(auto_signup|role_mapping\.(role_attribute_strict|skip_org_role_sync))$/.test(label)) continue;
    if (entry?.outcome.kind === "converted") {
      warn(label, `written as a YAML ${type}, taken as the text written; quote it in Dagu's config to be sure it is the value Dagu used`);
    }
  }

  // 3. Every DAGU_AUTH_* variable (and DAGU_CERT_FILE / DAGU_KEY_FILE), when the environment counts.
  const envNames = Object.keys(env)
    .filter((k) => (k.startsWith("DAGU_AUTH_") || k === "DAGU_CERT_FILE" || k === "DAGU_KEY_FILE") && env[k] !== undefined && env[k] !== "")
    .sort();
  for (const name of envNames) {
    const entry = daguEnvKey(name);
    if (!entry) {
      warn(name, "not converted: unknown variable, not one of Dagu's authentication settings");
      continue;
    }
    if (entry.outcome.kind === "warned") warn(envLabel(name), entry.outcome.why);
    else if (entry.envAliases?.includes(name)) notes.push(`${name} is Dagu 1's name of ${entry.env}: read as such`);
  }
  for (const s of Object.values(settings) as (DaguAuthSetting | undefined)[]) {
    if (s && daguEnvKey(s.from) && seen.has(daguEnvKey(s.from)!.key)) notes.push(`${s.from} overrides ${daguEnvKey(s.from)!.key} from the file, as in Dagu`);
  }

  // 4. The mode.
  const modeText = settings.mode?.value ?? "builtin";
  const modeFrom = settings.mode?.from ?? "auth.mode";
  if (modeText === "none") {
    throw new ConvertError(`${modeFrom} is none: Dagu runs without authentication, so there is nothing to protect and nothing to convert; set builtin or basic`);
  }
  if (modeText === "oidc") {
    throw new ConvertError(`${modeFrom} oidc is the standalone OIDC mode Dagu removed: use builtin with auth.oidc (single sign-on under builtin auth)`);
  }
  if (modeText !== "builtin" && modeText !== "basic") {
    throw new ConvertError(`${modeFrom} ${JSON.stringify(modeText)} is not a Dagu auth mode: expected builtin or basic`);
  }
  const mode = modeText;

  // 5. The spec and its Secrets.
  const { name, namespace } = options;
  const meta = (n: string) => ({ name: n, ...(namespace !== undefined ? { namespace } : {}) });
  const secrets: SecretManifest[] = [];
  const secret = (secretName: string, key: string, value: string) => {
    secrets.push({ apiVersion: "v1", kind: "Secret", metadata: meta(secretName), type: "Opaque", stringData: { [key]: value } });
    return { name: secretName, key };
  };
  const ignoredIn = (what: string, ...list: (DaguAuthSetting | undefined)[]) => {
    for (const s of list) if (s) warn(s.from, `not converted: ignored in ${what} mode, as in Dagu`);
  };
  const checkPassword = (s: DaguAuthSetting) => {
    if (s.value.length < MIN_PASSWORD_LENGTH) {
      throw new ConvertError(`${s.from} is shorter than ${MIN_PASSWORD_LENGTH} characters: the operator refuses it (PasswordTooShort); choose a longer password first`);
    }
  };
  const spec: DaguAuthSpecInput = { mode };
  const sources: Record<string, string> = { "spec.mode": modeFrom };
  const kept = source.state && mode === "builtin" ? convertStandaloneState(source.state, name, namespace) : undefined;
  if (source.state && mode === "basic" && Object.values({ ...source.state.users, ...source.state.apiKeys, ...source.state.webhooks }).length > 0) {
    warn("--state-dir", "not converted: its users, API keys and webhooks need builtin mode (as in Dagu), and the configuration is in basic mode");
  }

  if (mode === "basic") {
    ignoredIn("basic", settings.tokenSecret, settings.tokenTtl, settings.adminUsername, settings.adminPassword);
    const { basicUsername: user, basicPassword: pass } = settings;
    if (!user || !pass) {
      const missing = [!user && "auth.basic.username (DAGU_AUTH_BASIC_USERNAME)", !pass && "auth.basic.password (DAGU_AUTH_BASIC_PASSWORD)"].filter(Boolean);
      throw new ConvertError(`basic mode needs ${missing.join(" and ")}`);
    }
    checkPassword(pass);
    spec.basic = { username: user.value, passwordSecretRef: secret(`${name}-basic`, "password", pass.value) };
    sources["spec.basic.username"] = user.from;
  } else {
    ignoredIn("builtin", settings.basicUsername, settings.basicPassword);
    const builtin: NonNullable<DaguAuthSpecInput["builtin"]> = {};
    const token: NonNullable<typeof builtin.token> = {};
    if (settings.tokenTtl) {
      // The DaguAuth takes Go's syntax as it is: the same parser as the sidecar's --config checks it.
      try {
        tokenTtlSeconds(settings.tokenTtl);
      } catch (error) {
        throw new ConvertError(`${(error as Error).message} (spec.builtin.token.ttl)`, { cause: error });
      }
      token.ttl = settings.tokenTtl.value;
      sources["spec.builtin.token.ttl"] = settings.tokenTtl.from;
    }
    if (settings.tokenSecret) {
      // Converted as it is (the key it means stays the same); the operator and the sidecar warn too.
      if (isShortTokenSecret(settings.tokenSecret.value)) warn(settings.tokenSecret.from, shortTokenSecretWarning("the token secret"));
      token.secretRef = secret(`${name}-token-secret`, "secret", settings.tokenSecret.value);
    } else {
      notes.push("no token secret (auth.builtin.token.secret): the operator generates the signing key and rotates it through spec.builtin.token.rotation");
    }
    if (Object.keys(token).length > 0) builtin.token = token;
    const { adminUsername: user, adminPassword: pass } = settings;
    if (Boolean(user) !== Boolean(pass)) {
      const [have, lacking] = user ? [user.from, "auth.builtin.initial_admin.password (DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD)"] : [pass!.from, "auth.builtin.initial_admin.username (DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME)"];
      throw new ConvertError(`${have} is set without ${lacking}: the initial admin needs both or neither, as in Dagu`);
    }
    if (user && pass) {
      checkPassword(pass);
      builtin.initialAdmin = { username: user.value, passwordSecretRef: secret(`${name}-initial-admin`, "password", pass.value) };
      sources["spec.builtin.initialAdmin.username"] = user.from;
      if (user.from.startsWith("auth.builtin.admin.")) notes.push("auth.builtin.admin is Dagu 1's name of auth.builtin.initial_admin: read as such");
    } else if (kept?.hasAdmin) {
      notes.push("no initial admin (auth.builtin.initial_admin): the admins created through the standalone sidecar become DaguUsers");
    } else {
      warn(
        "auth.builtin.initial_admin",
        "not set: Dagu would show its setup page, the operator has none; add spec.builtin.initialAdmin or a DaguUser with role admin " +
          "(the DaguAuth reports NoAdmin until one exists), or nobody can log in",
      );
    }
    if (Object.keys(builtin).length > 0) spec.builtin = builtin;
  }

  // 5b. Single sign-on: auth.oidc and DAGU_AUTH_OIDC_*, the client secret into its own Secret.
  let oidcRead;
  try {
    oidcRead = readDaguOidc(block, env);
    if (oidcRead) parseDaguOidc(oidcRead);
  } catch (error) {
    throw new ConvertError((error as Error).message, { cause: error });
  }
  if (oidcRead && mode === "basic") throw new ConvertError("auth.oidc needs builtin mode (Dagu's SSO lives under builtin auth); it is ignored in basic mode by Dagu too: remove it or use builtin");
  if (oidcRead) {
    spec.oidc = { ...oidcRead.spec, ...(oidcRead.clientSecret ? { clientSecretRef: secret(`${name}-oidc`, "client-secret", oidcRead.clientSecret.value) } : {}) };
    Object.assign(sources, oidcRead.sources);
    if (!oidcRead.clientSecret) notes.push("OIDC without a client secret: the sidecar is a public client (PKCE only); Dagu itself needs client_secret to enable OIDC");
    notes.push(
      "OIDC: the users Dagu created at SSO logins are not part of its config and are not converted: they are created again at their " +
        "next login (auto_signup), or declare them as DaguUsers with sso: true and their email (docs/sso.md). Register " +
        "<client_url>/oidc-callback at the provider, as for Dagu. A role_attribute_path that is not valid jq makes the DaguAuth " +
        "not Ready (InvalidRoleAttributePath).",
    );
  }

  // 6. TLS: files on Dagu's disk become a kubernetes.io/tls Secret the user creates.
  const tls = tlsSettings(outer, env, notes);
  if (tls.cert || tls.key) {
    if (!tls.cert || !tls.key) {
      const [have, lacking] = tls.cert ? [tls.cert.from, "tls.key_file (DAGU_KEY_FILE)"] : [tls.key!.from, "tls.cert_file (DAGU_CERT_FILE)"];
      throw new ConvertError(`${have} is set without ${lacking}: a certificate needs both`);
    }
    const tlsSecret = `${name}-tls`;
    spec.tls = { secretName: tlsSecret };
    sources["spec.tls.secretName"] = tls.cert.from;
    warn(
      `${tls.cert.from}, ${tls.key.from}`,
      `the sidecar serves HTTPS from a kubernetes.io/tls Secret, not from files: create Secret ${tlsSecret} from them ` +
        "(command below; it is not in secrets.yaml), or drop spec.tls and terminate TLS at your ingress",
    );
    commands.push(
      `kubectl create secret tls ${tlsSecret} --cert=${shellQuote(tls.cert.value)} --key=${shellQuote(tls.key.value)}${namespace !== undefined ? ` -n ${namespace}` : ""}`,
    );
  }

  // 6b. Dagu's base path (base_path at the top of its config, DAGU_BASE_PATH over it): spec.basePath, which the
  //     injection renders into both Dagu and the sidecar (ADR 0020). Checked with the rest below.
  const base = basePathSetting(whole ? document : {}, env, notes);
  if (base) {
    const cleaned = cleanDaguBasePath(base.value);
    if (cleaned !== "") {
      spec.basePath = cleaned;
      sources["spec.basePath"] = base.from;
    }
  }

  // 7. Validate with the schema the apiserver enforces (the CRD is generated from it).
  const daguAuth: DaguAuthManifest = { apiVersion: API_VERSION, kind: "DaguAuth", metadata: meta(name), spec };
  const checked = DaguAuth.safeParse(daguAuth);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => {
      const field = issue.path.join(".");
      const from = sources[field];
      return `${field}${from ? ` (from ${from})` : ""}: ${issue.message}`;
    });
    throw new ConvertError(`the DaguAuth would be invalid: ${problems.join("; ")}`);
  }
  for (const s of secrets) {
    const r = SecretManifestSchema.safeParse(s);
    if (!r.success) throw new ConvertError(`Secret ${s.metadata.name} would be invalid: ${z.prettifyError(r.error)}`);
  }
  if (kept) {
    secrets.push(...kept.secrets);
    warnings.push(...kept.warnings);
    notes.push(...kept.notes);
  } else if (!source.state) {
    notes.push(
      "users, API keys and webhooks created inside Dagu are not part of its auth: configuration and are not converted: " +
        "declare them as DaguUser, DaguApiKey and DaguWebhook (those of a standalone sidecar: convert with --state-dir)",
    );
  }
  notes.push("Dagu itself then runs behind the sidecar with DAGU_AUTH_MODE=none, listening on 127.0.0.1 only (docs/sidecar.md)");
  return { daguAuth, resources: kept?.resources ?? [], secrets, warnings, notes, commands };
}

/** Keys Dagu reads next to `auth:` (at a config file's top level); a bare block may carry them too. */
const BESIDE_AUTH = ["tls", "remote_nodes", "remoteNodes"];

/**
 * Visits every key of the file: keys of the table are noted in `seen` (and warned about when they are
 * not converted); OIDC, misplaced and unknown keys get one warning each, naming the key.
 */
class KeyWalker {
  readonly #whole: boolean;
  readonly #seen: Set<string>;
  readonly #warn: (key: string, message: string) => void;

  constructor(whole: boolean, seen: Set<string>, warn: (key: string, message: string) => void) {
    this.#whole = whole;
    this.#seen = seen;
    this.#warn = warn;
  }

  visit(label: string, value: unknown): void {
    const entry = daguKey(label);
    const oidc = /^auth\.(builtin\.)?oidc(\.|$)/.test(label);
    if (entry) {
      this.#seen.add(entry.key);
      if (entry.outcome.kind === "warned") this.#warn(label, entry.outcome.why);
    } else if (CONTAINERS.has(label)) {
      if (!isTree(value)) this.#warn(label, oidc ? "not converted: expected a mapping of Dagu's OIDC keys" : "not converted: expected a mapping of settings");
      else for (const [k, v] of Object.entries(value)) this.visit(this.#child(label, k), v);
    } else if (oidc) {
      this.#warn(label, "not converted: unknown key, not one of Dagu's OIDC keys");
    } else if (/^auth\.(tls|remote_nodes|remoteNodes)$/.test(label)) {
      this.#warn(label, `not converted: unknown key; Dagu reads ${label.slice("auth.".length)} at the top level of its config, not under auth:`);
    } else {
      this.#warn(label, "not converted: unknown key, not part of Dagu's authentication configuration");
    }
  }

  /** In a bare block, tls and remote_nodes sit next to the auth keys and keep their own names. */
  #child(label: string, key: string): string {
    return label === "auth" && !this.#whole && BESIDE_AUTH.includes(key) ? key : `${label}.${key}`;
  }
}

/** Dagu's certificate files: DAGU_CERT_FILE / DAGU_KEY_FILE win over `tls:` (Dagu 1 spelled the keys certFile, keyFile). */
function tlsSettings(outer: Tree, env: NodeJS.ProcessEnv, notes: string[]): { cert?: DaguAuthSetting; key?: DaguAuthSetting } {
  const tls = isTree(outer.tls) ? outer.tls : {};
  const pick = (envName: string, keys: string[]): DaguAuthSetting | undefined => {
    const k = keys.find((key) => typeof tls[key] === "string" && tls[key] !== "");
    const fromEnv = env[envName];
    if (fromEnv !== undefined && fromEnv !== "") {
      if (k) notes.push(`${envName} overrides tls.${k} from the file, as in Dagu`);
      return { value: fromEnv, from: envName };
    }
    return k ? { value: tls[k] as string, from: `tls.${k}` } : undefined;
  };
  return { cert: pick("DAGU_CERT_FILE", ["cert_file", "certFile"]), key: pick("DAGU_KEY_FILE", ["key_file", "keyFile"]) };
}

/** Dagu's keys for its base path (Dagu 1: basePath). */
const BASE_PATH_KEYS = ["base_path", "basePath"];

function basePathSetting(top: Tree, env: NodeJS.ProcessEnv, notes: string[]): DaguAuthSetting | undefined {
  const k = BASE_PATH_KEYS.find((key) => top[key] !== undefined && top[key] !== "");
  if (k !== undefined && typeof top[k] !== "string") throw new ConvertError(`${k} must be a string (Dagu's base path, e.g. /dagu)`);
  const fromEnv = env.DAGU_BASE_PATH;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (k) notes.push(`DAGU_BASE_PATH overrides ${k} from the file, as in Dagu`);
    return { value: fromEnv, from: "DAGU_BASE_PATH" };
  }
  return k ? { value: top[k] as string, from: k } : undefined;
}

/** Quotes a path for a POSIX shell when it needs it. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replaceAll("'", `'"'"'`)}'`;
}

/** A copy without null values: Dagu reads an empty value as unset. */
function withoutNulls(value: Tree): Tree {
  const out: Tree = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || v === undefined) continue;
    out[k] = isTree(v) ? withoutNulls(v) : v;
  }
  return out;
}
