// What a standalone sidecar keeps in `--state-dir` of the users, API keys and webhooks created through
// Dagu's own API (and its first-run setup page), and how they become part of the credentials document.
// Secrets are kept as the Kubernetes mode keeps them: argon2id password hashes, SHA-256 digests of API
// keys and webhook tokens (their plaintext is shown once, never stored), webhook HMAC secrets (needed to
// verify signatures), in a file of mode 0600.
import { z } from "zod";
import { Role, USERNAME_PATTERN } from "../../api/common.ts";
import { API_KEY_ATTRIBUTIONS, API_KEY_SURFACES, type CredentialApiKey, type CredentialUser, type CredentialWebhook } from "../../api/credentials.ts";
import { DAG_NAME_PATTERN, HMAC_ENFORCEMENTS, WEBHOOK_MODES } from "../../api/dagu-webhook.ts";

const rfc3339 = z.iso.datetime({ offset: true });
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const argon2id = z.string().startsWith("$argon2id$");

export const StoredUser = z.object({
  id: z.uuid(),
  username: z.string().regex(USERNAME_PATTERN),
  role: Role,
  passwordHash: argon2id,
  /** Tokens issued before it are refused (a reset, a change). */
  passwordChangedAt: rfc3339,
  disabled: z.boolean(),
  createdAt: rfc3339,
  updatedAt: rfc3339,
});
export type StoredUser = z.infer<typeof StoredUser>;

export const StoredApiKey = z.object({
  id: z.uuid(),
  name: z.string().min(1).max(100),
  description: z.string().max(500).optional(),
  role: Role,
  digest: sha256Hex,
  prefix: z.string().max(16),
  allowedSurfaces: z.array(z.enum(API_KEY_SURFACES)).min(1),
  attributionClass: z.enum(API_KEY_ATTRIBUTIONS),
  ownerUserId: z.string().min(1).optional(),
  serviceAccountName: z.string().max(100).optional(),
  createdBy: z.string(),
  createdAt: rfc3339,
  updatedAt: rfc3339,
});
export type StoredApiKey = z.infer<typeof StoredApiKey>;

export const StoredWebhook = z.object({
  id: z.uuid(),
  dagName: z.string().regex(DAG_NAME_PATTERN),
  enabled: z.boolean(),
  mode: z.enum(WEBHOOK_MODES),
  hmacEnforcement: z.enum(HMAC_ENFORCEMENTS),
  /** Kept in every mode, as Dagu keeps it: turning HMAC off again needs the token. */
  tokenDigest: sha256Hex,
  tokenPrefix: z.string().max(16),
  /** base64url of 32 random bytes, the format of the Kubernetes mode; the signature's key is this text (UTF-8), as in Dagu. */
  hmacSecret: z.string().optional(),
  hmacUpdatedAt: rfc3339.optional(),
  createdBy: z.string(),
  createdAt: rfc3339,
  updatedAt: rfc3339,
});
export type StoredWebhook = z.infer<typeof StoredWebhook>;

/** The part of the state file this module owns; each is keyed by id. */
export const StandaloneRecords = {
  users: z.record(z.string(), StoredUser).default({}),
  apiKeys: z.record(z.string(), StoredApiKey).default({}),
  webhooks: z.record(z.string(), StoredWebhook).default({}),
};

export interface StandaloneRecordSet {
  users: Record<string, StoredUser>;
  apiKeys: Record<string, StoredApiKey>;
  webhooks: Record<string, StoredWebhook>;
}

export function credentialUser(u: StoredUser): CredentialUser {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    passwordHash: u.passwordHash,
    passwordChangedAt: u.passwordChangedAt,
    disabled: u.disabled,
    allowPasswordChange: true,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
  };
}

export function credentialApiKey(k: StoredApiKey): CredentialApiKey {
  return {
    id: k.id,
    name: k.name,
    ...(k.description ? { description: k.description } : {}),
    role: k.role,
    digest: k.digest,
    prefix: k.prefix,
    createdAt: k.createdAt,
    updatedAt: k.updatedAt,
    createdBy: k.createdBy,
    allowedSurfaces: k.allowedSurfaces,
    attributionClass: k.attributionClass,
    ...(k.ownerUserId ? { ownerUserId: k.ownerUserId } : {}),
    ...(k.serviceAccountName ? { serviceAccountName: k.serviceAccountName } : {}),
  };
}

export function credentialWebhook(w: StoredWebhook): CredentialWebhook {
  return {
    id: w.id,
    dagName: w.dagName,
    enabled: w.enabled,
    mode: w.mode,
    hmacEnforcement: w.hmacEnforcement,
    // As the operator publishes them: no token digest in HMAC-only mode, no secret in token mode.
    tokenDigests: w.mode === "hmac" ? [] : [{ digest: w.tokenDigest }],
    hmacSecrets: w.mode !== "token" && w.hmacSecret ? [{ secret: w.hmacSecret }] : [],
    tokenPrefix: w.tokenPrefix,
    createdAt: w.createdAt,
    updatedAt: w.updatedAt,
    createdBy: w.createdBy,
    ...(w.hmacUpdatedAt ? { hmacUpdatedAt: w.hmacUpdatedAt } : {}),
  };
}

/** Oldest first, as a listing should read (ties by id, so the order is stable). */
export function byCreation<T extends { createdAt: string; id: string }>(records: Record<string, T>): T[] {
  return Object.values(records).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}
