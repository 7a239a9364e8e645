// Users, API keys and webhooks in the shapes of Dagu's API (api.yaml User, APIKey, WebhookDetails; Dagu 1
// has fewer fields), from the credentials document: never a hash, a digest or a secret. Fields the
// document does not know (a DaguUser's creation time) fall back to what it does.
import { API_KEY_SURFACES, type CredentialApiKey, type CredentialUser, type CredentialWebhook } from "../../api/credentials.ts";
import { WEBHOOK_TOKEN_PREFIX } from "../../common/tokens.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";
import type { DaguApiProfile } from "../routes/dagu-api.ts";

/** Every identity behind the sidecar sees every workspace: the sidecar enforces no workspace grants. */
const ALL_WORKSPACES = { all: true, grants: [] } as const;

export function userJson(profile: DaguApiProfile, user: CredentialUser): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: user.id,
    username: user.username,
    role: profile.uiRole(user.role),
    createdAt: user.createdAt ?? user.passwordChangedAt,
    updatedAt: user.updatedAt ?? user.passwordChangedAt,
  };
  // Dagu 2 adds the provider and the workspace access, and sets isDisabled only when true. A user
  // without a password here signs in through the OpenID provider only.
  if (profile.daguMajor >= 2) Object.assign(json, { workspaceAccess: ALL_WORKSPACES, authProvider: user.passwordHash === undefined ? "oidc" : "builtin", ...(user.disabled ? { isDisabled: true } : {}) });
  return json;
}

export function apiKeyJson(profile: DaguApiProfile, key: CredentialApiKey, snapshot: CredentialSnapshot): Record<string, unknown> {
  const json: Record<string, unknown> = {
    id: key.id,
    name: key.name,
    description: key.description,
    role: profile.uiRole(key.role),
    keyPrefix: key.prefix,
    createdAt: key.createdAt,
    updatedAt: key.updatedAt ?? key.createdAt,
    createdBy: key.createdBy ?? "dagu-auth",
    lastUsedAt: null,
  };
  if (profile.daguMajor < 2) return json;
  const attribution = key.attributionClass ?? "service_account";
  return {
    ...json,
    workspaceAccess: ALL_WORKSPACES,
    // Where the key works (api-key-auth.ts): a key without the field works on both, as in Dagu.
    allowedSurfaces: key.allowedSurfaces ?? [...API_KEY_SURFACES],
    attributionClass: attribution,
    ...(attribution === "user_owned"
      ? { ownerUserId: key.ownerUserId, ownerUsername: key.ownerUserId === undefined ? undefined : snapshot.usersById.get(key.ownerUserId)?.username }
      : { serviceAccountId: `api_key:${key.id}`, serviceAccountName: key.serviceAccountName ?? key.name }),
  };
}

export function webhookJson(profile: DaguApiProfile, webhook: CredentialWebhook, snapshot: CredentialSnapshot): Record<string, unknown> {
  const at = new Date(snapshot.loadedAt).toISOString();
  const base = {
    id: webhook.id,
    dagName: webhook.dagName,
    // A declared webhook's document keeps digests only: then the prefix says what kind of token it is.
    tokenPrefix: webhook.tokenPrefix ?? WEBHOOK_TOKEN_PREFIX,
    enabled: webhook.enabled,
    createdAt: webhook.createdAt ?? at,
    updatedAt: webhook.updatedAt ?? at,
    createdBy: webhook.createdBy ?? "dagu-auth",
  };
  if (profile.daguMajor < 2) return base;
  const hmacEnabled = webhook.mode !== "token";
  return {
    ...base,
    authMode: webhook.mode === "token" ? "token_only" : webhook.mode === "hmac" ? "hmac_only" : "token_and_hmac",
    hmac: hmacEnabled
      ? {
          enabled: true,
          secretConfigured: webhook.hmacSecrets.length > 0,
          enforcementMode: webhook.mode === "tokenAndHmac" ? webhook.hmacEnforcement : "strict",
          algorithm: "HMAC-SHA256",
          headerName: "X-Dagu-Signature",
          format: "sha256=<hex>",
          ...(webhook.hmacUpdatedAt ? { updatedAt: webhook.hmacUpdatedAt } : {}),
        }
      : { enabled: false, secretConfigured: webhook.hmacSecrets.length > 0 },
    profileSelection: { allowedProfiles: [] },
  };
}
