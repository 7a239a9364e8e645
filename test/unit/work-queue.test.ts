import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import { setImmediate as flushIo } from "node:timers/promises";
import { RateLimiter, WorkQueue, type Result } from "../../src/operator/runtime/work-queue.ts";

/** Lets pending promise callbacks run (setImmediate is not faked). */
async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await flushIo();
}

function fakeClock(t: TestContext): { tick(ms: number): Promise<void> } {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  return {
    async tick(ms: number) {
      t.mock.timers.tick(ms);
      await settle();
    },
  };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("WorkQueue", () => {
  test("holds a pending key once however often it is added", async () => {
    const q = new WorkQueue();
    for (const key of ["a", "b", "a", "a", "c", "b"]) q.add(key);
    assert.equal(q.depth, 3);
    const seen: string[] = [];
    const running = q.run(1, async (key) => {
      seen.push(key);
    });
    await settle();
    assert.deepEqual(seen, ["a", "b", "c"], "each key once, in first-added order");
    assert.equal(q.depth, 0);
    await q.shutDown();
    await running;
  });

  test("never hands a key to two workers at once, and re-runs a key added while it was processed", async () => {
    const q = new WorkQueue();
    const active = new Map<string, number>();
    const calls = new Map<string, number>();
    let concurrent = 0;
    let maxConcurrent = 0;
    let maxPerKey = 0;
    const running = q.run(4, async (key) => {
      const n = (active.get(key) ?? 0) + 1;
      active.set(key, n);
      maxPerKey = Math.max(maxPerKey, n);
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      calls.set(key, (calls.get(key) ?? 0) + 1);
      // Re-adds while processing: they must wait for this run to end, then coalesce into one more run.
      if (calls.get(key) === 1) for (let i = 0; i < 3; i++) q.add(key);
      await new Promise((r) => setTimeout(r, 5));
      concurrent--;
      active.set(key, n - 1);
    });
    const keys = Array.from({ length: 8 }, (_, i) => `ns/obj-${i}`);
    // Adds from many "event handlers" interleaved with processing.
    for (let round = 0; round < 5; round++) {
      for (const key of keys) q.add(key);
      await new Promise((r) => setTimeout(r, 2));
    }
    await waitFor(() => q.depth === 0 && concurrent === 0 && [...calls.values()].every((c) => c >= 2));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(maxPerKey, 1, "a key is never processed by two workers at once");
    assert.equal(maxConcurrent, 4, "all four workers were used");
    for (const key of keys) {
      const c = calls.get(key) ?? 0;
      // One run, one re-run for the adds during the first run, at most a few more for the later rounds.
      assert.ok(c >= 2 && c <= 6, `${key} ran ${c} times`);
    }
    await q.shutDown();
    await running;
  });

  test("a key re-added three times during its run runs exactly once more", async () => {
    const q = new WorkQueue();
    let calls = 0;
    const running = q.run(2, async (key) => {
      calls++;
      if (calls === 1) {
        q.add(key);
        q.add(key);
        q.add(key);
        await settle();
      }
    });
    q.add("k");
    await waitFor(() => calls === 2);
    await settle(10);
    assert.equal(calls, 2);
    await q.shutDown();
    await running;
  });

  test("a failing key is retried with growing backoff; success forgets it", async (t) => {
    const clock = fakeClock(t);
    const errors: [string, number][] = [];
    const q = new WorkQueue({ onError: (key, _err, delay) => errors.push([key, delay]) });
    const callTimes: number[] = [];
    const start = Date.now();
    const running = q.run(1, async () => {
      callTimes.push(Date.now() - start);
      if (callTimes.length <= 3) throw new Error("transient");
    });
    q.add("k");
    await settle();
    await clock.tick(49);
    assert.deepEqual(callTimes, [0], "not retried before 50 ms");
    await clock.tick(1);
    await clock.tick(100);
    await clock.tick(200);
    assert.deepEqual(callTimes, [0, 50, 150, 350]);
    assert.deepEqual(errors, [["k", 50], ["k", 100], ["k", 200]]);
    assert.equal(q.retries("k"), 0, "the success forgot the failures");
    await q.shutDown();
    await running;
  });

  test("requeueAfter processes the key again after that delay, without counting a failure", async (t) => {
    const clock = fakeClock(t);
    const q = new WorkQueue();
    let calls = 0;
    const running = q.run(1, async (): Promise<Result> => {
      calls++;
      return calls === 1 ? { requeueAfter: 1000 } : {};
    });
    q.add("k");
    await settle();
    await clock.tick(999);
    assert.equal(calls, 1);
    await clock.tick(1);
    assert.equal(calls, 2);
    assert.equal(q.retries("k"), 0);
    await clock.tick(5000);
    assert.equal(calls, 2, "no requeue asked the second time");
    await q.shutDown();
    await running;
  });

  test("addAfter keeps the earliest pending time of a key", async (t) => {
    const clock = fakeClock(t);
    const q = new WorkQueue();
    let calls = 0;
    const running = q.run(1, async () => {
      calls++;
    });
    q.addAfter("k", 1000);
    q.addAfter("k", 100);
    q.addAfter("k", 500);
    await clock.tick(100);
    assert.equal(calls, 1);
    await clock.tick(2000);
    assert.equal(calls, 1, "the later timers were superseded");
    await q.shutDown();
    await running;
  });

  test("a delay past setTimeout's range (an expiry in 2030) waits instead of firing at once", async () => {
    const q = new WorkQueue();
    let calls = 0;
    const running = q.run(1, async () => {
      calls++;
    });
    q.addAfter("k", 4 * 365 * 24 * 3600 * 1000);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(calls, 0);
    await q.shutDown();
    await running;
  });

  test("shutDown waits for handlers in flight, then hands out nothing more", async () => {
    const q = new WorkQueue();
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const started: string[] = [];
    const finished: string[] = [];
    const running = q.run(2, async (key) => {
      started.push(key);
      const gate = deferred();
      gates.set(key, gate);
      await gate.promise;
      finished.push(key);
    });
    for (const key of ["a", "b", "c"]) q.add(key);
    q.addAfter("d", 10);
    await settle();
    assert.deepEqual(started, ["a", "b"]);
    let shutDownDone = false;
    const shuttingDown = q.shutDown().then(() => (shutDownDone = true));
    await settle();
    assert.equal(shutDownDone, false, "still waiting for a and b");
    q.add("e");
    gates.get("a")!.resolve();
    await settle();
    assert.equal(shutDownDone, false, "still waiting for b");
    gates.get("b")!.resolve();
    await shuttingDown;
    await running;
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(finished, ["a", "b"]);
    assert.deepEqual(started, ["a", "b"], "c, d and e were dropped");
    assert.equal(q.depth, 0);
  });

  test("run refuses a second call and a bad concurrency", async () => {
    const q = new WorkQueue();
    assert.throws(() => q.run(0, async () => undefined), /concurrency must be a positive integer/);
    const running = q.run(1, async () => undefined);
    assert.throws(() => q.run(1, async () => undefined), /already called/);
    await q.shutDown();
    await running;
  });
});

describe("RateLimiter", () => {
  test("per-key delay doubles from 50 ms and stops at 5 minutes", (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: 0 });
    const limiter = new RateLimiter();
    const delays = Array.from({ length: 16 }, () => limiter.when("k"));
    assert.deepEqual(delays.slice(0, 5), [50, 100, 200, 400, 800]);
    // 50 ms * 2^13 = 409.6 s: capped from the 14th failure on.
    assert.equal(delays[12], 50 * 2 ** 12);
    assert.deepEqual(delays.slice(13), [300_000, 300_000, 300_000]);
    assert.equal(limiter.retries("k"), 16);
    assert.equal(limiter.when("other"), 50, "keys back off independently");
  });

  test("forget resets a key to the base delay", (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: 0 });
    const limiter = new RateLimiter();
    limiter.when("k");
    limiter.when("k");
    assert.equal(limiter.when("k"), 200);
    limiter.forget("k");
    assert.equal(limiter.retries("k"), 0);
    assert.equal(limiter.when("k"), 50);
  });

  test("the token bucket bounds retries overall once the burst is spent", (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: 0 });
    const limiter = new RateLimiter({ qps: 10, burst: 100 });
    for (let i = 0; i < 100; i++) assert.equal(limiter.when(`key-${i}`), 50, "the burst costs nothing extra");
    assert.equal(limiter.when("key-100"), 100, "101st retry within the same instant waits for a token (100 ms at 10/s)");
    assert.equal(limiter.when("key-101"), 200);
    t.mock.timers.tick(100);
    assert.equal(limiter.when("key-102"), 200, "100 ms refilled one token; this reservation is 2 short again");
    t.mock.timers.tick(1000);
    assert.equal(limiter.when("key-103"), 50, "a second refilled 10 tokens: only the per-key delay remains");
  });

  test("refuses nonsense options", () => {
    assert.throws(() => new RateLimiter({ baseDelayMs: 0 }), /baseDelayMs/);
    assert.throws(() => new RateLimiter({ baseDelayMs: 100, maxDelayMs: 10 }), /maxDelayMs/);
    assert.throws(() => new RateLimiter({ qps: 0 }), /qps/);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
