// Failed-login throttling per username and per client address, checked BEFORE any password hashing:
// a locked key costs nothing, so neither guessing nor a flood of logins can keep argon2 busy. Settings
// come from the credentials' `login` block: `maxAttempts` failures within `windowSeconds` lock the key
// for `lockoutSeconds`. A client address gets ADDRESS_FACTOR times the attempts, because many people can
// share one address (an office NAT, the ingress when no trusted proxy is configured).
import type { Credentials } from "../api/credentials.ts";

export type LoginSettings = Credentials["login"];

export const ADDRESS_FACTOR = 4;

interface Entry {
  /** Failure times (epoch ms) inside the window, oldest first; at most the key's limit. */
  failures: number[];
  lockedUntil: number;
}

export interface ThrottleDecision {
  readonly allowed: boolean;
  /** Seconds until a locked key opens again (for Retry-After). */
  readonly retryAfterSeconds: number;
}

export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();
  readonly #maxKeys: number;
  #settings: LoginSettings;

  constructor(settings: LoginSettings, maxKeys = 50_000) {
    this.#settings = settings;
    this.#maxKeys = maxKeys;
  }

  /** New settings apply to the next decision; recorded failures are kept. */
  configure(settings: LoginSettings): void {
    this.#settings = settings;
  }

  /** May this username, from this address, try a password now? Never hashes anything. */
  check(username: string, address: string, now = Date.now()): ThrottleDecision {
    const until = Math.max(this.#lockedUntil(userKey(username), now), this.#lockedUntil(addressKey(address), now));
    return until > now ? { allowed: false, retryAfterSeconds: Math.ceil((until - now) / 1000) } : { allowed: true, retryAfterSeconds: 0 };
  }

  recordFailure(username: string, address: string, now = Date.now()): void {
    this.#fail(userKey(username), this.#settings.maxAttempts, now);
    this.#fail(addressKey(address), this.#settings.maxAttempts * ADDRESS_FACTOR, now);
  }

  /** A successful login clears the username's failures (not the address's: one valid account must not reset it). */
  recordSuccess(username: string): void {
    this.#entries.delete(userKey(username));
  }

  get size(): number {
    return this.#entries.size;
  }

  #lockedUntil(key: string, now: number): number {
    const entry = this.#entries.get(key);
    if (!entry) return 0;
    if (entry.lockedUntil > now) return entry.lockedUntil;
    if (entry.lockedUntil !== 0 || this.#expired(entry, now)) this.#entries.delete(key);
    return 0;
  }

  #expired(entry: Entry, now: number): boolean {
    const last = entry.failures[entry.failures.length - 1] ?? 0;
    return last <= now - this.#settings.windowSeconds * 1000;
  }

  #fail(key: string, limit: number, now: number): void {
    const windowStart = now - this.#settings.windowSeconds * 1000;
    let entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key); // re-insert: the Map's order is least recently failed first
    } else {
      if (this.#entries.size >= this.#maxKeys) this.#prune(now);
      entry = { failures: [], lockedUntil: 0 };
    }
    entry.failures = entry.failures.filter((t) => t > windowStart);
    entry.failures.push(now);
    if (entry.failures.length > limit) entry.failures.splice(0, entry.failures.length - limit);
    if (entry.failures.length >= limit) {
      entry.lockedUntil = now + this.#settings.lockoutSeconds * 1000;
      entry.failures = [];
    }
    this.#entries.set(key, entry);
  }

  /** Drops expired keys; if the map is still full, the least recently failed tenth. */
  #prune(now: number): void {
    for (const [key, entry] of this.#entries) {
      if (entry.lockedUntil <= now && this.#expired(entry, now)) this.#entries.delete(key);
    }
    let drop = this.#entries.size >= this.#maxKeys ? Math.ceil(this.#maxKeys / 10) : 0;
    for (const key of this.#entries.keys()) {
      if (drop-- <= 0) break;
      this.#entries.delete(key);
    }
  }
}

// Usernames are matched exactly by Dagu, but throttling folds case so "Admin" and "admin" share a budget.
const userKey = (username: string) => `u:${username.toLowerCase()}`;
const addressKey = (address: string) => `a:${address}`;
