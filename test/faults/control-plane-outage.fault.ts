// kube-apiserver and etcd killed and started again while the operator (a child process, leader election on)
// and two sidecars (--kubernetes, in front of a real Dagu) run: nobody restarts; the sidecars keep enforcing
// the last good credentials meanwhile and say so (/readyz body, dagu_auth_credentials_stale_seconds, a log
// line), then the operator and the sidecars carry on. Then the sidecars alone cut off from the API server (a
// TCP partition): an API key revoked meanwhile is refused by both within a second of the link's return.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cluster, K, O, R, kubeconfigFile, sleep, spawnOperator, startPartition, useFaultEnv, type OperatorProcess } from "./cluster.ts";
import { WATCH_RETRY_CAP_MS } from "../../src/operator/wiring/caches.ts";
import { startDagu } from "../harness/dagu.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";

useFaultEnv();

/** How soon after the API server's return the operator acts on a new resource (its watches' retry cap and jitter, one reconcile). */
const OPERATOR_RECOVERY_MS = 5_000;

/** The longest delay the operator's watches and lists waited before a retry since `since` (epoch ms), checked against the cap and its jitter. */
function longestRetryMs(operator: OperatorProcess, since: number): number {
  const delays = operator.lines().filter((l) => (l.msg === "watch failed" || l.msg === "list failed") && Number(l.time) >= since).map((l) => Number(l.retryInMs));
  assert.ok(delays.length > 0, "the operator's watches failed during the outage (and said so)");
  const longest = Math.max(...delays);
  assert.ok(longest <= WATCH_RETRY_CAP_MS * 1.2, `the operator's watches retried at most ${WATCH_RETRY_CAP_MS} ms (+20% jitter) apart (longest ${longest} ms)`);
  return longest;
}

