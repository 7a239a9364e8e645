// Login throttling: locks per username and per address, decided before any hashing; attempts reserved
// before their hash, the process-wide bound on password checks, and Basic auth under parallel requests.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { boundedVerification, hashPassword, VERIFY_CONCURRENCY, VERIFY_QUEUE_LIMIT } from "../../src/common/password-hash.ts";
import { Authenticator } from "../../src/sidecar/authenticators.ts";
import type { CredentialSnapshot } from "../../src/sidecar/credential-store.ts";
import { ADDRESS_FACTOR, LoginThrottle, type Attempt } from "../../src/sidecar/login-throttle.ts";

const settings = { maxAttempts: 3, windowSeconds: 60, lockoutSeconds: 300 };
const T0 = 1_000_000;

test("maxAttempts failures within the window lock the username for lockoutSeconds", () => {
  const t = new LoginThrottle(settings);
  for (let i = 0; i < 3; i++) {
    assert.equal(t.check("ann", "10.0.0.1", T0 + i).allowed, true);
    t.recordFailure("ann", "10.0.0.1", T0 + i);
  }
  const locked = t.check("ann", "10.0.0.9", T0 + 10);
  assert.deepEqual(locked, { allowed: false, retryAfterSeconds: 300 });
  assert.equal(t.check("ANN", "10.0.0.9", T0 + 10).allowed, false, "case-folded");
  assert.equal(t.check("bob", "10.0.0.9", T0 + 10).allowed, true, "other users unaffected");
  assert.equal(t.check("ann", "10.0.0.9", T0 + 2 + 300_000).allowed, true, "the lock ends");
});

test("failures older than the window do not count", () => {
  const t = new LoginThrottle(settings);
  t.recordFailure("ann", "a", T0);
  t.recordFailure("ann", "a", T0 + 1);
  t.recordFailure("ann", "a", T0 + 61_000);
  assert.equal(t.check("ann", "a", T0 + 61_001).allowed, true);
});

test("a success clears the username but not the address", () => {
  const t = new LoginThrottle(settings);
  t.recordFailure("ann", "a", T0);
  t.recordFailure("ann", "a", T0);
  t.recordSuccess("ann");
  t.recordFailure("ann", "a", T0);
  t.recordFailure("ann", "a", T0);
  assert.equal(t.check("ann", "a", T0).allowed, true);
});

test(`an address is locked after ${ADDRESS_FACTOR}x maxAttempts failures across usernames`, () => {
  const t = new LoginThrottle(settings);
  for (let i = 0; i < settings.maxAttempts * ADDRESS_FACTOR; i++) t.recordFailure(`user${i}`, "10.9.9.9", T0);
  assert.equal(t.check("fresh-user", "10.9.9.9", T0 + 1).allowed, false);
  assert.equal(t.check("fresh-user", "10.9.9.8", T0 + 1).allowed, true);
});

test("new settings apply to the next decision", () => {
  const t = new LoginThrottle(settings);
  t.recordFailure("ann", "a", T0);
  t.configure({ maxAttempts: 2, windowSeconds: 60, lockoutSeconds: 10 });
  t.recordFailure("ann", "a", T0 + 1);
  assert.deepEqual(t.check("ann", "a", T0 + 2), { allowed: false, retryAfterSeconds: 10 });
});

test("a limit lowered below the failures already counted: refused until enough of them leave the window", () => {
  const t = new LoginThrottle({ maxAttempts: 5, windowSeconds: 60, lockoutSeconds: 300 });
  for (let i = 0; i < 3; i++) t.recordFailure("ann", "a", T0 + i * 1000);
  t.configure({ maxAttempts: 2, windowSeconds: 60, lockoutSeconds: 300 });
  // Failures at T0, T0+1 s, T0+2 s: below 2 once the one at T0+1 s has left the window (T0+61 s).
  assert.deepEqual(t.check("ann", "a", T0 + 10_000), { allowed: false, retryAfterSeconds: 51 });
  assert.equal(t.check("ann", "a", T0 + 61_001).allowed, true);
});

