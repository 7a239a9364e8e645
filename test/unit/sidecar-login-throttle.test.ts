// Login throttling, decided before any hashing: a lock per (username, client address); a username under
// attack from many clients is slowed, never locked; an address failing across usernames is slowed, never
// locked. Attempts are reserved before their hash; the process-wide bound on password checks; Basic auth
// under parallel requests. A fake clock throughout (every method takes `now`), and a recorded sleep.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { boundedVerification, hashPassword, VERIFY_CONCURRENCY, VERIFY_QUEUE_LIMIT } from "../../src/common/password-hash.ts";
import { Authenticator } from "../../src/sidecar/auth/authenticators.ts";
import type { CredentialSnapshot } from "../../src/sidecar/credentials/credential-store.ts";
import { ADDRESS_FACTOR, LoginThrottle, SLOW_DELAY_MS, THROTTLE_MAX_KEYS, USER_BACKSTOP_FACTOR, type Attempt } from "../../src/sidecar/auth/login-throttle.ts";

const settings = { maxAttempts: 3, windowSeconds: 60, lockoutSeconds: 300 };
const T0 = 1_000_000;
const USER_THRESHOLD = settings.maxAttempts * USER_BACKSTOP_FACTOR;
const ADDRESS_THRESHOLD = settings.maxAttempts * ADDRESS_FACTOR;
const allowed = (delayMs = 0) => ({ allowed: true, delayMs });

test("maxAttempts failures within the window lock the (username, client) pair for lockoutSeconds", () => {
  const t = new LoginThrottle(settings);
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(t.check("ann", "10.0.0.1", T0 + i), allowed());
    t.recordFailure("ann", "10.0.0.1", T0 + i);
  }
  assert.deepEqual(t.check("ann", "10.0.0.1", T0 + 10), { allowed: false, reason: "locked", retryAfterSeconds: 300 });
  assert.equal(t.check("ANN", "10.0.0.1", T0 + 10).allowed, false, "case-folded");
  assert.deepEqual(t.check("ann", "10.0.0.9", T0 + 10), allowed(), "the same user from another client: not locked, not slowed");
  assert.deepEqual(t.check("bob", "10.0.0.1", T0 + 10), allowed(), "another user from the same client: not locked");
  assert.deepEqual(t.check("ann", "10.0.0.1", T0 + 2 + 300_000), allowed(), "the lock ends");
});

test("failures older than the window do not count", () => {
  const t = new LoginThrottle(settings);
  t.recordFailure("ann", "a", T0);
  t.recordFailure("ann", "a", T0 + 1);
  t.recordFailure("ann", "a", T0 + 61_000);
  assert.equal(t.check("ann", "a", T0 + 61_001).allowed, true);
});

test("a success clears the pair's failures", () => {
  const t = new LoginThrottle(settings);
  take(t, "ann", "a").failed(T0);
  take(t, "ann", "a").failed(T0);
  take(t, "ann", "a").succeeded();
  take(t, "ann", "a").failed(T0);
  take(t, "ann", "a").failed(T0);
  assert.equal(t.check("ann", "a", T0).allowed, true);
});

test("a username hammered from many clients is slowed, never locked: a client never seen failing gets through", () => {
  const t = new LoginThrottle(settings);
  // Attackers at many addresses, each staying under its pair limit.
  for (let i = 0; i < USER_THRESHOLD - 1; i++) t.recordFailure("admin", `198.51.100.${i}`, T0);
  assert.deepEqual(t.check("admin", "203.0.113.7", T0 + 1), allowed(), "below the backstop: nothing changes");
  t.recordFailure("admin", "198.51.100.200", T0);
  // Under attack now: the owner's fresh client waits, and is not refused however hard others keep trying.
  for (let i = 0; i < 50; i++) t.recordFailure("admin", `198.51.101.${i}`, T0 + 2);
  assert.deepEqual(t.check("admin", "203.0.113.7", T0 + 3), allowed(SLOW_DELAY_MS));
  assert.deepEqual(t.check("Admin", "203.0.113.8", T0 + 3), allowed(SLOW_DELAY_MS), "case-folded");
  assert.deepEqual(t.check("bob", "203.0.113.7", T0 + 3), allowed(), "other usernames are not slowed");
  assert.deepEqual(t.check("admin", "203.0.113.7", T0 + 2 + 60_000), allowed(), "the attack leaves the window: no more delay");
});

