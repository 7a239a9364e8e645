// Login throttling shared between replicas, as pure logic: two LoginThrottles joined by an in-memory
// exchange that delivers every published state at once (the Kubernetes one is tested with two real
// sidecars in test/integration/multi-replica.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { LoginThrottle } from "../../src/sidecar/login-throttle.ts";
import type { PeerThrottleState, ThrottlePeers } from "../../src/sidecar/throttle-peers.ts";

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
    return new LoginThrottle(settings, undefined, peers);
  });
}

test("failures on two replicas count together; the lock holds on both", () => {
  const [a, b] = cluster(2) as [LoginThrottle, LoginThrottle];
  a.recordFailure("ann", "10.0.0.1", T0);
  a.recordFailure("ann", "10.0.0.1", T0 + 1);
  assert.equal(b.check("ann", "10.0.0.2", T0 + 2).allowed, true, "two of three");
  b.recordFailure("ann", "10.0.0.2", T0 + 2);
  assert.deepEqual(b.check("ann", "10.0.0.3", T0 + 3), { allowed: false, retryAfterSeconds: 300 });
  assert.deepEqual(a.check("ann", "10.0.0.3", T0 + 3), { allowed: false, retryAfterSeconds: 300 }, "A holds B's lock");
  assert.equal(a.check("ann", "10.0.0.3", T0 + 2 + 300_000).allowed, true, "and it ends");
});

test("a lock consumes the failures behind it on every replica: none of them locks again when it ends", () => {
  const [a, b] = cluster(2) as [LoginThrottle, LoginThrottle];
  a.recordFailure("ann", "x", T0);
  a.recordFailure("ann", "x", T0 + 1);
  b.recordFailure("ann", "y", T0 + 2); // B locks
  const after = T0 + 2 + 300_001; // the lock is over; the window (60 s) too, so test with a longer window
  assert.equal(a.check("ann", "x", after).allowed, true);
  assert.equal(b.check("ann", "y", after).allowed, true);
  const [c, d] = cluster(2) as [LoginThrottle, LoginThrottle];
  c.configure({ maxAttempts: 3, windowSeconds: 3600, lockoutSeconds: 10 });
  d.configure({ maxAttempts: 3, windowSeconds: 3600, lockoutSeconds: 10 });
  c.recordFailure("ann", "x", T0);
  c.recordFailure("ann", "x", T0 + 1);
  d.recordFailure("ann", "y", T0 + 2); // D locks for 10 s; C's two failures were consumed by it
  assert.equal(c.check("ann", "x", T0 + 3).allowed, false);
  c.recordFailure("ann", "x", T0 + 20_000); // after the lock: one failure, not three
  assert.equal(c.check("ann", "x", T0 + 20_001).allowed, true);
  assert.equal(d.check("ann", "y", T0 + 20_001).allowed, true);
});

test("a success on one replica clears the username's failures on the others", () => {
  // recordSuccess() takes the clock's time: the failures are placed around it.
  const [a, b] = cluster(2) as [LoginThrottle, LoginThrottle];
  const base = Date.now();
  a.recordFailure("ann", "x", base - 2000);
  a.recordFailure("ann", "x", base - 1000);
  b.recordSuccess("ann");
  a.recordFailure("ann", "x", base + 5000);
  assert.equal(a.check("ann", "x", base + 5001).allowed, true, "one failure since the success, not three");
  a.recordFailure("ann", "x", base + 5002);
  a.recordFailure("ann", "x", base + 5003);
  assert.equal(a.check("ann", "x", base + 5004).allowed, false, "three since the success lock");
});