async function staleSeconds(s: SidecarInstance): Promise<number> {
  const text = await (await fetch(`${s.metricsUrl()}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("dagu_auth_credentials_stale_seconds "));
  assert.ok(line, "the sidecar exports dagu_auth_credentials_stale_seconds");
  return Number(line.split(" ")[1]);
}

test("the control plane stopped and started, then the sidecars partitioned: last good credentials enforced, revocations seen within a second", async (t) => {
  const ns = await K.testNamespace(t, "outage");
  const dir = await mkdtemp(join(tmpdir(), "faults-outage-"));
  const operator = await spawnOperator({ kubeconfig: await kubeconfigFile(await O.operatorKubeConfig(), dir, "operator"), lease: { namespace: O.OPERATOR_NAMESPACE, name: "faults-outage" } });
  t.after(() => operator.kill());
  await R.secret(ns, "admin-pw", { password: "admin-password-1" });
  await R.secret(ns, "alice-pw", { password: "alice-password-1" });
  await R.create(ns, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  await R.create(ns, "daguusers", "DaguUser", "alice", { authRef: { name: "dagu" }, username: "alice", role: "viewer", password: { secretRef: { name: "alice-pw", key: "password" } } });
  for (const k of ["k1", "k2", "k3"]) await R.create(ns, "daguapikeys", "DaguApiKey", k, { authRef: { name: "dagu" }, role: "viewer", secretName: `${k}-key` });
  const auth = await R.waitReady(ns, "daguauths", "dagu", "Materialized");
  for (const k of ["k1", "k2", "k3"]) await R.waitReady(ns, "daguapikeys", k);
  await R.waitReady(ns, "daguusers", "alice");
  const keys = Object.fromEntries(await Promise.all(["k1", "k2", "k3"].map(async (k) => [k, await R.secretValue(ns, `${k}-key`, "apiKey")] as const)));

  // The sidecars reach the API server through a link the test can cut.
  const link = await startPartition(cluster.server);
  t.after(() => link.close());
  const sidecarKc = await kubeconfigFile(await K.serviceAccountKubeConfig(ns, String(auth.status!.serviceAccountName)), dir, "sidecar", link.port);
  const dagu = await startDagu();
  t.after(() => dagu.stop());
  const sidecars: SidecarInstance[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await startSidecar({ upstream: dagu.url, args: ["--kubernetes", "--namespace", ns, "--auth", "dagu", "--kubeconfig", sidecarKc] });
    t.after(() => s.stop());
    sidecars.push(s);
  }
  const call = async (s: SidecarInstance, key: string) => (await fetch(`${s.url}${dagu.api}/dags`, { headers: { authorization: `Bearer ${key}` } })).status;
  const login = async (s: SidecarInstance) =>
    (await fetch(`${s.url}${dagu.api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "alice", password: "alice-password-1" }) })).status;
  const enforced = async (s: SidecarInstance, expect: Record<string, number>) => {
    for (const [k, status] of Object.entries(expect)) assert.equal(await call(s, keys[k] ?? "dagu_notakeynotakeynotakeynotakeynotakey"), status, `${k} on ${s.url}`);
  };
  for (const s of sidecars) await enforced(s, { k1: 200, k2: 200, k3: 200, bogus: 401 });

  // 1. The control plane goes away: kube-apiserver, then etcd.
  const down = Date.now();
  await cluster.kill("apiserver");
  await cluster.kill("etcd");
  for (const s of sidecars) {
    await K.eventually(`${s.url} says its credentials may be stale`, async () => (await staleSeconds(s)) > 0 || undefined, 10_000, 50);
    await enforced(s, { k1: 200, bogus: 401 });
    assert.equal(await login(s), 200, "a login still works on the last good credentials");
    const readyz = await fetch(`${s.url}/readyz`);
    assert.equal(readyz.status, 200, "still ready: an API server outage must not take Dagu offline");
    assert.match(JSON.stringify(await readyz.json()), /"stale":\{"reason":"credentials source unreachable/);
    assert.ok(s.lines().some((l) => l.msg === "lost contact with the API server; enforcing the last good credentials until it is back"), "and says so in its log");
  }
  const etcdMs = await cluster.start("etcd");
  const apiMs = await cluster.start("apiserver");
  const outageMs = Date.now() - down;
  const back = Date.now();
  // The operator notices the return too: a DaguUser applied at once reaches the credentials as soon as its
  // watches are back (their retry delay after a long outage was client-go's 30 s; capped since).
  const operatorBack = (async () => {
    await R.create(ns, "daguusers", "DaguUser", "carol", { authRef: { name: "dagu" }, username: "carol", role: "viewer", password: { generate: { secretName: "carol-password" } } });
    await K.eventually("carol in the credentials", async () => (await R.credentials(ns, "dagu").catch(() => undefined))?.users.some((u) => u.username === "carol") || undefined, 60_000, 20);
    return Date.now() - back;
  })();
  for (const s of sidecars) await K.eventually(`${s.url} back in contact`, async () => (await staleSeconds(s)) === 0 || undefined, 10_000, 20);
  const reconnectMs = Date.now() - back;
  const operatorMs = await operatorBack;
  assert.ok(operatorMs <= OPERATOR_RECOVERY_MS, `a DaguUser applied as the API server returned is in the credentials within ${OPERATOR_RECOVERY_MS} ms (took ${operatorMs} ms)`);
  assert.ok(reconnectMs <= 1000, `both sidecars in contact within a second of the API server's return (took ${reconnectMs} ms)`);
  for (const s of sidecars) {
    assert.ok(s.lines().some((l) => l.msg === "back in contact with the API server"));
    assert.equal(s.process.exitCode, null, "the sidecar did not restart");
    assert.doesNotMatch(JSON.stringify(await (await fetch(`${s.url}/readyz`)).json()), /stale/);
  }
  // The operator carries on too (same process): a revocation right after the outage reaches both sidecars.
  const revoked = Date.now();
  await R.custom.deleteNamespacedCustomObject({ group: R.GROUP, version: R.VERSION, namespace: ns, plural: "daguapikeys", name: "k1" });
  for (const s of sidecars) await K.eventually(`${s.url} refuses k1`, async () => (await call(s, keys.k1!)) === 401 || undefined, 60_000, 20);
  const revokeAfterOutageMs = Date.now() - revoked;
  assert.ok(revokeAfterOutageMs <= OPERATOR_RECOVERY_MS, `a revocation after the outage enforced within ${OPERATOR_RECOVERY_MS} ms (took ${revokeAfterOutageMs} ms)`);
  assert.equal(operator.child.exitCode, null, "the operator did not restart");
  const leadership = operator.lines().filter((l) => /leading|Lease/.test(String(l.msg)));
  t.diagnostic(`operator leadership: ${leadership.map((l) => `${Number(l.time) - down} ms: ${String(l.msg)}`).join("; ")}`);
  for (const s of sidecars) await enforced(s, { k2: 200, k3: 200 });
  t.diagnostic(
    `outage ${outageMs} ms (etcd back in ${etcdMs} ms, kube-apiserver in ${apiMs} ms); sidecars in contact again ${reconnectMs} ms after; ` +
      `the operator's watches retried at most ${longestRetryMs(operator, down)} ms apart; a DaguUser applied at the return in the credentials after ${operatorMs} ms; ` +
      `a revocation after it enforced by both in ${revokeAfterOutageMs} ms`,
  );

  // 2. The sidecars alone are cut off; k2 is revoked meanwhile and the operator publishes it.
  link.cut();
  for (const s of sidecars) await K.eventually(`${s.url} says its credentials may be stale`, async () => (await staleSeconds(s)) > 0 || undefined, 10_000, 50);
  await R.custom.deleteNamespacedCustomObject({ group: R.GROUP, version: R.VERSION, namespace: ns, plural: "daguapikeys", name: "k2" });
  await R.waitCredentials(ns, "dagu", (c) => c.apiKeys.length === 1, "k2 gone from the credentials");
  await sleep(1000);
  for (const s of sidecars) await enforced(s, { k2: 200, k3: 200 }); // the last good credentials: they cannot know yet
  link.heal();
  const healed = Date.now();
  const seen: number[] = [];
  await Promise.all(
    sidecars.map(async (s) => {
      await K.eventually(`${s.url} refuses k2`, async () => (await call(s, keys.k2!)) === 401 || undefined, 30_000, 10);
      seen.push(Date.now() - healed);
    }),
  );
  t.diagnostic(`partition healed: k2 refused by both sidecars ${Math.max(...seen)} ms after (${seen.join(", ")} ms)`);
  assert.ok(Math.max(...seen) <= 1000, `a revocation made during the partition is in force within a second of its end (took ${Math.max(...seen)} ms)`);
  for (const s of sidecars) await enforced(s, { k3: 200, bogus: 401 });
});

