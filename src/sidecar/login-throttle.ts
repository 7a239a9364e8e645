// Failed-login throttling per username and per client address, decided BEFORE any password hashing:
// a locked key costs nothing, so neither guessing nor a flood of logins can keep argon2 busy. Settings
// come from the credentials' `login` block: `maxAttempts` failures within `windowSeconds` lock the key
// for `lockoutSeconds`. A client address gets ADDRESS_FACTOR times the attempts, because many people can
// share one address (an office NAT, the ingress when no trusted proxy is configured).
//
// An attempt is reserved before its hash starts and counts against the limit while it runs: were only
// finished failures counted, a burst of parallel guesses would all pass the check and all be hashed.
// So at most `maxAttempts` hashes per username (and ADDRESS_FACTOR times that per address) are in flight
// or failed within the window, whatever the concurrency.
import type { Credentials } from "../api/credentials.ts";
import { boundedVerification } from "../common/password-hash.ts";
import type { PeerThrottleState, ThrottlePeers } from "./throttle-peers.ts";

export type LoginSettings = Credentials["login"];

export const ADDRESS_FACTOR = 4;

/** Retry-After when a key's budget is taken by attempts still hashing: they end within a second or so. */
const IN_FLIGHT_RETRY_SECONDS = 1;

interface Entry {
  /** Failure times (epoch ms) inside the window, oldest first; at most the key's limit. */
  failures: number[];
  /** Reserved attempts still hashing. */
  pending: number;
  lockedUntil: number;
}

export interface ThrottleDecision {
  readonly allowed: boolean;
  /** Seconds until a refused key may be tried again (for Retry-After). */
  readonly retryAfterSeconds: number;
}

/** A reserved attempt. Exactly one outcome counts; later calls are ignored, so a `finally` may fail it safely. */
export interface Attempt {
  /** The password was right: frees the slot and clears the username's failures. */
  succeeded(): void;
  /** The password was wrong: the slot becomes a recorded failure. */
  failed(now?: number): void;
  /** Nothing was hashed (the process was too busy): frees the slot without counting it. */
  cancel(): void;
}

/** What a guarded password check came to. */
export type CheckOutcome = { kind: "throttled"; retryAfterSeconds: number } | { kind: "busy" } | { kind: "checked"; ok: boolean };

export type Reservation = (ThrottleDecision & { readonly allowed: false }) | { readonly allowed: true; readonly attempt: Attempt };

