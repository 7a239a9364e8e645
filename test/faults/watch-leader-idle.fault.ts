// Three faults of one control plane:
// - watch expiry: the operator cut off from the API server while a DaguUser is deleted, etcd compacted and
//   kube-apiserver restarted (its watch cache starts anew), so the operator's watches come back to 410 Gone
//   and a relist: the deleted user leaves the credentials;
// - leader failover under a bulk apply: two operators, the leader SIGKILLed, the other leads within the
//   Lease's duration and converges; the dead leader's writes all precede the new leader's;
// - steady state: an idle operator (resyncing) and two idle sidecars write nothing (FAULTS_IDLE_SECONDS,
//   default 180; the issue's full check is 600).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { cluster, K, O, R, kubeconfigFile, sleep, spawnOperator, startPartition, type OperatorProcess, useFaultEnv } from "./cluster.ts";
import { startDagu } from "../harness/dagu.ts";
import { startSidecar } from "../harness/sidecar.ts";

const IDLE_SECONDS = Number(process.env.FAULTS_IDLE_SECONDS ?? 180);

useFaultEnv();

async function authWithUsers(ns: string, users: string[]): Promise<void> {
  await R.secret(ns, "admin-pw", { password: "admin-password-1" });
  await R.create(ns, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  for (const u of users) await R.create(ns, "daguusers", "DaguUser", u, { authRef: { name: "dagu" }, username: u, role: "viewer", password: { generate: { secretName: `${u}-password` } } });
}

test("a deletion missed while the operator was cut off, its watch expired (410 Gone): the relist removes the user", async (t) => {
  const ns = await K.testNamespace(t, "gone");
  const dir = await mkdtemp(join(tmpdir(), "faults-gone-"));
  const link = await startPartition(cluster.server);
  t.after(() => link.close());
  const operator = await spawnOperator({ kubeconfig: await kubeconfigFile(await O.operatorKubeConfig(), dir, "operator", link.port) });
  t.after(() => operator.kill());
  await authWithUsers(ns, ["alice"]);
  // bob's password is referenced, not generated: no Secret of his is garbage-collected with him, so only
  // his own deletion, as the relist finds it, can tell the operator he is gone.
  await R.secret(ns, "bob-pw", { password: "bob-password-1" });
  await R.create(ns, "daguusers", "DaguUser", "bob", { authRef: { name: "dagu" }, username: "bob", role: "viewer", password: { secretRef: { name: "bob-pw", key: "password" } } });
  for (const u of ["alice", "bob"]) await R.waitReady(ns, "daguusers", u);
  await R.waitCredentials(ns, "dagu", (c) => c.users.some((u) => u.username === "bob"), "bob in the credentials");

  link.cut();
  await R.custom.deleteNamespacedCustomObject({ group: R.GROUP, version: R.VERSION, namespace: ns, plural: "daguusers", name: "bob" });
  const compactedAt = await cluster.compact();
  await cluster.kill("apiserver");
  await cluster.start("apiserver");
  const healed = Date.now();
  link.heal();
  await R.waitCredentials(ns, "dagu", (c) => !c.users.some((u) => u.username === "bob") && c.users.some((u) => u.username === "alice"), "bob gone, alice kept");
  const gone = operator.lines().filter((l) => l.msg === "watch resourceVersion expired (410 Gone); listing again");
  assert.ok(
    gone.some((l) => String(l.informer).startsWith("daguusers.")),
    `the DaguUsers' watch came back to 410 Gone and listed again (410s seen: ${gone.map((l) => String(l.informer)).join("; ") || "none"})`,
  );
  assert.equal(operator.child.exitCode, null);
  t.diagnostic(`etcd compacted at revision ${compactedAt}; after the link healed, bob left the credentials in ${Date.now() - healed} ms; ${gone.length} watches relisted after 410 Gone`);
});

interface LeaseSpec {
  holderIdentity?: string;
}

test("leader failover under a bulk apply: the follower leads within the Lease's duration, converges, and never writes alongside the dead leader", async (t) => {
  const ns = await K.testNamespace(t, "failover");
  const dir = await mkdtemp(join(tmpdir(), "faults-failover-"));
  const kubeconfig = await kubeconfigFile(await O.operatorKubeConfig(), dir, "operator");
  const lease = { namespace: O.OPERATOR_NAMESPACE, name: "faults-failover" };
  const operators: OperatorProcess[] = [await spawnOperator({ kubeconfig, lease }), await spawnOperator({ kubeconfig, lease })];
  for (const o of operators) t.after(() => o.kill());
  const coordination = R.kc.makeApiClient(k8s.CoordinationV1Api);
  const holder = async () => ((await coordination.readNamespacedLease({ name: lease.name, namespace: lease.namespace }).catch(() => undefined))?.spec as LeaseSpec | undefined)?.holderIdentity;
  const users = Array.from({ length: 20 }, (_, i) => `user${i}`);
  const first = await K.eventually("a leader", async () => (await holder()) || undefined, 60_000, 100);
  // Who leads is what each says of itself, not only the Lease's holder: two that believed they held it (one
  // identity for both) would both reconcile.
  const leading = () => operators.filter((o) => o.lines().some((l) => l.msg === "started leading"));
  const leader = (await K.eventually("one operator leads", async () => (leading().length > 0 ? leading() : undefined), 60_000, 50))[0]!;
  const follower = operators.find((o) => o !== leader)!;
  // Both alive for a few of the follower's retry periods (2 s each): it leaves the unexpired Lease alone.
  await sleep(6_000);
  assert.deepEqual(leading().map((o) => o.pid), [leader.pid], "one leader at a time: the follower has not started leading");
  assert.equal(await holder(), first, "the follower left the leader's unexpired Lease alone");
  assert.ok(first.includes(`-${leader.pid}-`), `the Lease names the one that leads (${first})`);
  await authWithUsers(ns, users);
  // Killed in the middle of the work: once a few users are Ready, before all are.
  await K.eventually("the leader is reconciling users", async () => leader.lines().filter((l) => l.msg === "reconciled" && l.kind === "DaguUser").length >= 3 || undefined, 60_000, 20);
  assert.deepEqual(leading().map((o) => o.pid), [leader.pid], "still one leader: the follower has not started leading");
  await leader.kill("SIGKILL");
  const killed = Date.now();
  await K.eventually("the follower leads", async () => (await holder())?.includes(`-${follower.pid}-`) || undefined, 40_000, 50);
  const takeoverMs = Date.now() - killed;
  for (const u of users) await R.waitReady(ns, "daguusers", u);
  await R.waitCredentials(ns, "dagu", (c) => c.users.length === users.length + 1, "every user");
  const convergedMs = Date.now() - killed;
  // The CLI's Lease: 15 s, renewed every 2 s (+20% jitter); the follower takes it once 15 s pass without a renewal.
  assert.ok(takeoverMs <= 15_000 + 2_400 + 1_000, `the follower took over in ${takeoverMs} ms (Lease duration 15 s)`);
  const times = (o: OperatorProcess, msg: string) => o.lines().filter((l) => l.msg === msg).map((l) => Number(l.time));
  const leaderWrites = [...times(leader, "reconciled"), ...times(leader, "credentials written")];
  const followerStart = Math.min(...times(follower, "caches synced; reconciling"));
  assert.ok(leaderWrites.length > 0 && Number.isFinite(followerStart), "both led");
  assert.ok(Math.max(...leaderWrites) < followerStart, "the new leader started reconciling only after the old one's last reconcile");
  assert.equal(times(follower, "reconciled").filter((at) => at < followerStart).length, 0, "the follower reconciled nothing before it led");
  t.diagnostic(`leader SIGKILLed after ${leaderWrites.length} reconciles; the follower led ${takeoverMs} ms later (${followerStart - Math.max(...leaderWrites)} ms after the dead leader's last reconcile), every user Ready after ${convergedMs} ms`);
});

test(`steady state: an idle operator and two idle sidecars write nothing for ${IDLE_SECONDS} s`, async (t) => {
  const ns = await K.testNamespace(t, "idle");
  // In this process, resyncing every 60 s: the window holds resyncs, which must write nothing either.
  await R.withOperator(t, "idle", { resyncPeriodMs: 60_000 });
  await authWithUsers(ns, ["alice", "bob"]);
  await R.create(ns, "daguapikeys", "DaguApiKey", "ci", { authRef: { name: "dagu" }, role: "operator", secretName: "ci-api-key" });
  await R.create(ns, "daguwebhooks", "DaguWebhook", "hook", { authRef: { name: "dagu" }, dagName: "hello", auth: { mode: "tokenAndHmac", hmacEnforcement: "strict" }, secretName: "hook-webhook" });
  const auth = await R.waitReady(ns, "daguauths", "dagu", "Materialized");
  for (const u of ["alice", "bob"]) await R.waitReady(ns, "daguusers", u);
  await R.waitReady(ns, "daguapikeys", "ci");
  await R.waitReady(ns, "daguwebhooks", "hook");
  const dir = await mkdtemp(join(tmpdir(), "faults-idle-"));
  const sidecarKc = await kubeconfigFile(await K.serviceAccountKubeConfig(ns, String(auth.status!.serviceAccountName)), dir, "sidecar");
  const dagu = await startDagu();
  t.after(() => dagu.stop());
  for (let i = 0; i < 2; i++) {
    const s = await startSidecar({ upstream: dagu.url, args: ["--kubernetes", "--namespace", ns, "--auth", "dagu", "--kubeconfig", sidecarKc] });
    t.after(() => s.stop());
  }
  await sleep(5000); // the start-up writes (the sidecars' throttle Secret, Events) are behind us

  const kinds: [string, string, string][] = [
    ["", "v1", "secrets"],
    ["", "v1", "configmaps"],
    ["", "v1", "serviceaccounts"],
    ["", "v1", "events"],
    ["rbac.authorization.k8s.io", "v1", "roles"],
    ["rbac.authorization.k8s.io", "v1", "rolebindings"],
    [R.GROUP, R.VERSION, "daguauths"],
    [R.GROUP, R.VERSION, "daguusers"],
    [R.GROUP, R.VERSION, "daguapikeys"],
    [R.GROUP, R.VERSION, "daguwebhooks"],
  ];
  const snapshot = async () => {
    const versions = new Map<string, string>();
    for (const [group, version, plural] of kinds) {
      const r = await K.kubectl(["get", "--raw", `${group ? `/apis/${group}` : "/api"}/${version}/namespaces/${ns}/${plural}`]);
      assert.equal(r.code, 0, r.stderr);
      for (const o of (JSON.parse(r.stdout) as { items: { metadata: { name: string; resourceVersion: string } }[] }).items) versions.set(`${plural}/${o.metadata.name}`, o.metadata.resourceVersion);
    }
    return versions;
  };
  const before = await snapshot();
  const revisionBefore = await cluster.revision();
  const t0 = Date.now();
  await sleep(IDLE_SECONDS * 1000);
  const windowS = (Date.now() - t0) / 1000;
  const afterSnap = await snapshot();
  const revisionAfter = await cluster.revision();
  const changed = [...new Set([...before.keys(), ...afterSnap.keys()])].filter((k) => before.get(k) !== afterSnap.get(k));
  // Across the whole cluster: every key etcd holds that was written in the window. Leases are renewals
  // (the operator's own, every 500 ms in this harness, and the control plane's); nothing else may be ours.
  const written = await cluster.writtenSince(revisionBefore);
  const notLeases = written.filter((w) => !w.key.startsWith("/registry/leases/"));
  const ours = written.filter((w) => w.key.includes(`/${ns}/`) || w.key.includes("auth.dagu.dev"));
  t.diagnostic(
    `idle window ${windowS.toFixed(0)} s over ${before.size} objects: ${changed.length} writes in the namespace (${((changed.length * 60) / windowS).toFixed(2)}/min); ` +
      `etcd revisions across the whole cluster meanwhile: ${revisionAfter - revisionBefore}, to ${written.length} keys: ${written.length - notLeases.length} Leases, others: ${notLeases.map((w) => w.key).join(", ") || "none"}`,
  );
  assert.deepEqual(changed, [], "nothing in the namespace was written while idle");
  assert.deepEqual(ours.map((w) => w.key), [], "nothing of ours anywhere in etcd was written while idle");
});
