// Dagu-compatible token formats: `dagu_` + base58(32 random bytes) for API keys and
// `dagu_wh_` + base58(32 random bytes) for webhook tokens. Both carry 256 bits of
// entropy, so a plain SHA-256 digest is a safe lookup key (no slow hash needed).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import bs58 from "bs58";

export const API_KEY_PREFIX = "dagu_";
export const WEBHOOK_TOKEN_PREFIX = "dagu_wh_";
/** base58 of 32 bytes is 32 to 44 characters (leading zero bytes shorten it). */
const BODY = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/;

function generate(prefix: string): string {
  return prefix + bs58.encode(randomBytes(32));
}

export const generateApiKey = (): string => generate(API_KEY_PREFIX);
export const generateWebhookToken = (): string => generate(WEBHOOK_TOKEN_PREFIX);

/** A random 256-bit secret, base64url (HMAC keys, JWT signing keys). */
export const generateSecret = (): string => randomBytes(32).toString("base64url");

/** True when `value` has the shape of a Dagu API key (not a webhook token). */
export function isApiKeyShaped(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX) && !value.startsWith(WEBHOOK_TOKEN_PREFIX) && BODY.test(value.slice(API_KEY_PREFIX.length));
}

export function isWebhookTokenShaped(value: string): boolean {
  return value.startsWith(WEBHOOK_TOKEN_PREFIX) && BODY.test(value.slice(WEBHOOK_TOKEN_PREFIX.length));
}

export function sha256Hex(value: string | Buffer): string {
  return createHash("sha256").update(value).digest("hex");
}

/** The non-secret start of a key, for status and listings (Dagu shows a prefix too). */
export function keyPrefix(key: string): string {
  return key.slice(0, key.startsWith(WEBHOOK_TOKEN_PREFIX) ? 12 : 9);
}

/** Constant-time comparison of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}