test("memory stays bounded under a flood of distinct names", () => {
  const t = new LoginThrottle(settings, 1000);
  for (let i = 0; i < 20_000; i++) t.recordFailure(`u${i}`, `198.51.${i >> 8 & 255}.${i & 255}`, T0 + i);
  assert.ok(t.size <= 1000, `size ${t.size}`);
});

// --- reservations: an attempt counts from before its hash starts -----------------------------------

/** Reserves and asserts it was allowed. */
function take(t: LoginThrottle, user: string, address: string, now = T0): Attempt {
  const r = t.reserve(user, address, now);
  assert.ok(r.allowed, `reserve ${user}@${address} refused`);
  return r.attempt;
}

test("parallel attempts: at most maxAttempts are reserved before any finishes; the rest are refused unhashed", () => {
  const t = new LoginThrottle(settings);
  const running = [take(t, "ann", "a"), take(t, "ann", "b"), take(t, "ann", "c")];
  for (let i = 0; i < 27; i++) assert.deepEqual(t.reserve("ann", `x${i}`, T0), { allowed: false, retryAfterSeconds: 1 }, "slots held by attempts in flight");
  assert.equal(t.check("ANN", "z", T0).allowed, false, "case-folded");
  assert.equal(t.check("bob", "a", T0).allowed, true, "other users unaffected");
  for (const attempt of running) attempt.failed(T0 + 5);
  assert.deepEqual(t.check("ann", "z", T0 + 10), { allowed: false, retryAfterSeconds: 300 }, "the three failures lock");
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

test("a success clears earlier failures of the username", () => {
  const t = new LoginThrottle(settings);
  take(t, "ann", "a").failed(T0);
  take(t, "ann", "a").failed(T0);
  take(t, "ann", "a").succeeded();
  take(t, "ann", "a").failed(T0);
  take(t, "ann", "a").failed(T0);
  assert.equal(t.check("ann", "a", T0).allowed, true);
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

test(`an address's ${ADDRESS_FACTOR}x budget is reserved across usernames too`, () => {
  const t = new LoginThrottle(settings);
  const held = Array.from({ length: settings.maxAttempts * ADDRESS_FACTOR }, (_, i) => take(t, `user${i}`, "10.9.9.9"));
  assert.equal(t.reserve("fresh-user", "10.9.9.9", T0).allowed, false);
  assert.equal(t.reserve("fresh-user", "10.9.9.8", T0).allowed, true);
  for (const attempt of held) attempt.succeeded();
  assert.equal(t.check("another", "10.9.9.9", T0).allowed, true, "successes free the address's slots");
});

test("a locked key refuses reservations with the lock's Retry-After", () => {
  const t = new LoginThrottle(settings);
  for (let i = 0; i < 3; i++) t.recordFailure("ann", "a", T0);
  assert.deepEqual(t.reserve("ann", "b", T0 + 1000), { allowed: false, retryAfterSeconds: 299 });
  assert.equal(t.reserve("ann", "b", T0 + 300_000).allowed, true, "the lock ends");
});

test("attempts in flight survive pruning under a flood of distinct names", () => {
  const t = new LoginThrottle(settings, 1000);
  const held = [take(t, "ann", "a", T0), take(t, "ann", "a", T0), take(t, "ann", "a", T0)];
  for (let i = 0; i < 20_000; i++) t.recordFailure(`u${i}`, `198.51.${i >> 8 & 255}.${i & 255}`, T0 + i);
  assert.ok(t.size <= 1000 + 2, `size ${t.size}`);
  assert.equal(t.reserve("ann", "b", T0 + 20_000).allowed, false, "ann's slots are still held");
  for (const attempt of held) attempt.failed(T0 + 20_000);
  assert.equal(t.check("ann", "b", T0 + 20_001).retryAfterSeconds, 300, "and their failures lock");
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
