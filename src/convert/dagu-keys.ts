// Every key of Dagu's authentication configuration (the `auth:` block, plus `tls:` and `remote_nodes`
// next to it) and its DAGU_* variable, with what `dagu-auth convert` makes of it. Keys are written as
// Dagu 2 names them, relative to the config file's top level.

export type KeyOutcome =
  /** Becomes part of the DaguAuth (or a Secret it references). */
  | { kind: "converted"; to: string }
  /** Reported with a warning, never converted. */
  | { kind: "warned"; why: string };

export interface DaguKey {
  key: string;
  /** The environment variable that overrides it in Dagu. */
  env?: string;
  /** Older names Dagu also reads (Dagu 1.x YAML keys and variables). */
  aliases?: readonly string[];
  envAliases?: readonly string[];
  outcome: KeyOutcome;
}

const REMOTE_NODES_WHY =
  "not converted: remote nodes are Dagu's own configuration (other Dagu servers this one talks to), not the " +
  "authentication of this server; keep them in Dagu's config";
const STATIC_TOKEN_WHY = "not converted: Dagu 1's static API token has no equivalent; create a DaguApiKey and give its key to the clients";

const oidc = (key: string, env: string | undefined, to: string): DaguKey => ({ key: `auth.oidc.${key}`, ...(env ? { env: `DAGU_AUTH_OIDC_${env}` } : {}), outcome: { kind: "converted", to } });

export const DAGU_AUTH_KEYS: readonly DaguKey[] = [
  { key: "auth.mode", env: "DAGU_AUTH_MODE", outcome: { kind: "converted", to: "spec.mode (none is refused: nothing to protect)" } },
  { key: "auth.basic.username", env: "DAGU_AUTH_BASIC_USERNAME", outcome: { kind: "converted", to: "spec.basic.username" } },
  { key: "auth.basic.password", env: "DAGU_AUTH_BASIC_PASSWORD", outcome: { kind: "converted", to: "Secret <name>-basic (key password), spec.basic.passwordSecretRef" } },
  { key: "auth.builtin.token.secret", env: "DAGU_AUTH_TOKEN_SECRET", outcome: { kind: "converted", to: "Secret <name>-token-secret (key secret), spec.builtin.token.secretRef" } },
  { key: "auth.builtin.token.ttl", env: "DAGU_AUTH_TOKEN_TTL", outcome: { kind: "converted", to: "spec.builtin.token.ttl" } },
  {
    key: "auth.builtin.initial_admin.username",
    env: "DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME",
    aliases: ["auth.builtin.admin.username"],
    envAliases: ["DAGU_AUTH_ADMIN_USERNAME"],
    outcome: { kind: "converted", to: "spec.builtin.initialAdmin.username" },
  },
  {
    key: "auth.builtin.initial_admin.password",
    env: "DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD",
    aliases: ["auth.builtin.admin.password"],
    envAliases: ["DAGU_AUTH_ADMIN_PASSWORD"],
    outcome: { kind: "converted", to: "Secret <name>-initial-admin (key password), spec.builtin.initialAdmin.passwordSecretRef" },
  },
  oidc("client_id", "CLIENT_ID", "spec.oidc.clientId"),
  oidc("client_secret", "CLIENT_SECRET", "Secret <name>-oidc (key client-secret), spec.oidc.clientSecretRef"),
  oidc("client_url", "CLIENT_URL", "spec.oidc.clientUrl"),
  oidc("issuer", "ISSUER", "spec.oidc.issuer"),
  oidc("scopes", "SCOPES", "spec.oidc.scopes"),
  oidc("whitelist", "WHITELIST", "spec.oidc.whitelist"),
  oidc("allowed_domains", "ALLOWED_DOMAINS", "spec.oidc.allowedDomains"),
  oidc("auto_signup", "AUTO_SIGNUP", "spec.oidc.autoSignup"),
  oidc("button_label", "BUTTON_LABEL", "spec.oidc.buttonLabel"),
  oidc("role_mapping.default_role", "DEFAULT_ROLE", "spec.oidc.roleMapping.defaultRole"),
  oidc("role_mapping.groups_claim", "GROUPS_CLAIM", "spec.oidc.roleMapping.groupsClaim"),
  oidc("role_mapping.group_mappings", "GROUP_MAPPINGS", "spec.oidc.roleMapping.groupMappings (the variable: a JSON object)"),
  oidc("role_mapping.role_attribute_path", "ROLE_ATTRIBUTE_PATH", "spec.oidc.roleMapping.roleAttributePath"),
  oidc("role_mapping.role_attribute_strict", "ROLE_ATTRIBUTE_STRICT", "spec.oidc.roleMapping.roleAttributeStrict"),
  oidc("role_mapping.skip_org_role_sync", undefined, "spec.oidc.roleMapping.skipOrgRoleSync"),
  { key: "auth.token.value", env: "DAGU_AUTH_TOKEN", outcome: { kind: "warned", why: STATIC_TOKEN_WHY } },
  {
    key: "tls.cert_file",
    env: "DAGU_CERT_FILE",
    aliases: ["tls.certFile"],
    outcome: { kind: "converted", to: "a kubernetes.io/tls Secret <name>-tls you create from the file (command printed), spec.tls.secretName" },
  },
  {
    key: "tls.key_file",
    env: "DAGU_KEY_FILE",
    aliases: ["tls.keyFile"],
    outcome: { kind: "converted", to: "a kubernetes.io/tls Secret <name>-tls you create from the file (command printed), spec.tls.secretName" },
  },
  { key: "tls.ca_file", aliases: ["tls.caFile"], outcome: { kind: "warned", why: "not converted: parsed but unused by Dagu too" } },
  { key: "remote_nodes", aliases: ["remoteNodes"], outcome: { kind: "warned", why: REMOTE_NODES_WHY } },
];

/** Maps that only group other keys. `auth.builtin.oidc` is where some Dagu versions read OIDC from. */
export const CONTAINERS: ReadonlySet<string> = new Set([
  "auth",
  "auth.basic",
  "auth.builtin",
  "auth.builtin.token",
  "auth.builtin.initial_admin",
  "auth.builtin.admin",
  "auth.oidc",
  "auth.oidc.role_mapping",
  "auth.builtin.oidc",
  "auth.builtin.oidc.role_mapping",
  "auth.token",
  "tls",
]);

/** The table entry of a YAML key (Dagu 2 name or alias); `auth.builtin.oidc.*` is read as `auth.oidc.*`. */
export function daguKey(path: string): DaguKey | undefined {
  const normalized = path.startsWith("auth.builtin.oidc.") ? `auth.oidc.${path.slice("auth.builtin.oidc.".length)}` : path;
  return DAGU_AUTH_KEYS.find((k) => k.key === normalized || k.aliases?.includes(normalized));
}

/** The table entry of an environment variable. */
export function daguEnvKey(name: string): DaguKey | undefined {
  return DAGU_AUTH_KEYS.find((k) => k.env === name || k.envAliases?.includes(name));
}

/** The label a warning uses for a variable: `DAGU_AUTH_OIDC_ISSUER (auth.oidc.issuer)`. */
export const envLabel = (name: string) => {
  const k = daguEnvKey(name);
  return k ? `${name} (${k.key})` : name;
};
