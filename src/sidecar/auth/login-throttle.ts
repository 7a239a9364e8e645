// Failed-login throttling, decided BEFORE any password hashing: a refused attempt costs nothing, so
// neither guessing nor a flood of logins can keep argon2 busy. Settings come from the credentials'
// `login` block (`maxAttempts`, `windowSeconds`, `lockoutSeconds`). Three keys, and only one of them locks:
//
// - the pair (username, client address): `maxAttempts` failures within the window lock THAT PAIR for
//   `lockoutSeconds`. A guesser locks itself out, not the user: a correct password from any other client
//   still gets in. A success clears the pair.
// - the username, across clients (the backstop against guessing from many addresses): once
//   USER_BACKSTOP_FACTOR x `maxAttempts` failures are counted within the window, the user is "under attack"
//   and slowed, never locked. Every attempt on it waits SLOW_DELAY_MS before its hash; clients that failed
//   on it within the window ("suspects") share a budget of `maxAttempts` attempts per window between them
//   (429 beyond); a client never seen failing on it is not refused, only delayed. So the owner logging in
//   from their own address gets in while others hammer the name, and many addresses cannot guess at the
//   pair locks' combined rate.
// - the client address, across usernames (password spraying): past ADDRESS_FACTOR x `maxAttempts`
//   failures within the window its attempts wait SLOW_DELAY_MS before hashing. Never a lock or a refusal:
//   behind an ingress without trusted proxies every user shares one address, and locking it would lock
//   everybody out.
//
// An attempt is reserved before its hash starts and counts against its pair's limit while it runs: were
// only finished failures counted, a burst of parallel guesses would all pass the check and all be hashed.
// Whatever passes is then bounded process-wide by boundedVerification().
import type { Credentials } from "../../api/credentials.ts";
import { boundedVerification } from "../../common/password-hash.ts";
import type { PeerThrottleState, ThrottlePeers } from "./throttle-peers.ts";

export type LoginSettings = Credentials["login"];

/** Failures on one username, from all clients within the window, that put it under attack: this x maxAttempts. */
export const USER_BACKSTOP_FACTOR = 4;
/** Failures from one address, over all usernames within the window, that slow it: this x maxAttempts. */
export const ADDRESS_FACTOR = 4;
/** Keys remembered at most (pairs, usernames and addresses together), whatever the number of usernames tried. */
export const THROTTLE_MAX_KEYS = 50_000;

/** How long a slowed attempt waits before its hash (holding no hashing slot). */
export const SLOW_DELAY_MS = 1_000;

/** Retry-After when a pair's budget is taken by attempts still hashing: they end within a second or so. */
const IN_FLIGHT_RETRY_SECONDS = 1;

interface Entry {
  /** Failure times (epoch ms) inside the window, oldest first; at most the key's threshold. */
  failures: number[];
  /** Reserved attempts not finished yet (pairs only). */
  pending: number;
  /** Pairs only. */
  lockedUntil: number;
  /** Usernames only: start times of suspects' attempts while under attack, inside the window. */
  suspects: number[];
}

export type ThrottleDecision =
  | { readonly allowed: false; readonly retryAfterSeconds: number; readonly reason: "locked" | "slowed" }
  | { readonly allowed: true; readonly delayMs: number };

/** A reserved attempt. Exactly one outcome counts; later calls are ignored, so a `finally` may fail it safely. */
export interface Attempt {
  /** Milliseconds to wait before hashing (0 when nothing is slowed). */
  readonly delayMs: number;
  /** The password was right: frees the slot and clears the pair's failures. */
  succeeded(): void;
  /** The password was wrong: the slot becomes a recorded failure (pair, username and address). */
  failed(now?: number): void;
  /** Nothing was hashed (the process was too busy): frees the slot without counting it. */
  cancel(): void;
}

/** What a guarded password check came to. */
export type CheckOutcome =
  | { kind: "throttled"; retryAfterSeconds: number; reason: "locked" | "slowed" }
  | { kind: "busy" }
  | { kind: "checked"; ok: boolean; delayedMs: number };

export type Reservation = Extract<ThrottleDecision, { allowed: false }> | { readonly allowed: true; readonly attempt: Attempt };