test("under attack, clients that failed on the username share maxAttempts attempts per window", () => {
  const t = new LoginThrottle(settings);
  for (let i = 0; i < USER_THRESHOLD; i++) t.recordFailure("admin", `198.51.100.${i}`, T0);
  // Each of these attackers failed once (its pair is far from locked), so each is a suspect.
  for (let i = 0; i < settings.maxAttempts; i++) take(t, "admin", `198.51.100.${i}`, T0 + 1000 * i).failed(T0 + 1000 * i);
  assert.deepEqual(t.reserve("admin", "198.51.100.10", T0 + 5_000), { allowed: false, reason: "slowed", retryAfterSeconds: 55 });
  assert.deepEqual(t.check("admin", "203.0.113.7", T0 + 5_000), allowed(SLOW_DELAY_MS), "a fresh client is still let through");
  for (let i = 0; i < USER_THRESHOLD; i++) t.recordFailure("admin", `198.51.102.${i}`, T0 + 50_000); // the attack goes on
  assert.equal(t.reserve("admin", "198.51.100.10", T0 + 59_999).allowed, false);
  const refilled = t.reserve("admin", "198.51.100.10", T0 + 60_001);
  assert.ok(refilled.allowed && refilled.attempt.delayMs === SLOW_DELAY_MS, "the budget refills as its attempts leave the window");
});

test("an address failing across usernames is slowed, never locked (everyone may share it behind an ingress)", () => {
  const t = new LoginThrottle(settings);
  for (let i = 0; i < ADDRESS_THRESHOLD - 1; i++) t.recordFailure(`user${i}`, "10.9.9.9", T0);
  assert.deepEqual(t.check("fresh-user", "10.9.9.9", T0 + 1), allowed());
  t.recordFailure("another", "10.9.9.9", T0);
  for (let i = 0; i < 200; i++) t.recordFailure(`spray${i}`, "10.9.9.9", T0 + 1);
  assert.deepEqual(t.check("fresh-user", "10.9.9.9", T0 + 2), allowed(SLOW_DELAY_MS), "a user behind the shared address waits, is not refused");
  assert.deepEqual(t.check("fresh-user", "10.9.9.8", T0 + 2), allowed(), "other addresses are not slowed");
});

test("new settings apply to the next decision", () => {
  const t = new LoginThrottle(settings);
  t.recordFailure("ann", "a", T0);
  t.configure({ maxAttempts: 2, windowSeconds: 60, lockoutSeconds: 10 });
  t.recordFailure("ann", "a", T0 + 1);
  assert.deepEqual(t.check("ann", "a", T0 + 2), { allowed: false, reason: "locked", retryAfterSeconds: 10 });
});

test("a limit lowered below the failures already counted: refused until enough of them leave the window", () => {
  const t = new LoginThrottle({ maxAttempts: 5, windowSeconds: 60, lockoutSeconds: 300 });
  for (let i = 0; i < 3; i++) t.recordFailure("ann", "a", T0 + i * 1000);
  t.configure({ maxAttempts: 2, windowSeconds: 60, lockoutSeconds: 300 });
  // Failures at T0, T0+1 s, T0+2 s: below 2 once the one at T0+1 s has left the window (T0+61 s).
  assert.deepEqual(t.check("ann", "a", T0 + 10_000), { allowed: false, reason: "locked", retryAfterSeconds: 51 });
  assert.equal(t.check("ann", "a", T0 + 61_001).allowed, true);
});

test("memory stays bounded under a flood of distinct names", () => {
  const t = new LoginThrottle(settings, { maxKeys: 1000 });
  for (let i = 0; i < 20_000; i++) t.recordFailure(`u${i}`, `198.51.${(i >> 8) & 255}.${i & 255}`, T0 + i);
  assert.ok(t.size <= 1000, `size ${t.size}`);
});

test("issue 12.2: failed logins over 100,000 usernames through guard() keep the default bound, and a fresh lock survives the flood", async () => {
  const t = new LoginThrottle(settings, { sleep: async () => undefined });
  let largest = 0;
  const fail = async () => false;
  for (let i = 0; i < 100_000; i++) {
    const outcome = await t.guard(`user-${i}`, `198.51.${(i >> 8) & 3}.${i & 255}`, fail, T0 + i);
    assert.equal(outcome.kind, "checked");
    largest = Math.max(largest, t.size);
    // A guesser locks itself on one name late in the flood: that lock is recent, so pruning keeps it.
    if (i === 99_000) for (let k = 0; k < settings.maxAttempts; k++) await t.guard("ann", "203.0.113.7", fail, T0 + i);
  }
  assert.ok(largest <= THROTTLE_MAX_KEYS, `largest ${largest} keys`);
  assert.ok(largest > THROTTLE_MAX_KEYS / 2, `the flood filled the map (${largest})`);
  assert.equal(t.check("ann", "203.0.113.7", T0 + 100_000).allowed, false, "the guesser is still locked");
});

