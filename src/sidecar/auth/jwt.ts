// Login tokens: HS256 JWTs with Dagu's claims (`sub` = user id, `uid`, `username`, `role`,
// `pwd_changed_at_ns`, `iat`, `exp`), plus a `kid` header and `iss`/`aud` from the credentials' token
// settings. Verification pins HS256, requires a known and unexpired key id, `exp` and `iat`, and then
// checks the token against the credentials in force: the user must exist and be enabled, and the token
// must belong to the user's current password (tokens issued before a change die). The role always
// comes from the credentials, never from the token.
import { createHash } from "node:crypto";
import { errors, jwtVerify, SignJWT, type JWTHeaderParameters, type JWTPayload } from "jose";
import { z } from "zod";
import { rfc3339ToNanos, type CredentialUser } from "../../api/credentials.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";

/** Seconds of clock difference tolerated on exp, nbf and iat. */
export const CLOCK_TOLERANCE_SECONDS = 5;

const Claims = z.object({
  sub: z.string().min(1),
  uid: z.string().min(1),
  username: z.string(),
  role: z.string(),
  pwd_changed_at_ns: z.number(),
  iat: z.number(),
  exp: z.number(),
});
type Claims = z.infer<typeof Claims>;

export type JwtFailure =
  | "malformed"
  | "unknown_key"
  | "bad_signature"
  | "bad_claims"
  | "expired"
  | "not_yet_valid"
  | "unknown_user"
  | "disabled_user"
  | "password_changed"
  | "no_token_settings";

export type JwtResult = { ok: true; user: CredentialUser; claims: Claims } | { ok: false; reason: JwtFailure };

/** Dagu stores passwordChangedAt in nanoseconds; a JSON number keeps it to ~256 ns, which is enough. */
export function passwordChangedAtNs(user: CredentialUser): number {
  return Number(rfc3339ToNanos(user.passwordChangedAt));
}

export async function issueToken(snapshot: CredentialSnapshot, user: CredentialUser, now = Date.now()): Promise<{ token: string; expiresAt: Date }> {
  const settings = snapshot.credentials.token;
  const key = settings ? snapshot.signingKeys.get(settings.activeKid) : undefined;
  if (!settings || !key) throw new Error("builtin mode has no active signing key");
  const iat = Math.floor(now / 1000);
  const exp = iat + settings.ttlSeconds;
  const token = await new SignJWT({
    uid: user.id,
    username: user.username,
    role: user.role,
    pwd_changed_at_ns: passwordChangedAtNs(user),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: key.kid })
    .setSubject(user.id)
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(key.secret);
  return { token, expiresAt: new Date(exp * 1000) };
}

interface CachedToken {
  readonly claims: Claims;
  readonly kid: string;
}

/** Verified tokens remembered at most (a flood of distinct valid tokens evicts, never grows the map). */
export const JWT_CACHE_MAX_ENTRIES = 10_000;

/** Verifies login tokens; remembers verified ones (by digest) until they expire, in a bounded cache. */
export class JwtVerifier {
  readonly #cache = new Map<string, CachedToken>();
  readonly #maxEntries: number;

  constructor(maxEntries = JWT_CACHE_MAX_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  /** Forget every verified token (the credentials changed: issuer, audience or keys may differ). */
  clear(): void {
    this.#cache.clear();
  }

  get size(): number {
    return this.#cache.size;
  }

  async verify(snapshot: CredentialSnapshot, token: string, now = Date.now()): Promise<JwtResult> {
    const settings = snapshot.credentials.token;
    if (!settings) return { ok: false, reason: "no_token_settings" };
    const cacheKey = createHash("sha256").update(token).digest("base64url");
    let entry = this.#cache.get(cacheKey);
    if (!entry) {
      const verified = await this.#verifySignature(snapshot, token, now);
      if (!verified.ok) return verified;
      entry = verified.entry;
      if (this.#cache.size >= this.#maxEntries) this.#evict(now);
      this.#cache.set(cacheKey, entry);
    }
    const result = checkAgainstCredentials(snapshot, entry, now);
    if (!result.ok && (result.reason === "expired" || result.reason === "unknown_key")) this.#cache.delete(cacheKey);
    return result;
  }

  async #verifySignature(snapshot: CredentialSnapshot, token: string, now: number): Promise<{ ok: true; entry: CachedToken } | { ok: false; reason: JwtFailure }> {
    const settings = snapshot.credentials.token!;
    let kid = "";
    const getKey = (header: JWTHeaderParameters): Uint8Array => {
      const key = header.kid !== undefined ? snapshot.signingKeys.get(header.kid) : undefined;
      if (!key || (key.notAfterMs !== undefined && key.notAfterMs <= now)) throw new UnknownKey();
      kid = key.kid;
      return key.secret;
    };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        algorithms: ["HS256"],
        issuer: settings.issuer,
        audience: settings.audience,
        requiredClaims: ["exp", "iat", "sub"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(now),
      }));
    } catch (error) {
      return { ok: false, reason: failureOf(error) };
    }
    const claims = Claims.safeParse(payload);
    if (!claims.success || claims.data.uid !== claims.data.sub) return { ok: false, reason: "bad_claims" };
    return { ok: true, entry: { claims: claims.data, kid } };
  }

  /** Drops expired entries; if none expired, the oldest quarter (Map keeps insertion order). */
  #evict(now: number): void {
    for (const [key, entry] of this.#cache) if (entry.claims.exp * 1000 <= now) this.#cache.delete(key);
    if (this.#cache.size < this.#maxEntries) return;
    let drop = Math.ceil(this.#maxEntries / 4);
    for (const key of this.#cache.keys()) {
      if (drop-- <= 0) break;
      this.#cache.delete(key);
    }
  }
}

class UnknownKey extends Error {}

function failureOf(error: unknown): JwtFailure {
  if (error instanceof UnknownKey) return "unknown_key";
  if (error instanceof errors.JWTExpired) return "expired";
  if (error instanceof errors.JWTClaimValidationFailed) return error.claim === "nbf" ? "not_yet_valid" : "bad_claims";
  if (error instanceof errors.JWSSignatureVerificationFailed) return "bad_signature";
  return "malformed";
}

/** The checks that depend on the credentials in force, run on every request (cached or not). */
function checkAgainstCredentials(snapshot: CredentialSnapshot, entry: CachedToken, now: number): JwtResult {
  const { claims } = entry;
  if (claims.exp * 1000 <= now - CLOCK_TOLERANCE_SECONDS * 1000) return { ok: false, reason: "expired" };
  const key = snapshot.signingKeys.get(entry.kid);
  if (!key || (key.notAfterMs !== undefined && key.notAfterMs <= now)) return { ok: false, reason: "unknown_key" };
  const user = snapshot.usersById.get(claims.sub);
  if (!user) return { ok: false, reason: "unknown_user" };
  if (user.disabled) return { ok: false, reason: "disabled_user" };
  // The token belongs to exactly the password in force when it was issued.
  if (claims.pwd_changed_at_ns !== passwordChangedAtNs(user)) return { ok: false, reason: "password_changed" };
  const changedAtSeconds = Math.floor(Date.parse(user.passwordChangedAt) / 1000);
  if (claims.iat + CLOCK_TOLERANCE_SECONDS < changedAtSeconds) return { ok: false, reason: "password_changed" };
  return { ok: true, user, claims };
}