export interface LoginThrottleOptions {
  /** Bound on the keys remembered (pairs, usernames, addresses together). */
  readonly maxKeys?: number;
  /** How a slowed attempt waits (tests pass a recorder). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Told of each attempt held back (refused, or delayed before its hash): for metrics. */
  readonly observe?: (outcome: "locked" | "slowed" | "delayed") => void;
  /**
   * The other replicas of the same DaguAuth (throttle-peers.ts): their failures, pair locks and clears
   * count here too, and this replica's are published to them. The suspects' budget stays per replica.
   */
  readonly peers?: ThrottlePeers;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export class LoginThrottle {
  readonly #entries = new Map<string, Entry>();
  readonly #maxKeys: number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #observe: (outcome: "locked" | "slowed" | "delayed") => void;
  readonly #peers: ThrottlePeers | undefined;
  #settings: LoginSettings;

  constructor(settings: LoginSettings, options: LoginThrottleOptions = {}) {
    this.#settings = settings;
    this.#maxKeys = options.maxKeys ?? THROTTLE_MAX_KEYS;
    this.#sleep = options.sleep ?? realSleep;
    this.#observe = options.observe ?? (() => undefined);
    this.#peers = options.peers;
  }

  /** New settings apply to the next decision; recorded failures and reservations are kept. */
  configure(settings: LoginSettings): void {
    this.#settings = settings;
  }

  /** May this username, from this address, try a password now, and after what delay? Never hashes. */
  check(username: string, address: string, now = Date.now()): ThrottleDecision {
    const { maxAttempts, windowSeconds } = this.#settings;
    const windowMs = windowSeconds * 1000;
    const pk = pairKey(username, address);
    const pair = this.#live(pk, now);
    const remotePair = this.#remote(pk, now);
    const pairLock = Math.max(pair?.lockedUntil ?? 0, remotePair?.lockedUntil ?? 0);
    if (pairLock > now) return { allowed: false, reason: "locked", retryAfterSeconds: Math.ceil((pairLock - now) / 1000) };
    const pairFailures = this.#merged(pair, remotePair);
    if (pairFailures.length + (pair?.pending ?? 0) >= maxAttempts) {
      // Full but not locked: attempts still hashing, or a limit lowered below the failures counted.
      const freedAt = pairFailures.length >= maxAttempts ? pairFailures[pairFailures.length - maxAttempts]! + windowMs : 0;
      return { allowed: false, reason: "locked", retryAfterSeconds: freedAt > now ? Math.ceil((freedAt - now) / 1000) : IN_FLIGHT_RETRY_SECONDS };
    }
    let delayMs = 0;
    const uk = userKey(username);
    const user = this.#live(uk, now);
    if (this.#merged(user, this.#remote(uk, now)).length >= maxAttempts * USER_BACKSTOP_FACTOR) {
      delayMs = SLOW_DELAY_MS;
      const suspect = pairFailures.length > 0;
      if (suspect && user && user.suspects.length >= maxAttempts) {
        return { allowed: false, reason: "slowed", retryAfterSeconds: Math.max(1, Math.ceil((user.suspects[user.suspects.length - maxAttempts]! + windowMs - now) / 1000)) };
      }
    }
    const ak = addressKey(address);
    if (this.#merged(this.#live(ak, now), this.#remote(ak, now)).length >= maxAttempts * ADDRESS_FACTOR) delayMs = SLOW_DELAY_MS;
    return { allowed: true, delayMs };
  }

  /** check(), and when allowed, takes a slot of the pair until the attempt's outcome is known. */
  reserve(username: string, address: string, now = Date.now()): Reservation {
    const decision = this.check(username, address, now);
    if (!decision.allowed) return decision;
    const pk = pairKey(username, address);
    const pair = this.#touch(pk, now);
    pair.pending++;
    if (decision.delayMs > 0 && pair.failures.length > 0) {
      // A suspect's attempt on a user under attack takes from the suspects' shared budget.
      const user = this.#touch(userKey(username), now);
      user.suspects.push(now);
      if (user.suspects.length > this.#settings.maxAttempts) user.suspects.splice(0, user.suspects.length - this.#settings.maxAttempts);
    }
    let settled = false;
    const release = (outcome: "success" | "failure" | "cancel", at = Date.now()) => {
      if (settled) return;
      settled = true;
      // The entry is never dropped while pending, so this is the one incremented above.
      pair.pending--;
      if (outcome === "failure") this.recordFailure(username, address, at);
      else if (outcome === "success") this.#clear(pk, pair);
      else this.#tidy(pk, pair);
    };
    return {
      allowed: true,
      attempt: {
        delayMs: decision.delayMs,
        succeeded: () => release("success"),
        failed: (at) => release("failure", at),
        cancel: () => release("cancel"),
      },
    };
  }

  /**
   * One password check, the only way the sidecar runs one: a slot reserved before it starts (429 when the
   * pair is locked or full, or a suspect of a user under attack is out of budget), the slow-down's delay
   * waited out holding no hashing slot, then run under the process-wide bound on verifications ("busy"
   * when too many wait, nothing counted), its outcome recorded; an exception counts as a failure (fail
   * closed).
   */
  async guard(username: string, address: string, check: () => Promise<boolean>, now = Date.now()): Promise<CheckOutcome> {
    const gate = this.reserve(username, address, now);
    if (!gate.allowed) {
      this.#observe(gate.reason);
      return { kind: "throttled", retryAfterSeconds: gate.retryAfterSeconds, reason: gate.reason };
    }
    const { attempt } = gate;
    try {
      if (attempt.delayMs > 0) {
        this.#observe("delayed");
        await this.#sleep(attempt.delayMs);
      }
      const checking = boundedVerification(check);
      if (!checking) {
        attempt.cancel();
        return { kind: "busy" };
      }
      const ok = await checking;
      if (ok) attempt.succeeded();
      else attempt.failed(now);
      return { kind: "checked", ok, delayedMs: attempt.delayMs };
    } finally {
      attempt.failed(now); // a no-op once an outcome was recorded
    }
  }

  /** A failure that was not reserved (reserve() + failed() is the normal path): counts for all three keys. */
  recordFailure(username: string, address: string, now = Date.now()): void {
    const { maxAttempts, lockoutSeconds } = this.#settings;
    const pk = pairKey(username, address);
    const pair = this.#fail(pk, maxAttempts, now);
    // Failures counted on the other replicas bring the lock as near as local ones.
    const locks = this.#merged(pair, this.#remote(pk, now)).length >= maxAttempts;
    if (locks) {
      pair.lockedUntil = now + lockoutSeconds * 1000;
      pair.failures = [];
    }
    // A lock consumes the failures that led to it, on every replica (clearedAt), as it does here.
    this.#share(pk, pair, now, locks ? now : 0);
    const uk = userKey(username);
    this.#share(uk, this.#fail(uk, maxAttempts * USER_BACKSTOP_FACTOR, now), now, 0);
    const ak = addressKey(address);
    this.#share(ak, this.#fail(ak, maxAttempts * ADDRESS_FACTOR, now), now, 0);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry with what no longer counts dropped (an ended lock, times out of the window); undefined when nothing is left. */
  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (!entry || entry.lockedUntil > now) return entry;
    if (entry.lockedUntil !== 0) Object.assign(entry, { failures: [], lockedUntil: 0 }); // an ended lock starts afresh
    const windowStart = now - this.#settings.windowSeconds * 1000;
    if (entry.failures.some((t) => t <= windowStart)) entry.failures = entry.failures.filter((t) => t > windowStart);
    if (entry.suspects.some((t) => t <= windowStart)) entry.suspects = entry.suspects.filter((t) => t > windowStart);
    return this.#tidy(key, entry) ? undefined : entry;
  }

  /** Drops an entry that holds nothing; true when dropped. */
  #tidy(key: string, entry: Entry): boolean {
    if (entry.pending > 0 || entry.lockedUntil !== 0 || entry.failures.length > 0 || entry.suspects.length > 0) return false;
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
    return true;
  }

  /** A success: the pair's failures go (another attempt may still be hashing on it), on every replica. */
  #clear(key: string, entry: Entry): void {
    Object.assign(entry, { failures: [], lockedUntil: 0 });
    this.#tidy(key, entry);
    const now = Date.now();
    this.#share(key, entry, now, now);
  }

  /** What the other replicas recorded for `key` (throttle-peers.ts), failures inside the window. */
  #remote(key: string, now: number): PeerThrottleState | undefined {
    return this.#peers?.remote(key, now - this.#settings.windowSeconds * 1000, now);
  }

