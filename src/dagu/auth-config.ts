// Dagu's `auth:` configuration, read as Dagu reads it: the block of a config file (or a file that is
// only the block), the `DAGU_AUTH_*` variables merged over it (a variable wins, an empty one counts as
// unset), Dagu 1's names taken where Dagu 2's are absent, and the token TTL as a Go duration. Used by
// the standalone sidecar (src/sidecar/sources/dagu-config-source.ts) and by `dagu-auth convert`.
import { z } from "zod";
import { durationSeconds } from "../api/duration.ts";
import type { OidcSpec } from "../api/oidc.ts";
import { parseDaguOidc, readDaguOidc } from "./oidc-config.ts";

const Pair = z.looseObject({ username: z.string().optional(), password: z.string().optional() });
/**
 * The part of Dagu's `auth:` block the sidecar reads; Dagu 1's `builtin.admin` is taken as `initial_admin`.
 * Other keys pass through untouched (`dagu-auth convert` reports them).
 */
export const AuthBlock = z.looseObject({
  mode: z.string().optional(),
  basic: Pair.optional(),
  builtin: z
    .looseObject({
      token: z.looseObject({ secret: z.string().optional(), ttl: z.string().optional() }).optional(),
      initial_admin: Pair.optional(),
      admin: Pair.optional(),
      oidc: z.unknown().optional(),
    })
    .optional(),
  oidc: z.unknown().optional(),
  token: z.looseObject({ value: z.string().optional() }).optional(),
});
export type AuthBlock = z.infer<typeof AuthBlock>;

export interface DaguAuthConfig {
  mode: "basic" | "builtin";
  /** The basic user, or the initial admin (optional in builtin mode, as in Dagu: without one, setup creates the first admin). */
  username?: string;
  password?: string;
  tokenSecret?: string;
  /** The YAML key or variable the token secret came from, for the warning about a short one. */
  tokenSecretFrom?: string;
  ttlSeconds: number;
  /** auth.oidc (builtin mode): single sign-on, its users kept in --state-dir. */
  oidc?: { spec: OidcSpec; clientSecret?: string };
}

/** The `auth:` block of a whole Dagu config file, or the document itself when it is only the block. */
function daguAuthBlockOf(fileDocument: unknown): unknown {
  return typeof fileDocument === "object" && fileDocument !== null && "auth" in fileDocument ? fileDocument.auth : fileDocument;
}

