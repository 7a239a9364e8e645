// Leader election on a real coordination.k8s.io/v1 Lease.
import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import type { KubeConfig } from "../../src/common/kube/config.ts";
import { adminAccess, adminKubeConfig, toKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { LeaderElector, type LeaderElectionOptions } from "../../src/operator/runtime/leader-election.ts";

const logger = pino({ level: process.env.LOG_LEVEL ?? "silent" });

interface Candidate {
  elector: LeaderElector;
  /** When onStartedLeading ran, if it did. */
  startedAt?: number;
  stoppedAt?: number;
  signal?: AbortSignal;
  done: Promise<void>;
}

function candidate(t: TestContext, namespace: string, identity: string, options: Partial<LeaderElectionOptions> = {}): Candidate {
  const elector = new LeaderElector({ kubeConfig: adminAccess(), namespace, name: "operator", identity, logger, ...options });
  const c: Partial<Candidate> = { elector };
  c.done = elector.run({
    onStartedLeading: async (signal) => {
      c.startedAt = Date.now();
      c.signal = signal;
      // Work that honours the signal, as the controllers will.
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    },
    onStoppedLeading: () => {
      c.stoppedAt = Date.now();
    },
  });
  t.after(() => elector.stop());
  return c as Candidate;
}

async function readLease(namespace: string): Promise<k8s.V1LeaseSpec> {
  const coord = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
  const lease = await coord.readNamespacedLease({ name: "operator", namespace });
  return lease.spec ?? {};
}

test("of two candidates on one Lease exactly one leads", async (t) => {
  const ns = await testNamespace(t, "le-one");
  const a = candidate(t, ns, "a");
  const b = candidate(t, ns, "b");
  const leader = await eventually("a leader", async () => [a, b].find((c) => c.elector.isLeader));
  // Watch for a few renew periods: never two leaders, never a change of leader.
  for (let i = 0; i < 40; i++) {
    assert.equal([a, b].filter((c) => c.elector.isLeader).length, 1, "exactly one leads");
    assert.ok(leader.elector.isLeader, "the same one keeps leading");
    await new Promise((r) => setTimeout(r, 100));
  }
  const follower = leader === a ? b : a;
  assert.equal(follower.startedAt, undefined);
  assert.equal(follower.elector.leader, leader.elector.identity, "the follower knows who leads");
  assert.equal(follower.elector.health(), true, "a follower that can read the Lease is healthy");
  assert.equal(leader.elector.health(), true);
  const spec = await readLease(ns);
  assert.equal(spec.holderIdentity, leader.elector.identity);
  assert.equal(spec.leaseDurationSeconds, 15);
  assert.ok(spec.renewTime && spec.acquireTime, "renewTime and acquireTime are set");
});

test("release() hands the Lease over within about one retry period", async (t) => {
  const ns = await testNamespace(t, "le-release");
  const a = candidate(t, ns, "a");
  await eventually("a leads", async () => a.elector.isLeader);
  const b = candidate(t, ns, "b");
  await eventually("b saw a as leader", async () => b.elector.leader === "a");
  const transitions = (await readLease(ns)).leaseTransitions ?? 0;

  await a.elector.release();
  const releasedAt = Date.now();
  assert.ok(a.signal?.aborted, "the leader's work was told to stop");
  assert.ok(a.stoppedAt, "onStoppedLeading ran");
  assert.equal(a.elector.isLeader, false);
  await a.done;

  await eventually("b leads", async () => b.elector.isLeader, 10_000, 20);
  const takeover = b.startedAt! - releasedAt;
  t.diagnostic(`takeover ${takeover} ms after release (lease duration 15 s, retry period 2 s)`);
  // b notices on its next attempt: one retry period (2 s, +20% jitter) at most, not the 15 s lease duration.
  assert.ok(takeover < 3500, `b took over in ${takeover} ms`);
  const spec = await readLease(ns);
  assert.equal(spec.holderIdentity, "b");
  assert.equal(spec.leaseTransitions, transitions + 1, "a to b is one transition (releasing is not one)");
});

test("a leader that vanishes without release is replaced after the lease duration", async (t) => {
  const ns = await testNamespace(t, "le-crash");
  const options = { leaseDurationSeconds: 3, renewDeadlineMs: 2000, retryPeriodMs: 500 };
  const a = candidate(t, ns, "a", options);
  await eventually("a leads", async () => a.elector.isLeader);
  const b = candidate(t, ns, "b", options);
  await eventually("b saw a as leader", async () => b.elector.leader === "a");
  await new Promise((r) => setTimeout(r, 1500)); // a few renewals, which b sees

  await a.elector.stop(); // as if the process died: no release
  const killedAt = Date.now();
  assert.equal((await readLease(ns)).holderIdentity, "a", "the Lease still names a");
  await eventually("b leads", async () => b.elector.isLeader, 15_000, 20);
  const takeover = b.startedAt! - killedAt;
  t.diagnostic(`takeover ${takeover} ms after the leader stopped renewing (lease duration 3 s)`);
  // a renewed at most one retry period before it stopped; b counts the 3 s from when it saw that renewal.
  assert.ok(takeover >= 2000, `b waited for the lease to expire (${takeover} ms)`);
  assert.ok(takeover <= 6000, `b took over soon after expiry (${takeover} ms)`);
  assert.equal((await readLease(ns)).holderIdentity, "b");
});

test("a leader whose Lease is taken by another stops leading and aborts its work", async (t) => {
  const ns = await testNamespace(t, "le-lost");
  const a = candidate(t, ns, "a", { leaseDurationSeconds: 3, renewDeadlineMs: 2000, retryPeriodMs: 500 });
  await eventually("a leads", async () => a.elector.isLeader);
  // Someone else (an operator of another version, say) overwrites the Lease.
  const coord = adminKubeConfig().makeApiClient(k8s.CoordinationV1Api);
  const lease = await coord.readNamespacedLease({ name: "operator", namespace: ns });
  lease.spec = { ...lease.spec, holderIdentity: "intruder", renewTime: new k8s.V1MicroTime(), leaseDurationSeconds: 60 };
  await coord.replaceNamespacedLease({ name: "operator", namespace: ns, body: lease });
  const takenAt = Date.now();
  await eventually("a stops leading", async () => a.signal?.aborted, 5000, 20);
  t.diagnostic(`stopped ${Date.now() - takenAt} ms after losing the Lease`);
  assert.equal(a.elector.isLeader, false);
  assert.ok(a.stoppedAt);
  await a.done; // run() ends with leadership
  assert.equal(a.elector.health(), "leader election has ended");
});

/** A TCP proxy to the API server that the test can cut, as a network partition would. */
async function cuttableApiServer(t: TestContext): Promise<{ kubeConfig: KubeConfig; cut(): void }> {
  const admin = adminKubeConfig();
  const target = new URL(admin.getCurrentCluster()!.server);
  const sockets = new Set<Socket>();
  let cut = false;
  const proxy = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    proxy.close();
  });
  const port = (proxy.address() as { port: number }).port;
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: admin.clusters.map((c) => ({ ...c, server: `https://${target.hostname}:${port}` })),
    users: admin.users,
    contexts: admin.contexts,
    currentContext: admin.currentContext,
  });
  return {
    kubeConfig: toKubeConfig(kubeConfig),
    cut: () => {
      cut = true;
      for (const s of sockets) s.destroy();
    },
  };
}

