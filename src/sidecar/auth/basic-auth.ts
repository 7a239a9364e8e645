// HTTP Basic in basic mode: the one basic user (admin). Browsers send the credential with every request,
// so verifying argon2id each time would cost ~22 ms per request; after one successful verify the
// credential is remembered in a bounded cache keyed by HMAC(per-process key, credential), never by the
// password itself, and an entry counts only while the stored hash is the one it was verified against.
import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import { verifyDummy, verifyPassword } from "../../common/password-hash.ts";

export interface BasicCredential {
  readonly username: string;
  readonly password: string;
}

/**
 * Parses `Authorization: Basic <base64(user:pass)>`; undefined when the value is not Basic at all,
 * "malformed" when it is Basic but unusable (bad base64, no colon, control characters).
 */
export function parseBasic(header: string): BasicCredential | "malformed" | undefined {
  // The scheme alone, then a slice: `^Basic +(.*)$` backtracks quadratically on a long run of spaces
  // before a line break (9 s for 64 KiB).
  const scheme = /^Basic +/i.exec(header);
  if (!scheme) return undefined;
  const encoded = header.slice(scheme[0].length).trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) return "malformed";
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  // eslint-disable-next-line no-control-regex
  if (colon <= 0 || /[\u0000-\u001f\u007f\ufffd]/.test(decoded)) return "malformed";
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

interface CacheEntry {
  readonly hash: string;
  readonly expiresAt: number;
}

/** Verified Basic credentials remembered at most. */
export const BASIC_CACHE_MAX_ENTRIES = 1024;

export class BasicVerifier {
  // A KeyObject, not a Buffer: createHmac() turns a Buffer key into one on every call (~7 µs).
  readonly #key = createSecretKey(randomBytes(32));
  readonly #cache = new Map<string, CacheEntry>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;

  constructor(options: { maxEntries?: number; ttlMs?: number } = {}) {
    this.#maxEntries = options.maxEntries ?? BASIC_CACHE_MAX_ENTRIES;
    this.#ttlMs = options.ttlMs ?? 10 * 60_000;
  }

  /** Drop entries verified against another hash (called when the credentials change). */
  retainHash(hash: string | undefined): void {
    for (const [key, entry] of this.#cache) if (entry.hash !== hash) this.#cache.delete(key);
  }

  get size(): number {
    return this.#cache.size;
  }

  /** True when this exact credential was verified against this exact hash recently (no slow hash). */
  cached(expected: { username: string; passwordHash: string }, presented: BasicCredential, now = Date.now()): boolean {
    const key = this.#cacheKey(presented);
    const hit = this.#cache.get(key);
    if (hit && hit.hash === expected.passwordHash && hit.expiresAt > now && presented.username === expected.username) return true;
    if (hit) this.#cache.delete(key);
    return false;
  }

  /** The slow check (argon2id; unknown usernames cost a dummy verify); remembers a success. */
  async verify(expected: { username: string; passwordHash: string }, presented: BasicCredential, now = Date.now()): Promise<boolean> {
    const ok =
      presented.username === expected.username
        ? await verifyPassword(expected.passwordHash, presented.password)
        : await verifyDummy(presented.password);
    if (ok) {
      if (this.#cache.size >= this.#maxEntries) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(this.#cacheKey(presented), { hash: expected.passwordHash, expiresAt: now + this.#ttlMs });
    }
    return ok;
  }

  #cacheKey(presented: BasicCredential): string {
    return createHmac("sha256", this.#key).update(`${presented.username}\0${presented.password}`).digest("base64url");
  }
}
