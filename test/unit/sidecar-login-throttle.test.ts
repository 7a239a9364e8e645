// Login throttling: locks per username and per address, decided before any hashing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADDRESS_FACTOR, LoginThrottle } from "../../src/sidecar/login-throttle.ts";

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

test("memory stays bounded under a flood of distinct names", () => {
  const t = new LoginThrottle(settings, 1000);
  for (let i = 0; i < 20_000; i++) t.recordFailure(`u${i}`, `198.51.${i >> 8 & 255}.${i & 255}`, T0 + i);
  assert.ok(t.size <= 1000, `size ${t.size}`);
});
