// Assembles the credentials document of one DaguAuth from what its children
// offered, the initial admin, the basic credential, the signing keys and the
// self-service password changes. Pure: the reconciler reads and writes around it.
import { durationSeconds, passwordChangeWins, type CredentialApiKey, type CredentialRemoteNode, type CredentialUser, type CredentialWebhook, type Credentials, type DaguAuthSpec, type OidcSettings, type PasswordChanges } from "../api/index.ts";
import { resolveConflicts, type Claim } from "./claim-conflicts.ts";
import type { ReadyState } from "./conditions.ts";
import type { ApiKeyInput, AuthMaterials, UserInput, WebhookInput } from "./materials.ts";
import type { PasswordRecord } from "./operator-state.ts";
import type { SigningKeysPlan } from "./signing-keys.ts";

export interface AdminInput {
  id: string;
  username: string;
  password: PasswordRecord;
}

export interface AssemblyInput {
  authName: string;
  authUid: string;
  namespace: string;
  spec: DaguAuthSpec;
  materials: AuthMaterials;
  admin?: AdminInput;
  basic?: { username: string; password: PasswordRecord };
  signing?: SigningKeysPlan;
  /** Single sign-on, with the client secret read (absent: SSO off). */
  oidc?: OidcSettings;
  changes: PasswordChanges;
  /** spec.remoteNodes, resolved (remote-nodes.ts). */
  remoteNodes?: CredentialRemoteNode[];
}

export interface Assembly {
  /** The document without its generation (set when it is written). */
  document: Omit<Credentials, "generation">;
  userInputs: Map<string, UserInput>;
  rejectedUsers: Map<string, ReadyState>;
  apiKeyInputs: Map<string, ApiKeyInput>;
  webhookInputs: Map<string, WebhookInput>;
  rejectedWebhooks: Map<string, ReadyState>;
}

/** The newer of the source password and a self-service change wins (passwordChangeWins). */
function effective(record: PasswordRecord, change: PasswordChanges[string] | undefined): { hash: string; changedAt: string } {
  if (passwordChangeWins(change, record.sourceChangedAt)) {
    return { hash: change.passwordHash, changedAt: change.changedAt };
  }
  return { hash: record.hash, changedAt: record.sourceChangedAt };
}

const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export function assembleCredentials(input: AssemblyInput): Assembly {
  const { materials, spec } = input;

  // Users: the initial admin first, then the DaguUsers that offered a password.
  const userInputs = new Map<string, UserInput>();
  for (const [uid, child] of materials.users) if (child.ok) userInputs.set(uid, child.value);
  const claims: Claim[] = [...userInputs.values()].map((u) => ({ id: u.id, key: u.username, objectName: u.objectName, creationTimestamp: u.creationTimestamp, isInitialAdmin: false }));
  if (input.admin) claims.push({ id: input.admin.id, key: input.admin.username, objectName: "", creationTimestamp: "", isInitialAdmin: true });
  const users = resolveConflicts(claims);
  const rejectedUsers = new Map<string, ReadyState>();
  for (const [id, held] of users.losers) {
    const u = userInputs.get(id);
    if (u) rejectedUsers.set(id, { ready: false, reason: "DuplicateUsername", message: `username ${u.username} is already used by ${held.heldByName === "the initial admin" ? "the initial admin" : `DaguUser ${held.heldByName}`}` });
  }
  const credentialUsers: CredentialUser[] = [];
  if (input.admin && users.winners.has(input.admin.id)) {
    const e = effective(input.admin.password, input.changes[input.admin.id]);
    credentialUsers.push({ id: input.admin.id, username: input.admin.username, role: "admin", passwordHash: e.hash, passwordChangedAt: e.changedAt, disabled: false, allowPasswordChange: true });
  }
  for (const u of userInputs.values()) {
    if (!users.winners.has(u.id)) continue;
    // A user who only signs in through SSO has no password: tokens count from the DaguUser's creation.
    const e = u.password ? effective(u.password, u.allowPasswordChange ? input.changes[u.id] : undefined) : undefined;
    credentialUsers.push({
      id: u.id,
      username: u.username,
      role: u.role,
      ...(u.email ? { email: u.email } : {}),
      ...(e ? { passwordHash: e.hash } : {}),
      ...(u.sso ? { sso: true } : {}),
      passwordChangedAt: e?.changedAt ?? u.creationTimestamp,
      disabled: u.disabled,
      allowPasswordChange: e !== undefined && u.allowPasswordChange,
    });
  }

  const apiKeyInputs = new Map<string, ApiKeyInput>();
  const apiKeys: CredentialApiKey[] = [];
  for (const [uid, child] of materials.apiKeys) {
    if (!child.ok) continue;
    apiKeyInputs.set(uid, child.value);
    apiKeys.push(...child.value.entries);
  }

  const webhookInputs = new Map<string, WebhookInput>();
  const webhookClaims: Claim[] = [];
  for (const [uid, child] of materials.webhooks) {
    if (!child.ok) continue;
    webhookInputs.set(uid, child.value);
    webhookClaims.push({ id: uid, key: child.value.entry.dagName, objectName: child.value.objectName, creationTimestamp: child.value.creationTimestamp, isInitialAdmin: false });
  }
  const hooks = resolveConflicts(webhookClaims);
  const rejectedWebhooks = new Map<string, ReadyState>();
  for (const [id, held] of hooks.losers) {
    rejectedWebhooks.set(id, { ready: false, reason: "DuplicateDagName", message: `DAG ${webhookInputs.get(id)!.entry.dagName} already has a webhook: DaguWebhook ${held.heldByName}` });
  }
  const webhooks: CredentialWebhook[] = [...webhookInputs.values()].map((w) => w.entry).filter((w) => hooks.winners.has(w.id));

  const login = spec.login;
  const document: Omit<Credentials, "generation"> = {
    version: 1,
    authName: input.authName,
    authUid: input.authUid,
    mode: spec.mode,
    ...(input.signing
      ? {
          token: {
            issuer: `dagu-auth/${input.namespace}/${input.authName}`,
            audience: `dagu/${input.namespace}/${input.authName}`,
            ttlSeconds: durationSeconds(spec.builtin?.token.ttl ?? "24h"),
            activeKid: input.signing.activeKid,
            keys: input.signing.keys,
          },
        }
      : {}),
    users: credentialUsers.sort(byId),
    ...(input.basic ? { basic: { username: input.basic.username, passwordHash: effective(input.basic.password, undefined).hash } } : {}),
    // Builtin only, as in Dagu (the document refuses them in basic mode): offers left from before a switch to basic are dropped.
    apiKeys: spec.mode === "builtin" ? apiKeys.sort((a, b) => byId(a, b) || (a.digest < b.digest ? -1 : 1)) : [],
    webhooks: spec.mode === "builtin" ? webhooks.sort(byId) : [],
    login: { maxAttempts: login.maxAttempts, windowSeconds: durationSeconds(login.window), lockoutSeconds: durationSeconds(login.lockout) },
    trustedProxies: spec.trustedProxies ?? [],
    ...(input.remoteNodes && input.remoteNodes.length > 0 ? { remoteNodes: input.remoteNodes } : {}),
    ...(input.oidc ? { oidc: input.oidc } : {}),
  };
  return { document, userInputs, rejectedUsers, apiKeyInputs, webhookInputs, rejectedWebhooks };
}
