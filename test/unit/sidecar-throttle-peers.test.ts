// Login throttling shared between replicas, as pure logic: two LoginThrottles joined by an in-memory
// exchange that delivers every published state at once (the Kubernetes one is tested with two real
// sidecars in test/integration/multi-replica.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LoginThrottle } from "../../src/sidecar/auth/login-throttle.ts";
import type { PeerThrottleState, ThrottlePeers } from "../../src/sidecar/auth/throttle-peers.ts";

const settings = { maxAttempts: 3, windowSeconds: 60, lockoutSeconds: 300 };
const T0 = 1_000_000;

/** Replicas sharing one table: each sees the others' latest state per key, as the Secret would carry it. */
function cluster(n: number): LoginThrottle[] {
  const published = new Map<string, Map<number, PeerThrottleState>>();
  return Array.from({ length: n }, (_v, me) => {
    const peers: ThrottlePeers = {
      remote(key, windowStart, now) {
        const states = [...(published.get(key) ?? new Map<number, PeerThrottleState>())].filter(([who]) => who !== me).map(([, s]) => s);
        if (states.length === 0) return undefined;
        const own = published.get(key)?.get(me)?.clearedAt ?? 0;
        const clearedAt = Math.max(own, ...states.map((s) => s.clearedAt));
        const failures = states.flatMap((s) => s.failures).filter((f) => f > windowStart && f > clearedAt).sort((x, y) => x - y);
        const lockedUntil = Math.max(0, ...states.map((s) => (s.lockedUntil > now ? s.lockedUntil : 0)));
        return { failures, lockedUntil, clearedAt };
      },
      publish(key, state) {
        const byReplica = published.get(key) ?? new Map<number, PeerThrottleState>();
        byReplica.set(me, state);
        published.set(key, byReplica);
      },
    };
    return new LoginThrottle(settings, { peers });
  });
}

test("a (user, client) pair's failures on two replicas count together; the lock holds on both", () => {
  const [a, b] = cluster(2) as [LoginThrottle, LoginThrottle];
  a.recordFailure("ann", "10.0.0.1", T0);
  a.recordFailure("ann", "10.0.0.1", T0 + 1);
  assert.equal(b.check("ann", "10.0.0.1", T0 + 2).allowed, true, "two of three");
  b.recordFailure("ann", "10.0.0.1", T0 + 2);
  assert.deepEqual(b.check("ann", "10.0.0.1", T0 + 3), { allowed: false, reason: "locked", retryAfterSeconds: 300 });
  assert.deepEqual(a.check("ann", "10.0.0.1", T0 + 3), { allowed: false, reason: "locked", retryAfterSeconds: 300 }, "A holds B's lock");
  assert.equal(a.check("ann", "10.0.0.9", T0 + 3).allowed, true, "another client of the user is not locked");
  assert.equal(a.check("ann", "10.0.0.1", T0 + 2 + 300_000).allowed, true, "and it ends");
});

test("the user's backstop counts failures from every client on every replica", () => {
  const [a, b] = cluster(2) as [LoginThrottle, LoginThrottle];
  // maxAttempts 3: under attack from 12 failures on the username; 6 seen by each replica.
  for (let i = 0; i < 6; i++) a.recordFailure("ann", `10.0.1.${i}`, T0 + i);
  for (let i = 0; i < 6; i++) b.recordFailure("ann", `10.0.2.${i}`, T0 + 10 + i);
  for (const r of [a, b]) {
    const d = r.check("ann", "192.0.2.77", T0 + 20);
    assert.equal(d.allowed, true, "a client never seen failing is not refused");
    assert.ok(d.allowed && d.delayMs > 0, "but slowed: the user is under attack on both replicas");
  }
  const [c] = cluster(1) as [LoginThrottle];
  for (let i = 0; i < 6; i++) c.recordFailure("ann", `10.0.1.${i}`, T0 + i);
  const alone = c.check("ann", "192.0.2.77", T0 + 20);
  assert.ok(alone.allowed && alone.delayMs === 0, "six alone are below the backstop");
});

test("a lock consumes the failures behind it on every replica: none of them locks again when it ends", () => {
  const [c, d] = cluster(2) as [LoginThrottle, LoginThrottle];
  c.configure({ maxAttempts: 3, windowSeconds: 3600, lockoutSeconds: 10 });
  d.configure({ maxAttempts: 3, windowSeconds: 3600, lockoutSeconds: 10 });
  c.recordFailure("ann", "x", T0);
  c.recordFailure("ann", "x", T0 + 1);
  d.recordFailure("ann", "x", T0 + 2); // D locks the pair for 10 s; C's two failures were consumed by it
  assert.equal(c.check("ann", "x", T0 + 3).allowed, false);
  c.recordFailure("ann", "x", T0 + 20_000); // after the lock: one failure, not three
  assert.equal(c.check("ann", "x", T0 + 20_001).allowed, true);
  assert.equal(d.check("ann", "x", T0 + 20_001).allowed, true);
});

test("a success on one replica clears the pair's failures on the others", () => {
  // A success takes the clock's time: the failures are placed around it.
  const [a, b] = cluster(2) as [LoginThrottle, LoginThrottle];
  const base = Date.now();
  a.recordFailure("ann", "x", base - 2000);
  a.recordFailure("ann", "x", base - 1000);
  const gate = b.reserve("ann", "x", base);
  assert.ok(gate.allowed);
  gate.attempt.succeeded();
  a.recordFailure("ann", "x", base + 5000);
  assert.equal(a.check("ann", "x", base + 5001).allowed, true, "one failure since the success, not three");
  a.recordFailure("ann", "x", base + 5002);
  a.recordFailure("ann", "x", base + 5003);
  assert.equal(a.check("ann", "x", base + 5004).allowed, false, "three since the success lock");
});