/** Checks the shape of the `auth:` block (of a whole config file or a bare block); throws naming the bad field. */
export function parseAuthBlock(fileDocument: unknown): AuthBlock {
  const parsed = AuthBlock.safeParse(daguAuthBlockOf(fileDocument) ?? {});
  if (!parsed.success) throw new Error(`the auth: configuration is not valid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** One merged setting: its value and where it came from (a `DAGU_AUTH_*` variable or the YAML key). */
export interface DaguAuthSetting {
  value: string;
  from: string;
}

/** The settings the sidecar reads, after the environment is merged over the file. */
export interface DaguAuthSettings {
  mode?: DaguAuthSetting;
  basicUsername?: DaguAuthSetting;
  basicPassword?: DaguAuthSetting;
  tokenSecret?: DaguAuthSetting;
  tokenTtl?: DaguAuthSetting;
  adminUsername?: DaguAuthSetting;
  adminPassword?: DaguAuthSetting;
}

/** The first candidate with a value: a variable set to the empty string counts as unset, as in Dagu. */
function pickSetting(env: NodeJS.ProcessEnv, names: readonly string[], fileValue: string | undefined, fileKey: string): DaguAuthSetting | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value !== "") return { value, from: name };
  }
  return fileValue !== undefined && fileValue !== "" ? { value: fileValue, from: fileKey } : undefined;
}

/**
 * Merges the `DAGU_AUTH_*` variables over the block as Dagu does (a variable wins). Dagu 1's names
 * (`builtin.admin`, `DAGU_AUTH_ADMIN_*`) are read as the initial admin when Dagu 2's are absent.
 */
export function mergeDaguAuthSettings(block: AuthBlock, env: NodeJS.ProcessEnv): DaguAuthSettings {
  const adminKey = !block.builtin?.initial_admin && block.builtin?.admin ? "auth.builtin.admin" : "auth.builtin.initial_admin";
  const admin = block.builtin?.initial_admin ?? block.builtin?.admin;
  return {
    mode: pickSetting(env, ["DAGU_AUTH_MODE"], block.mode, "auth.mode"),
    basicUsername: pickSetting(env, ["DAGU_AUTH_BASIC_USERNAME"], block.basic?.username, "auth.basic.username"),
    basicPassword: pickSetting(env, ["DAGU_AUTH_BASIC_PASSWORD"], block.basic?.password, "auth.basic.password"),
    tokenSecret: pickSetting(env, ["DAGU_AUTH_TOKEN_SECRET"], block.builtin?.token?.secret, "auth.builtin.token.secret"),
    tokenTtl: pickSetting(env, ["DAGU_AUTH_TOKEN_TTL"], block.builtin?.token?.ttl, "auth.builtin.token.ttl"),
    adminUsername: pickSetting(env, ["DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME", "DAGU_AUTH_ADMIN_USERNAME"], admin?.username, `${adminKey}.username`),
    adminPassword: pickSetting(env, ["DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD", "DAGU_AUTH_ADMIN_PASSWORD"], admin?.password, `${adminKey}.password`),
  };
}

/** Reads the `auth:` block (or a file that is only the block) and the environment; throws with what is wrong. */
export function resolveDaguAuthConfig(fileDocument: unknown, env: NodeJS.ProcessEnv): DaguAuthConfig {
  const block = parseAuthBlock(fileDocument);
  const oidcRead = readDaguOidc(block, env);
  if (block.token?.value || env.DAGU_AUTH_TOKEN) {
    throw new Error("auth.token.value (Dagu 1's static API token) is not supported: use an API key instead");
  }
  const settings = mergeDaguAuthSettings(block, env);
  const mode = settings.mode?.value ?? "builtin";
  if (mode === "none") throw new Error("auth.mode none leaves nothing to enforce: set builtin or basic");
  if (mode !== "builtin" && mode !== "basic") throw new Error(`unknown auth.mode ${JSON.stringify(mode)}: expected builtin or basic`);

  const ttlSeconds = tokenTtlSeconds(settings.tokenTtl);

  if (mode === "basic") {
    const username = settings.basicUsername?.value;
    const password = settings.basicPassword?.value;
    if (!username || !password) throw new Error("basic mode needs auth.basic.username and auth.basic.password (or DAGU_AUTH_BASIC_*)");
    if (oidcRead) throw new Error("auth.oidc needs auth.mode builtin (Dagu's SSO lives under builtin auth)");
    return { mode, username, password, ttlSeconds };
  }
  const { adminUsername: user, adminPassword: pass } = settings;
  if (Boolean(user) !== Boolean(pass)) {
    throw new Error(`${user ? user.from : pass!.from} is set without the initial admin's ${user ? "password" : "username"}: set both or neither, as in Dagu`);
  }
  const tokenSecret = settings.tokenSecret;
  const oidc = oidcRead ? { spec: parseDaguOidc(oidcRead), ...(oidcRead.clientSecret ? { clientSecret: oidcRead.clientSecret.value } : {}) } : undefined;
  return {
    mode,
    ...(user && pass ? { username: user.value, password: pass.value } : {}),
    ...(tokenSecret ? { tokenSecret: tokenSecret.value, tokenSecretFrom: tokenSecret.from } : {}),
    ttlSeconds,
    ...(oidc ? { oidc } : {}),
  };
}

/**
 * The token lifetime in seconds, read as Dagu reads it (a Go duration, at most 8760h) and at least 1m,
 * as a DaguAuth requires; the error names the setting it came from.
 */
export function tokenTtlSeconds(setting: DaguAuthSetting | undefined): number {
  if (!setting) return 24 * 3600;
  let seconds: number;
  try {
    seconds = durationSeconds(setting.value);
  } catch (error) {
    throw new Error(`${setting.from}: ${(error as Error).message}`, { cause: error });
  }
  if (seconds < 60) throw new Error(`${setting.from} is ${setting.value}: it must be at least 1m`);
  return seconds;
}
