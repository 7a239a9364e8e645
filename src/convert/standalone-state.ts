// `dagu-auth convert --state-dir DIR`: what was created through a standalone sidecar's API and setup page
// (users, API keys, webhooks in DIR/sidecar-state.json) becomes DaguUser, DaguApiKey and DaguWebhook
// manifests, and the Secrets they reference; users single sign-on created become DaguUsers with sso: true.
// Only one-way forms of the secrets are kept there (argon2id hashes, digests), so what cannot be carried
// over is said, by name: each user gets a new random password in a Secret (secrets.yaml), each API key and
// webhook a new value the operator generates.
import { randomBytes } from "node:crypto";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { API_VERSION } from "../api/common.ts";
import { DaguApiKey } from "../api/dagu-api-key.ts";
import { DaguUser } from "../api/dagu-user.ts";
import { DaguWebhook } from "../api/dagu-webhook.ts";
import { byCreation } from "../sidecar/sources/standalone-records.ts";
import { STATE_FILE, StateDir, type SidecarState } from "../sidecar/sources/state-dir.ts";
import type { SecretManifest, Warning } from "./manifests.ts";

/** A manifest of one of the child kinds, as written to resources.yaml. */
export interface ChildManifest {
  apiVersion: string;
  kind: "DaguUser" | "DaguApiKey" | "DaguWebhook";
  metadata: { name: string; namespace?: string };
  spec: Record<string, unknown>;
}

export interface StateConversion {
  resources: ChildManifest[];
  secrets: SecretManifest[];
  warnings: Warning[];
  notes: string[];
  /** Whether an enabled admin is among the users (then no initial admin is needed). */
  hasAdmin: boolean;
}

/** Reads DIR/sidecar-state.json (never creating anything); throws naming the file when it is missing or invalid. */
export async function readStandaloneState(dir: string, fail: (message: string) => Error): Promise<SidecarState> {
  const file = join(dir, STATE_FILE);
  const found = await stat(file).then((s) => s.isFile(), () => false);
  if (!found) throw fail(`--state-dir ${dir} holds no ${STATE_FILE}: give the directory the standalone sidecar ran with (--state-dir)`);
  try {
    return await new StateDir(dir).load();
  } catch (error) {
    throw fail((error as Error).message);
  }
}

/**
 * A resource name from a Dagu name (a username may hold capitals, `_` and `@`; a key name anything):
 * lowercase, other characters as `-`, unique among `taken`.
 */
export function resourceName(text: string, taken: Set<string>): string {
  let base = text.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "").slice(0, 200);
  if (base === "") base = "x";
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  taken.add(name);
  return name;
}