// --- reservations: an attempt counts from before its hash starts -----------------------------------

/** Reserves and asserts it was allowed. */
function take(t: LoginThrottle, user: string, address: string, now = T0): Attempt {
  const r = t.reserve(user, address, now);
  assert.ok(r.allowed, `reserve ${user}@${address} refused`);
  return r.attempt;
}

test("parallel attempts from one client: at most maxAttempts are reserved before any finishes; the rest are refused unhashed", () => {
  const t = new LoginThrottle(settings);
  const running = [take(t, "ann", "a"), take(t, "ann", "a"), take(t, "ann", "a")];
  for (let i = 0; i < 27; i++) assert.deepEqual(t.reserve("ann", "a", T0), { allowed: false, reason: "locked", retryAfterSeconds: 1 }, "slots held by attempts in flight");
  assert.equal(t.check("ANN", "a", T0).allowed, false, "case-folded");
  assert.equal(t.check("ann", "b", T0).allowed, true, "another client of the same user is unaffected");
  for (const attempt of running) attempt.failed(T0 + 5);
  assert.deepEqual(t.check("ann", "a", T0 + 10), { allowed: false, reason: "locked", retryAfterSeconds: 300 }, "the three failures lock");
});

test("a success frees its slot and clears failures; other attempts in flight keep theirs", () => {
  const t = new LoginThrottle(settings);
  const [good, bad1, bad2] = [take(t, "ann", "a"), take(t, "ann", "a"), take(t, "ann", "a")];
  good!.succeeded();
  const next = take(t, "ann", "a"); // the success's slot
  assert.equal(t.reserve("ann", "a", T0).allowed, false, "the two still in flight hold theirs");
  bad1!.failed();
  bad2!.failed();
  next.failed();
  assert.equal(t.check("ann", "a").allowed, false, "three failures after the success lock");
});

test("a cancelled attempt (nothing hashed) frees its slot without counting", () => {
  const t = new LoginThrottle(settings);
  for (let round = 0; round < 5; round++) {
    const held = [take(t, "ann", "a"), take(t, "ann", "a"), take(t, "ann", "a")];
    assert.equal(t.reserve("ann", "a", T0).allowed, false);
    for (const attempt of held) attempt.cancel();
  }
  assert.equal(t.size, 0, "nothing left behind");
  assert.equal(t.check("ann", "a", T0).allowed, true);
});

test("only the first outcome of an attempt counts", () => {
  const t = new LoginThrottle(settings);
  const a = take(t, "ann", "a");
  a.failed(T0);
  a.failed(T0);
  a.cancel();
  a.succeeded();
  take(t, "ann", "a").failed(T0);
  assert.equal(t.check("ann", "a", T0).allowed, true, "two failures, not three, and the late success cleared nothing twice");
  take(t, "ann", "a").failed(T0);
  assert.equal(t.check("ann", "a", T0).allowed, false);
});

test("attempts in flight survive pruning under a flood of distinct names", () => {
  const t = new LoginThrottle(settings, { maxKeys: 1000 });
  const held = [take(t, "ann", "a", T0), take(t, "ann", "a", T0), take(t, "ann", "a", T0)];
  for (let i = 0; i < 20_000; i++) t.recordFailure(`u${i}`, `198.51.${(i >> 8) & 255}.${i & 255}`, T0 + i);
  assert.ok(t.size <= 1000 + 2, `size ${t.size}`);
  assert.equal(t.reserve("ann", "a", T0 + 20_000).allowed, false, "ann's slots are still held");
  for (const attempt of held) attempt.failed(T0 + 20_000);
  assert.deepEqual(t.check("ann", "a", T0 + 20_001), { allowed: false, reason: "locked", retryAfterSeconds: 300 }, "and their failures lock");
});

// --- guard(): the delay is waited out before the hash, holding no hashing slot ------------------------

