// Bearer API keys (`dagu_` + base58 of 32 random bytes). A 256-bit random key needs no slow hash: the
// key's SHA-256 digest is the lookup key (constant cost per request, unlike Dagu 1.30.3, which bcrypt-
// compares the key with every stored key in turn), and the stored digest is compared in constant time.
import type { API_KEY_SURFACES, CredentialApiKey } from "../../api/credentials.ts";
import { digestsEqual, isApiKeyShaped, sha256Hex } from "../../common/tokens.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";

export type ApiKeyResult = { ok: true; key: CredentialApiKey } | { ok: false; reason: "malformed" | "unknown" | "expired" | "surface" | "owner" };

/** Where a key is presented: Dagu's REST API (and its streams), or its MCP endpoint. */
export type ApiKeySurface = (typeof API_KEY_SURFACES)[number];

export function verifyApiKey(snapshot: CredentialSnapshot, presented: string, now = Date.now(), surface: ApiKeySurface = "rest_api"): ApiKeyResult {
  if (!isApiKeyShaped(presented)) return { ok: false, reason: "malformed" };
  const digest = sha256Hex(presented);
  const key = snapshot.apiKeysByDigest.get(digest);
  if (!key || !digestsEqual(key.digest, digest)) return { ok: false, reason: "unknown" };
  // expiresAt: the key's declared end; notAfter: the end of a rotation overlap.
  for (const end of [key.expiresAt, key.notAfter]) {
    if (end !== undefined && Date.parse(end) <= now) return { ok: false, reason: "expired" };
  }
  // Dagu 2.15.1: a key works only on its surfaces (absent: both, Dagu's default); a user-owned key works
  // only while its owner exists and is enabled.
  if (key.allowedSurfaces && !key.allowedSurfaces.includes(surface)) return { ok: false, reason: "surface" };
  if (key.attributionClass === "user_owned") {
    const owner = key.ownerUserId === undefined ? undefined : snapshot.usersById.get(key.ownerUserId);
    if (!owner || owner.disabled) return { ok: false, reason: "owner" };
  }
  return { ok: true, key };
}