export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();
  readonly #maxKeys: number;
  /** Other replicas of the same DaguAuth (throttle-peers.ts): their failures and locks count here too. */
  readonly #peers: ThrottlePeers | undefined;
  #settings: LoginSettings;

  constructor(settings: LoginSettings, maxKeys = 50_000, peers?: ThrottlePeers) {
    this.#settings = settings;
    this.#maxKeys = maxKeys;
    this.#peers = peers;
  }

  /** New settings apply to the next decision; recorded failures and reservations are kept. */
  configure(settings: LoginSettings): void {
    this.#settings = settings;
  }

  /** May this username, from this address, try a password now? Counts attempts in flight; never hashes. */
  check(username: string, address: string, now = Date.now()): ThrottleDecision {
    let lockedUntil = 0;
    let full = false;
    /** When enough failures have left the window (a full key that is not locked: the limit was lowered). */
    let freedAt = 0;
    for (const [key, limit] of this.#keys(username, address)) {
      const entry = this.#live(key, now);
      const remote = this.#remote(key, now);
      if (!entry && !remote) continue;
      const lock = Math.max(entry?.lockedUntil ?? 0, remote?.lockedUntil ?? 0);
      const failures = this.#merged(entry, remote);
      if (lock > now) lockedUntil = Math.max(lockedUntil, lock);
      else if (failures.length + (entry?.pending ?? 0) >= limit) {
        full = true;
        if (failures.length >= limit) freedAt = Math.max(freedAt, failures[failures.length - limit]! + this.#settings.windowSeconds * 1000);
      }
    }
    if (lockedUntil > now) return { allowed: false, retryAfterSeconds: Math.ceil((lockedUntil - now) / 1000) };
    if (!full) return { allowed: true, retryAfterSeconds: 0 };
    return { allowed: false, retryAfterSeconds: freedAt > now ? Math.ceil((freedAt - now) / 1000) : IN_FLIGHT_RETRY_SECONDS };
  }

  /** check(), and when allowed, takes a slot of both keys until the attempt's outcome is known. */
  reserve(username: string, address: string, now = Date.now()): Reservation {
    const decision = this.check(username, address, now);
    if (!decision.allowed) return { allowed: false, retryAfterSeconds: decision.retryAfterSeconds };
    const held = this.#keys(username, address).map(([key]) => {
      const entry = this.#touch(key, now);
      entry.pending++;
      return [key, entry] as const;
    });
    let settled = false;
    const release = (outcome: "success" | "failure" | "cancel", at = Date.now()) => {
      if (settled) return;
      settled = true;
      // Decrement the entries this attempt incremented (they are never dropped while pending).
      for (const [key, entry] of held) {
        entry.pending--;
        if (outcome !== "failure") this.#tidy(key, entry);
      }
      if (outcome === "failure") this.recordFailure(username, address, at);
      if (outcome === "success") this.recordSuccess(username);
    };
    return {
      allowed: true,
      attempt: {
        succeeded: () => release("success"),
        failed: (at) => release("failure", at),
        cancel: () => release("cancel"),
      },
    };
  }

  /**
   * One password check, the only way the sidecar runs one: a slot reserved before it starts (429 when the
   * key is locked or full), run under the process-wide bound on verifications ("busy" when too many wait,
   * nothing counted), its outcome recorded; an exception counts as a failure (fail closed).
   */
  async guard(username: string, address: string, check: () => Promise<boolean>, now = Date.now()): Promise<CheckOutcome> {
    const gate = this.reserve(username, address, now);
    if (!gate.allowed) return { kind: "throttled", retryAfterSeconds: gate.retryAfterSeconds };
    const { attempt } = gate;
    try {
      const checking = boundedVerification(check);
      if (!checking) {
        attempt.cancel();
        return { kind: "busy" };
      }
      const ok = await checking;
      if (ok) attempt.succeeded();
      else attempt.failed(now);
      return { kind: "checked", ok };
    } finally {
      attempt.failed(now); // a no-op once an outcome was recorded
    }
  }

  /** A failure that was not reserved (reserve() + failed() is the normal path). */
  recordFailure(username: string, address: string, now = Date.now()): void {
    for (const [key, limit] of this.#keys(username, address)) this.#fail(key, limit, now);
  }

  /**
   * A successful login clears the username's failures (not the address's: one valid account must not
   * reset it). Other attempts of the username still hashing keep their slots.
   */
  recordSuccess(username: string): void {
    const key = userKey(username);
    const entry = this.#entries.get(key);
    // The other replicas forget the username's failures too.
    if (entry || this.#remote(key, Date.now())) this.#peers?.publish(key, { failures: [], lockedUntil: 0, clearedAt: Date.now() }, Date.now() + this.#settings.windowSeconds * 1000);
    if (!entry) return;
    if (entry.pending > 0) Object.assign(entry, { failures: [], lockedUntil: 0 });
    else this.#entries.delete(key);
  }

  get size(): number {
    return this.#entries.size;
  }

  #keys(username: string, address: string): [string, number][] {
    return [
      [userKey(username), this.#settings.maxAttempts],
      [addressKey(address), this.#settings.maxAttempts * ADDRESS_FACTOR],
    ];
  }

  /** The entry with what no longer counts dropped (an ended lock, failures out of the window); undefined when nothing is left. */
  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (!entry || entry.lockedUntil > now) return entry;
    if (entry.lockedUntil !== 0) Object.assign(entry, { failures: [], lockedUntil: 0 }); // an ended lock starts afresh
    const windowStart = now - this.#settings.windowSeconds * 1000;
    if (entry.failures.some((t) => t <= windowStart)) entry.failures = entry.failures.filter((t) => t > windowStart);
    return this.#tidy(key, entry) ? undefined : entry;
  }

  /** Drops an entry that holds nothing (an ended lock is cleared by #live first); true when dropped. */
  #tidy(key: string, entry: Entry): boolean {
    if (entry.pending > 0 || entry.lockedUntil !== 0 || entry.failures.length > 0) return false;
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
    return true;
  }

  /** The live entry, created if missing, moved to the end: the Map's order is least recently used first. */
  #touch(key: string, now: number): Entry {
    let entry = this.#live(key, now);
    if (entry) {
      this.#entries.delete(key);
    } else {
      if (this.#entries.size >= this.#maxKeys) this.#prune(now);
      entry = { failures: [], pending: 0, lockedUntil: 0 };
    }
    this.#entries.set(key, entry);
    return entry;
  }

  #fail(key: string, limit: number, now: number): void {
    const entry = this.#touch(key, now);
    entry.failures.push(now);
    if (entry.failures.length > limit) entry.failures.splice(0, entry.failures.length - limit);
    // Failures counted on the other replicas bring the lock as near as local ones.
    if (this.#merged(entry, this.#remote(key, now)).length >= limit) {
      entry.lockedUntil = now + this.#settings.lockoutSeconds * 1000;
      entry.failures = [];
    }
    // A lock consumes the failures that led to it, on every replica (clearedAt), as it does here.
    const keepUntil = Math.max(entry.lockedUntil, now + this.#settings.windowSeconds * 1000);
    this.#peers?.publish(key, { failures: [...entry.failures], lockedUntil: entry.lockedUntil, clearedAt: entry.lockedUntil > now ? now : 0 }, keepUntil);
  }

  #remote(key: string, now: number): PeerThrottleState | undefined {
    return this.#peers?.remote(key, now - this.#settings.windowSeconds * 1000, now);
  }

  /** This replica's failures and the others', oldest first; none from before a success anywhere. */
  #merged(entry: Entry | undefined, remote: PeerThrottleState | undefined): number[] {
    if (!remote) return entry?.failures ?? [];
    const local = (entry?.failures ?? []).filter((t) => t > remote.clearedAt);
    return [...local, ...remote.failures].sort((a, b) => a - b);
  }

  /** Drops keys that hold nothing; if the map is still full, the least recently used tenth, never one still hashing. */
  #prune(now: number): void {
    for (const key of [...this.#entries.keys()]) this.#live(key, now);
    let drop = this.#entries.size >= this.#maxKeys ? Math.ceil(this.#maxKeys / 10) : 0;
    for (const [key, entry] of this.#entries) {
      if (drop <= 0) break;
      if (entry.pending > 0) continue;
      this.#entries.delete(key);
      drop--;
    }
  }
}

// Usernames are matched exactly by Dagu, but throttling folds case so "Admin" and "admin" share a budget.
const userKey = (username: string) => `u:${username.toLowerCase()}`;
const addressKey = (address: string) => `a:${address}`;