export function convertStandaloneState(state: SidecarState, authName: string, namespace: string | undefined): StateConversion {
  const meta = (name: string) => ({ name, ...(namespace !== undefined ? { namespace } : {}) });
  const resources: ChildManifest[] = [];
  const secrets: SecretManifest[] = [];
  const warnings: Warning[] = [];
  const notes: string[] = [];
  const authRef = { name: authName };
  const secretNames = new Set<string>();

  const users = byCreation(state.users);
  const userNames = new Set<string>();
  for (const u of users) {
    const name = resourceName(u.username, userNames);
    const secretName = resourceName(`${name}-password`, secretNames);
    // A new random password: the state holds only the old one's argon2id hash.
    secrets.push({ apiVersion: "v1", kind: "Secret", metadata: meta(secretName), type: "Opaque", stringData: { password: randomBytes(18).toString("base64url") } });
    const user = { apiVersion: API_VERSION, kind: "DaguUser" as const, metadata: meta(name), spec: { authRef, username: u.username, role: u.role, ...(u.disabled ? { disabled: true } : {}), password: { secretRef: { name: secretName, key: "password" } } } };
    DaguUser.parse(user);
    resources.push(user);
  }
  if (users.length > 0) {
    warnings.push({
      key: "--state-dir users",
      message:
        `${users.map((u) => u.username).join(", ")}: a password cannot be carried over (the sidecar kept only its argon2id hash); ` +
        "each user gets a new random one in its Secret (secrets.yaml): hand it over, the user can change it in Dagu's UI",
    });
  }

  // Users single sign-on created: DaguUsers with sso: true, matched by their email at the next login (the
  // operator's way of declaring an SSO user). Their role becomes pinned; a record without an email cannot
  // be matched by one and is left to be created again at its next login (auto sign-up).
  const ssoRecords = Object.values(state.ssoUsers).sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  const pinned: string[] = [];
  for (const r of ssoRecords) {
    if (r.email === undefined || users.some((u) => u.username === r.username)) {
      warnings.push({ key: `--state-dir SSO user ${r.username}`, message: r.email === undefined ? "not converted: it has no email to be matched by; it is created again at its next login (auto sign-up)" : "not converted: a user with a password has this username" });
      continue;
    }
    const name = resourceName(r.username, userNames);
    const user = { apiVersion: API_VERSION, kind: "DaguUser" as const, metadata: meta(name), spec: { authRef, username: r.username, role: r.role, email: r.email, sso: true, ...(r.disabled ? { disabled: true } : {}) } };
    DaguUser.parse(user);
    resources.push(user);
    pinned.push(`${r.username} (${r.role})`);
  }
  if (pinned.length > 0) {
    warnings.push({
      key: "--state-dir SSO users",
      message:
        `${pinned.join(", ")}: DaguUsers with sso: true, matched by email at their next SSO login; their role is now pinned ` +
        "(the DaguUser wins over role mapping): delete a DaguUser to let role mapping decide again",
    });
  }

  const keyNames = new Set<string>();
  const converted: string[] = [];
  for (const k of byCreation(state.apiKeys)) {
    const name = resourceName(k.name, keyNames);
    const spec = {
      authRef,
      role: k.role,
      allowedSurfaces: [...new Set(k.allowedSurfaces)],
      secretName: resourceName(`${name}-api-key`, secretNames),
      ...(k.description ? { description: k.description.slice(0, 256) } : {}),
    };
    const key = { apiVersion: API_VERSION, kind: "DaguApiKey" as const, metadata: meta(name), spec };
    DaguApiKey.parse(key);
    resources.push(key);
    converted.push(`${k.name} (Secret ${spec.secretName})`);
    if (k.attributionClass === "user_owned") notes.push(`API key ${k.name} was owned by a user; a DaguApiKey belongs to nobody (a service account, in Dagu's words)`);
  }
  if (converted.length > 0) {
    warnings.push({
      key: "--state-dir API keys",
      message: `${converted.join(", ")}: the operator generates a new key for each (the sidecar kept only a digest of the old one); give the new keys to their clients`,
    });
  }

  const hookNames = new Set<string>();
  const hooks: string[] = [];
  for (const w of byCreation(state.webhooks)) {
    const name = resourceName(w.dagName, hookNames);
    const secretName = resourceName(`${name}-webhook`, secretNames);
    const auth = { mode: w.mode, ...(w.mode === "tokenAndHmac" ? { hmacEnforcement: w.hmacEnforcement } : {}) };
    const hook = { apiVersion: API_VERSION, kind: "DaguWebhook" as const, metadata: meta(name), spec: { authRef, dagName: w.dagName, auth, secretName, ...(w.enabled ? {} : { enabled: false }) } };
    DaguWebhook.parse(hook);
    resources.push(hook);
    hooks.push(`${w.dagName} (Secret ${secretName})`);
  }
  if (hooks.length > 0) {
    warnings.push({
      key: "--state-dir webhooks",
      message: `${hooks.join(", ")}: the operator generates a new token (and HMAC secret) for each; give them to the senders`,
    });
  }
  if (Object.keys(state.passwordChanges).length > 0) {
    notes.push("a password the initial admin changed in Dagu's UI is not carried over: its password is the configured one again");
  }
  const hasAdmin = users.some((u) => u.role === "admin" && !u.disabled);
  return { resources, secrets, warnings, notes, hasAdmin };
}