test("an outage longer than the renew deadline: the leader exits (code 1) for the kubelet to restart it, never lingers; the follower, its caches kept, takes over and acts on a new resource within seconds of the return", async (t) => {
  const ns = await K.testNamespace(t, "deadline");
  const dir = await mkdtemp(join(tmpdir(), "faults-deadline-"));
  const kubeconfig = await kubeconfigFile(await O.operatorKubeConfig(), dir, "operator");
  const lease = { namespace: O.OPERATOR_NAMESPACE, name: "faults-deadline" };
  const leader = await spawnOperator({ kubeconfig, lease });
  t.after(() => leader.kill());
  await K.eventually("the operator leads", async () => leader.lines().some((l) => l.msg === "caches synced; reconciling") || undefined, 60_000, 50);
  const follower = await spawnOperator({ kubeconfig, lease });
  t.after(() => follower.kill());
  await R.secret(ns, "admin-pw", { password: "admin-password-1" });
  await R.create(ns, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  await R.waitReady(ns, "daguauths", "dagu", "Materialized");
  await K.eventually("the follower's caches synced", async () => (await fetch(`${follower.healthUrl}/readyz`).catch(() => undefined))?.status === 200 || undefined, 60_000, 50);
  assert.ok(!follower.lines().some((l) => l.msg === "started leading"), "the second operator follows");

  await cluster.kill("apiserver");
  const down = Date.now();
  let exited: boolean;
  try {
    // The CLI's renew deadline is 10 s; it then stops its reconcilers and ends (a lost leader that kept
    // running would neither reconcile nor let the kubelet start it afresh).
    exited = await Promise.race([leader.exited.then(() => true), sleep(30_000).then(() => false)]);
  } finally {
    await cluster.start("apiserver");
  }
  const back = Date.now();
  assert.ok(exited, "the leader ended within 30 s of losing the API server");
  assert.equal(leader.child.exitCode, 1, "with code 1");
  assert.ok(leader.lines().some((l) => l.msg === "lost leadership; stopping reconcilers"));
  const exitedAfterMs = Number(leader.lines().at(-1)?.time) - down;

  // The follower kept its caches through the outage (their watches retrying all along) and takes over: a
  // DaguUser applied at the return is acted on once it leads and its watches are back.
  await R.create(ns, "daguusers", "DaguUser", "carol", { authRef: { name: "dagu" }, username: "carol", role: "viewer", password: { generate: { secretName: "carol-password" } } });
  await K.eventually("carol in the credentials", async () => (await R.credentials(ns, "dagu").catch(() => undefined))?.users.some((u) => u.username === "carol") || undefined, 90_000, 20);
  const inCredentials = Date.now();
  assert.equal(follower.child.exitCode, null, "the follower did not restart");
  const ledAt = Number(follower.lines().find((l) => l.msg === "started leading")?.time);
  // The Lease is the follower's to take only once the dead leader's last renewal is 15 s old; from then on
  // (or from the return, if later) what remains is its watches' retry delay and one reconcile.
  const afterLeadingMs = inCredentials - Math.max(back, ledAt);
  t.diagnostic(
    `outage ${back - down} ms; the leader exited ${exitedAfterMs} ms into it (renew deadline 10 s); the follower's watches retried at most ${longestRetryMs(follower, down)} ms apart; ` +
      `it led ${ledAt - back} ms after the return; a DaguUser applied at the return in the credentials ${inCredentials - back} ms after it, ${afterLeadingMs} ms after the follower led`,
  );
  assert.ok(afterLeadingMs <= OPERATOR_RECOVERY_MS, `a DaguUser applied as the API server returned is in the credentials within ${OPERATOR_RECOVERY_MS} ms of the follower leading (took ${afterLeadingMs} ms)`);
});