test("guard: a slowed attempt sleeps before its check; a refused one never runs it", async () => {
  const slept: number[] = [];
  const order: string[] = [];
  const t = new LoginThrottle(settings, {
    sleep: async (ms) => {
      slept.push(ms);
      order.push("sleep");
    },
  });
  const check = (ok: boolean) => async () => {
    order.push("check");
    return ok;
  };
  assert.deepEqual(await t.guard("admin", "203.0.113.7", check(true), T0), { kind: "checked", ok: true, delayedMs: 0 });
  assert.deepEqual(slept, [], "nothing slowed: no sleep");
  for (let i = 0; i < USER_THRESHOLD; i++) t.recordFailure("admin", `198.51.100.${i}`, T0);
  order.length = 0;
  assert.deepEqual(await t.guard("admin", "203.0.113.7", check(true), T0 + 1), { kind: "checked", ok: true, delayedMs: SLOW_DELAY_MS });
  assert.deepEqual(order, ["sleep", "check"], "the wait comes before the hash");
  for (let i = 0; i < 3; i++) await t.guard("ann", "a", check(false), T0);
  order.length = 0;
  assert.deepEqual(await t.guard("ann", "a", check(true), T0 + 1), { kind: "throttled", reason: "locked", retryAfterSeconds: 300 });
  assert.deepEqual(order, [], "a locked pair: nothing hashed, no wait");
});

// --- the process-wide bound on password checks -------------------------------------------------------

test("password checks beyond the process-wide queue are turned away at once, without running", async () => {
  const gates: (() => void)[] = [];
  let started = 0;
  const slow = () => boundedVerification(() => {
    started++;
    return new Promise<boolean>((resolve) => gates.push(() => resolve(false)));
  });
  const accepted = Array.from({ length: VERIFY_CONCURRENCY + VERIFY_QUEUE_LIMIT }, slow);
  assert.ok(accepted.every((p) => p !== undefined));
  let ran = false;
  assert.equal(boundedVerification(async () => (ran = true)), undefined, "full: refused");
  await new Promise((r) => setImmediate(r));
  assert.equal(started, VERIFY_CONCURRENCY, "only VERIFY_CONCURRENCY run at once");
  assert.equal(ran, false);
  while (gates.length > 0) {
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(accepted);
  assert.equal(started, VERIFY_CONCURRENCY + VERIFY_QUEUE_LIMIT);
  assert.equal(await boundedVerification(async () => true), true, "drained: accepted again");
});

// --- Basic auth: the same reservations, and parallel copies of one credential share a check ---------

describe("Basic auth under parallel requests", () => {
  let snapshot: CredentialSnapshot;
  before(async () => {
    const basic = { username: "admin", passwordHash: await hashPassword("basic-password-1") };
    // Only what the Basic path reads.
    snapshot = { credentials: { mode: "basic", basic } } as unknown as CredentialSnapshot;
  });
  const header = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`, queryToken: undefined, clientAddress: "10.1.1.1" });

  test("20 parallel wrong passwords, then the right one in the same burst: maxAttempts are checked, the right one is refused", async () => {
    const auth = new Authenticator(new LoginThrottle(settings));
    // authenticate() reserves synchronously, so in one tick the right password comes after the 20 wrong ones.
    const burst = [...Array.from({ length: 20 }, (_, i) => header("admin", `wrong-${i}`)), header("admin", "basic-password-1")];
    const results = await Promise.all(burst.map((h) => auth.authenticate(snapshot, h)));
    const statuses = results.map((r) => (r.ok ? 200 : r.status));
    assert.equal(statuses.filter((s) => s === 401).length, settings.maxAttempts, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 429).length, 21 - settings.maxAttempts);
    assert.equal(statuses.at(-1), 429, "the right password, after the budget was taken");
    const after = await auth.authenticate(snapshot, header("admin", "basic-password-1"));
    assert.equal(!after.ok && after.status, 429, "locked now: refused without a hash");
  });

  test("parallel copies of the right credential share one check: none is throttled, later ones hit the cache", async () => {
    const throttle = new LoginThrottle(settings);
    const auth = new Authenticator(throttle);
    const results = await Promise.all(Array.from({ length: 12 }, () => auth.authenticate(snapshot, header("admin", "basic-password-1"))));
    assert.ok(results.every((r) => r.ok), JSON.stringify(results.filter((r) => !r.ok)));
    assert.equal(auth.basic.size, 1);
    assert.equal(throttle.size, 0, "no slot left held, no failure recorded");
    assert.ok((await auth.authenticate(snapshot, header("admin", "basic-password-1"))).ok);
  });
});
