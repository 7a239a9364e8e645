// More than one Dagu UI pod behind one Service: two sidecars side by side on one DaguAuth, each in
// --kubernetes mode under the sidecar's ServiceAccount, in front of a real Dagu, the operator running.
// Whichever replica a request lands on: a password changed through one is in force on the other, tokens
// issued before it are refused on both, a lockout earned on both counts as one and holds on both, and a
// success on one clears the failures counted on the other.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serviceAccountKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { core, create, secret, waitReady, withOperator } from "../harness/resources.ts";
import { startDagu } from "../harness/dagu.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("two sidecar replicas: a password change, the tokens before it, a lockout and a success behave the same on both", async (t) => {
  const ns = await testNamespace(t, "replicas");
  await withOperator(t);
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  for (const user of ["alice", "carol", "dan"]) await secret(ns, `${user}-pw`, { password: `${user}-password-1` });
  await create(ns, "daguauths", "DaguAuth", "dagu", {
    mode: "builtin",
    builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } },
    login: { maxAttempts: 3, window: "10m", lockout: "10m" },
  });
  for (const user of ["alice", "carol", "dan"]) {
    await create(ns, "daguusers", "DaguUser", user, { authRef: { name: "dagu" }, username: user, role: "viewer", password: { secretRef: { name: `${user}-pw`, key: "password" } } });
  }
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  for (const user of ["alice", "carol", "dan"]) await waitReady(ns, "daguusers", user);
  await core.readNamespacedSecret({ name: "dagu-login-throttle", namespace: ns });

  const dagu = await startDagu();
  t.after(() => dagu.stop());
  const kubeconfig = join(await mkdtemp(join(tmpdir(), "replicas-")), "kubeconfig");
  await writeFile(kubeconfig, (await serviceAccountKubeConfig(ns, String(auth.status!.serviceAccountName))).exportConfig(), { mode: 0o600 });
  const replica = async () => {
    const s = await startSidecar({ upstream: dagu.url, args: ["--kubernetes", "--namespace", ns, "--auth", "dagu", "--kubeconfig", kubeconfig] });
    t.after(() => s.stop());
    return s;
  };
  const [a, b] = [await replica(), await replica()];
  const api = dagu.version.startsWith("1.") || dagu.version.startsWith("v1.") ? "/api/v2" : "/api/v1";
  const login = (s: SidecarInstance, username: string, password: string) =>
    fetch(`${s.url}${api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) });
  const token = async (s: SidecarInstance, username: string, password: string) => {
    const r = await login(s, username, password);
    assert.equal(r.status, 200, `${username} logs in on ${s.url}`);
    return ((await r.json()) as { token: string }).token;
  };
  const me = async (s: SidecarInstance, jwt: string) => (await fetch(`${s.url}${api}/auth/me`, { headers: { authorization: `Bearer ${jwt}` } })).status;

  // One set of credentials and signing keys: a token of one replica is good on the other.
  const onA = await token(a, "alice", "alice-password-1");
  const onB = await token(b, "alice", "alice-password-1");
  assert.deepEqual([await me(b, onA), await me(a, onB)], [200, 200]);

  // A password change through A: in force on A at once, on B through the password-changes Secret's watch.
  const changed = await fetch(`${a.url}${api}/auth/change-password`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${onA}` },
    body: JSON.stringify({ currentPassword: "alice-password-1", newPassword: "alice-password-2" }),
  });
  assert.equal(changed.status, 200, await changed.clone().text());
  const at = Date.now();
  assert.equal(await me(a, onA), 401, "A refuses the token from before the change at once");
  await eventually("B refuses both tokens from before the change", async () => ((await me(b, onB)) === 401 && (await me(b, onA)) === 401) || undefined, 10_000, 20);
  t.diagnostic(`password change on A to its tokens refused on B: ${Date.now() - at} ms`);
  assert.equal((await login(b, "alice", "alice-password-1")).status, 401, "the old password is refused on B");
  await token(b, "alice", "alice-password-2");

  // A lockout earned on both: 2 failures on A and 1 on B reach maxAttempts 3 together.
  const throttle = async () => (await core.readNamespacedSecret({ name: "dagu-login-throttle", namespace: ns })).data ?? {};
  const replicasPublished = async (n: number) => eventually(`${n} replica(s) published`, async () => Object.keys(await throttle()).length >= n || undefined, 10_000, 50);
  assert.equal((await login(a, "carol", "wrong-password-1")).status, 401);
  assert.equal((await login(a, "carol", "wrong-password-2")).status, 401);
  await replicasPublished(1);
  await sleep(500); // B's watch delivers A's document
  assert.equal((await login(b, "carol", "wrong-password-3")).status, 401);
  // Refused on B even with the right password (alone, B has seen one failure and would let it in) ...
  assert.equal((await login(b, "carol", "carol-password-1")).status, 429, "B locked carol on the failures of both");
  // ... and on A once B's lock has reached it.
  await replicasPublished(2);
  await sleep(500);
  const onALocked = await login(a, "carol", "carol-password-1");
  assert.equal(onALocked.status, 429, "A holds the lock B set");
  assert.ok(Number(onALocked.headers.get("retry-after")) > 500, "for the lockout's duration");

  // A success on B clears the failures counted on A.
  assert.equal((await login(a, "dan", "wrong-password-1")).status, 401);
  assert.equal((await login(a, "dan", "wrong-password-2")).status, 401);
  await sleep(700);
  await token(b, "dan", "dan-password-1");
  await sleep(700);
  assert.equal((await login(a, "dan", "wrong-password-3")).status, 401);
  assert.equal((await login(a, "dan", "wrong-password-4")).status, 401);
  await token(a, "dan", "dan-password-1"); // 2 failures since the success: not locked

  // The Secret holds digests only: no username or address in it.
  const stored = Object.values(await throttle()).map((v) => Buffer.from(v, "base64").toString()).join("\n");
  for (const clear of ["carol", "dan", "127.0.0.1"]) assert.ok(!stored.includes(clear), `${clear} is not stored in clear`);
});
