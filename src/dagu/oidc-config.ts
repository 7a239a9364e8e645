// Dagu's `auth.oidc` block and its DAGU_AUTH_OIDC_* variables (a variable wins, as in Dagu), read
// into this project's `spec.oidc`: by the standalone sidecar (`--config`) and by `dagu-auth convert`,
// so both read Dagu's OIDC configuration the same way. Lists take YAML lists or Dagu's comma-separated
// strings; DAGU_AUTH_OIDC_GROUP_MAPPINGS takes a JSON object. Errors name the Dagu key or variable.
import { z } from "zod";
import { ROLES } from "../api/common.ts";
import { OidcSpec, type OidcSpec as OidcSpecType } from "../api/oidc.ts";

/** Where each value came from: `auth.oidc.issuer` or `DAGU_AUTH_OIDC_ISSUER`. */
export interface DaguOidc {
  /** `spec.oidc` as a DaguAuth would carry it (before defaults), without the client secret. */
  spec: z.input<typeof OidcSpec>;
  clientSecret?: { value: string; from: string };
  /** `spec.oidc.<path>` -> the Dagu key or variable it came from. */
  sources: Record<string, string>;
}

type Tree = Record<string, unknown>;
const isTree = (v: unknown): v is Tree => typeof v === "object" && v !== null && !Array.isArray(v);

const KEYS: readonly { key: string; env?: string; field: string; kind: "string" | "list" | "bool" | "role" | "map" }[] = [
  { key: "client_id", env: "CLIENT_ID", field: "clientId", kind: "string" },
  { key: "client_url", env: "CLIENT_URL", field: "clientUrl", kind: "string" },
  { key: "issuer", env: "ISSUER", field: "issuer", kind: "string" },
  { key: "scopes", env: "SCOPES", field: "scopes", kind: "list" },
  { key: "whitelist", env: "WHITELIST", field: "whitelist", kind: "list" },
  { key: "allowed_domains", env: "ALLOWED_DOMAINS", field: "allowedDomains", kind: "list" },
  { key: "auto_signup", env: "AUTO_SIGNUP", field: "autoSignup", kind: "bool" },
  { key: "button_label", env: "BUTTON_LABEL", field: "buttonLabel", kind: "string" },
  { key: "role_mapping.default_role", env: "DEFAULT_ROLE", field: "roleMapping.defaultRole", kind: "role" },
  { key: "role_mapping.groups_claim", env: "GROUPS_CLAIM", field: "roleMapping.groupsClaim", kind: "string" },
  { key: "role_mapping.group_mappings", env: "GROUP_MAPPINGS", field: "roleMapping.groupMappings", kind: "map" },
  { key: "role_mapping.role_attribute_path", env: "ROLE_ATTRIBUTE_PATH", field: "roleMapping.roleAttributePath", kind: "string" },
  { key: "role_mapping.role_attribute_strict", env: "ROLE_ATTRIBUTE_STRICT", field: "roleMapping.roleAttributeStrict", kind: "bool" },
  { key: "role_mapping.skip_org_role_sync", field: "roleMapping.skipOrgRoleSync", kind: "bool" },
];

const at = (tree: Tree, path: string): unknown => path.split(".").reduce<unknown>((node, part) => (isTree(node) ? node[part] : undefined), tree);

function set(target: Tree, path: string, value: unknown): void {
  const parts = path.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) {
    if (!isTree(node[part])) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts.at(-1)!] = value;
}