  /** This replica's failures and the others', oldest first; none from before a clear (a success or a lock) anywhere. */
  #merged(entry: Entry | undefined, remote: PeerThrottleState | undefined): number[] {
    if (!remote) return entry?.failures ?? [];
    const local = (entry?.failures ?? []).filter((t) => t > remote.clearedAt);
    return [...local, ...remote.failures].sort((a, b) => a - b);
  }

  /** Tells the other replicas this replica's state of `key`; it matters to them for a window, or the lock. */
  #share(key: string, entry: Entry, now: number, clearedAt: number): void {
    if (!this.#peers) return;
    const keepUntil = Math.max(entry.lockedUntil, now + this.#settings.windowSeconds * 1000);
    this.#peers.publish(key, { failures: [...entry.failures], lockedUntil: entry.lockedUntil, clearedAt }, keepUntil);
  }

  /** The live entry, created if missing, moved to the end: the Map's order is least recently used first. */
  #touch(key: string, now: number): Entry {
    let entry = this.#live(key, now);
    if (entry) {
      this.#entries.delete(key);
    } else {
      if (this.#entries.size >= this.#maxKeys) this.#prune(now);
      entry = { failures: [], pending: 0, lockedUntil: 0, suspects: [] };
    }
    this.#entries.set(key, entry);
    return entry;
  }

  /** Records a failure, keeping at most `keep` (the key's threshold: more changes no decision). */
  #fail(key: string, keep: number, now: number): Entry {
    const entry = this.#touch(key, now);
    entry.failures.push(now);
    if (entry.failures.length > keep) entry.failures.splice(0, entry.failures.length - keep);
    return entry;
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
const pairKey = (username: string, address: string) => `p:${address}\u0000${username.toLowerCase()}`;