test("a leader that cannot renew within renewDeadline stops leading", async (t) => {
  const ns = await testNamespace(t, "le-partition");
  const api = await cuttableApiServer(t);
  const a = candidate(t, ns, "a", { kubeConfig: api.kubeConfig, leaseDurationSeconds: 4, renewDeadlineMs: 2000, retryPeriodMs: 500 });
  await eventually("a leads", async () => a.elector.isLeader);
  api.cut();
  const cutAt = Date.now();
  await eventually("a stops leading", async () => a.signal?.aborted, 10_000, 20);
  const after = Date.now() - cutAt;
  t.diagnostic(`stopped leading ${after} ms after the API server became unreachable (renewDeadline 2 s)`);
  assert.ok(after >= 1000 && after <= 3500, `stopped after the renew deadline, before the 4 s lease expires (${after} ms)`);
  assert.equal(a.elector.isLeader, false);
  await a.done;
});

test("refuses inconsistent timings", () => {
  const base = { kubeConfig: adminAccess(), namespace: "x", name: "y", identity: "z" };
  assert.throws(() => new LeaderElector({ ...base, leaseDurationSeconds: 5, renewDeadlineMs: 10_000 }), /above renewDeadline/);
  assert.throws(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 }), /must exceed retryPeriod/);
  assert.throws(() => new LeaderElector({ ...base, identity: "" }), /identity/);
});
