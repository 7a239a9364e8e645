// The HS256 key login tokens are signed with, from a configured token secret (Dagu's `token.secret`,
// DAGU_AUTH_TOKEN_SECRET, a DaguAuth's spec.builtin.token.secretRef): one derivation for the operator,
// the standalone sidecar and the documentation, so a secret means the same key everywhere.
// - 32 bytes or more: the secret's UTF-8 bytes are the key, as before this function existed (tokens
//   already issued stay valid).
// - 1 to 31 bytes (Dagu's own example `your-secure-random-secret` is 25): accepted with a warning, and
//   HKDF-SHA256 (RFC 5869; no salt, the info string below, 32 bytes out) derives a 256-bit key from it.
//   The derivation gives HS256 a key of the size it needs; it adds no entropy, so the warning stays.
import { hkdfSync } from "node:crypto";

export const MIN_TOKEN_SECRET_BYTES = 32;
/** HKDF's `info`: names what the key is for, so the same secret never yields this key elsewhere. */
export const TOKEN_KEY_HKDF_INFO = "dagu-auth token signing key v1";

/** True for a secret the derivation stretches (shorter than 32 bytes); the empty string is no secret. */
export function isShortTokenSecret(secret: string): boolean {
  const bytes = Buffer.byteLength(secret, "utf8");
  return bytes > 0 && bytes < MIN_TOKEN_SECRET_BYTES;
}

/** The 256-bit (or longer) HS256 key of a configured secret; throws on the empty string. */
export function tokenSigningKey(secret: string): Buffer {
  const bytes = Buffer.from(secret, "utf8");
  if (bytes.length === 0) throw new Error("the token secret is empty");
  if (bytes.length >= MIN_TOKEN_SECRET_BYTES) return bytes;
  return Buffer.from(hkdfSync("sha256", bytes, Buffer.alloc(0), TOKEN_KEY_HKDF_INFO, 32));
}

/** The warning every path gives for a short secret; `what` names where it came from. Never the secret. */
export function shortTokenSecretWarning(what: string): string {
  return (
    `${what} is shorter than ${MIN_TOKEN_SECRET_BYTES} bytes: accepted, and a 256-bit signing key is derived ` +
    `from it (HKDF-SHA256), but a short secret is easier to guess; use at least ${MIN_TOKEN_SECRET_BYTES} random bytes ` +
    "(changing it logs everyone out)"
  );
}