function convert(kind: (typeof KEYS)[number]["kind"], raw: unknown, from: string): unknown {
  switch (kind) {
    case "string":
      if (typeof raw === "string" || typeof raw === "number") return String(raw);
      throw new Error(`${from} must be a string`);
    case "list": {
      const items = typeof raw === "string" ? raw.split(",") : Array.isArray(raw) ? raw.map((x) => (typeof x === "string" ? x : String(x))) : undefined;
      if (!items) throw new Error(`${from} must be a list or a comma-separated string`);
      return items.map((s) => s.trim()).filter((s) => s !== "");
    }
    case "bool": {
      if (typeof raw === "boolean") return raw;
      const text = String(raw).trim().toLowerCase();
      if (["true", "1", "t", "yes"].includes(text)) return true;
      if (["false", "0", "f", "no"].includes(text)) return false;
      throw new Error(`${from} must be true or false`);
    }
    case "role": {
      const role = String(raw).trim().toLowerCase();
      if (!(ROLES as readonly string[]).includes(role)) throw new Error(`${from} ${JSON.stringify(raw)} is not a role: expected one of ${ROLES.join(", ")}`);
      return role;
    }
    case "map": {
      let value = raw;
      if (typeof raw === "string") {
        try {
          value = JSON.parse(raw) as unknown;
        } catch {
          throw new Error(`${from} must be a JSON object of group to role, e.g. {"admins":"admin"}`);
        }
      }
      if (!isTree(value)) throw new Error(`${from} must map group names to roles`);
      // Dagu lower-cases the role names; a name that is no role is refused here (Dagu drops it silently).
      return Object.fromEntries(Object.entries(value).map(([group, role]) => [group, convert("role", role, `${from}[${JSON.stringify(group)}]`)]));
    }
  }
}

/**
 * `auth.oidc` (or `auth.builtin.oidc`, where some Dagu versions read it) merged with DAGU_AUTH_OIDC_*;
 * undefined when OIDC is not configured. Throws naming the key when a value is unusable or the issuer,
 * client ID or client URL is missing.
 */
export function readDaguOidc(authBlock: unknown, env: NodeJS.ProcessEnv): DaguOidc | undefined {
  const block = isTree(authBlock) ? authBlock : {};
  const nested = isTree(block.builtin) ? block.builtin.oidc : undefined;
  const [oidc, base] = isTree(block.oidc) ? [block.oidc, "auth.oidc"] : isTree(nested) ? [nested, "auth.builtin.oidc"] : [{}, "auth.oidc"];
  const spec: Tree = {};
  const sources: Record<string, string> = {};
  for (const k of KEYS) {
    const envName = k.env ? `DAGU_AUTH_OIDC_${k.env}` : undefined;
    const fromEnv = envName ? env[envName] : undefined;
    const fileValue = at(oidc, k.key);
    const [raw, from] = fromEnv !== undefined && fromEnv !== "" ? [fromEnv, envName!] : [fileValue, `${base}.${k.key}`];
    if (raw === undefined || raw === null || raw === "") continue;
    set(spec, k.field, convert(k.kind, raw, from));
    sources[`spec.oidc.${k.field}`] = from;
  }
  const secretEnv = env.DAGU_AUTH_OIDC_CLIENT_SECRET;
  const secretFile = oidc.client_secret;
  const clientSecret =
    secretEnv !== undefined && secretEnv !== ""
      ? { value: secretEnv, from: "DAGU_AUTH_OIDC_CLIENT_SECRET" }
      : typeof secretFile === "string" && secretFile !== ""
        ? { value: secretFile, from: `${base}.client_secret` }
        : undefined;
  const configured = ["issuer", "clientId", "clientUrl"].some((f) => spec[f] !== undefined) || clientSecret !== undefined;
  if (!configured) return undefined;
  const missing = [
    ["issuer", `${base}.issuer (DAGU_AUTH_OIDC_ISSUER)`],
    ["clientId", `${base}.client_id (DAGU_AUTH_OIDC_CLIENT_ID)`],
    ["clientUrl", `${base}.client_url (DAGU_AUTH_OIDC_CLIENT_URL)`],
  ].flatMap(([field, label]) => (spec[field!] === undefined ? [label!] : []));
  if (missing.length > 0) throw new Error(`OIDC needs ${missing.join(", ")}`);
  return { spec: spec as z.input<typeof OidcSpec>, ...(clientSecret ? { clientSecret } : {}), sources };
}

/** Checks `spec` with the DaguAuth's own rules; the error names the Dagu keys. */
export function parseDaguOidc(read: DaguOidc): OidcSpecType {
  const parsed = OidcSpec.safeParse(read.spec);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const field = `spec.oidc.${issue.path.join(".")}`;
    const from = Object.entries(read.sources).find(([f]) => field === f || field.startsWith(`${f}.`))?.[1];
    return `${from ?? field}: ${issue.message}`;
  });
  throw new Error(`the OIDC configuration is not valid: ${problems.join("; ")}`);
}
