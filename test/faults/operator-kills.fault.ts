// The operator SIGKILLed at seeded random points of a bulk apply (and of the reconciles it starts), many
// times in a row. Afterwards every user, key and webhook is in the credentials exactly once, every
// generated plaintext in its consumer Secret matches the digest or hash in force, no published hash of an
// unchanged password was ever replaced (no rehash), no generated value was ever replaced (no key issued
// twice with the first one lost), every status is true, and an operator started on the converged state
// hashes nothing and writes nothing. FAULTS_SEED replays a schedule; FAULTS_KILLS sets the count (>= 20).
// A second test kills the operator at a failpoint right after each credentials write, the one ordering
// random kills cannot split: what it hashed must be remembered before the document carrying it is written.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import argon2 from "argon2";
import { sha256Hex } from "../../src/common/tokens.ts";
import { parseCredentials, type Credentials } from "../../src/api/index.ts";
import { Informer } from "../../src/common/kube/informer.ts";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { K, O, R, kubeconfigFile, seededRandom, sleep, spawnOperator, type OperatorProcess, useFaultEnv } from "./cluster.ts";

const SEED = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = Math.max(20, Number(process.env.FAULTS_KILLS ?? 24));
const USERS = 30;
const KEYS = 12;
const HOOKS = 8;

useFaultEnv();

const api = "auth.dagu.dev/v1alpha1";
const userDoc = (i: number, role: string) => ({
  apiVersion: api,
  kind: "DaguUser",
  metadata: { name: `u${i}` },
  spec: { authRef: { name: "dagu" }, username: `user${i}`, role, password: i % 2 === 0 ? { secretRef: { name: `u${i}-pw`, key: "password" } } : { generate: { secretName: `u${i}-password` } } },
});
const keyDoc = (i: number) => ({ apiVersion: api, kind: "DaguApiKey", metadata: { name: `k${i}` }, spec: { authRef: { name: "dagu" }, role: "operator", secretName: `k${i}-key` } });
const hookDoc = (i: number) => ({
  apiVersion: api,
  kind: "DaguWebhook",
  metadata: { name: `h${i}` },
  spec: { authRef: { name: "dagu" }, dagName: `dag${i}`, auth: { mode: "tokenAndHmac", hmacEnforcement: "strict" }, secretName: `h${i}-webhook` },
});
const secretDoc = (name: string, password: string) => ({ apiVersion: "v1", kind: "Secret", metadata: { name }, stringData: { password } });

test(`the operator killed ${KILLS} times with SIGKILL during a bulk apply loses and duplicates nothing`, async (t) => {
  t.diagnostic(`seed ${SEED} (FAULTS_SEED=${SEED} replays this schedule), ${KILLS} kills`);
  process.stderr.write(`[faults] operator-kills seed ${SEED}\n`);
  const random = seededRandom(SEED);
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
  const ns = await K.testNamespace(t, "kills");
  const dir = await mkdtemp(join(tmpdir(), "faults-kills-"));
  const operatorKc = await kubeconfigFile(await O.operatorKubeConfig(), dir, "operator");
  const apply = async (items: unknown[]) => {
    const r = await K.kubectl(["apply", "-n", ns, "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));
    assert.equal(r.code, 0, r.stderr);
  };

  const seen = await watchPublished(t, ns);
  // The bulk apply, in chunks at seeded intervals, while the kills go on: creates, then role changes and deletions.
  const waves = async () => {
    await apply([secretDoc("admin-pw", "admin-password-1"), ...Array.from({ length: USERS / 2 }, (_, j) => secretDoc(`u${2 * j}-pw`, `user${2 * j}-password`))]);
    await apply([{ apiVersion: api, kind: "DaguAuth", metadata: { name: "dagu" }, spec: { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } } }]);
    const docs = [...Array.from({ length: USERS }, (_, i) => userDoc(i, "viewer")), ...Array.from({ length: KEYS }, (_, i) => keyDoc(i)), ...Array.from({ length: HOOKS }, (_, i) => hookDoc(i))];
    for (let i = 0; i < docs.length; ) {
      const n = between(3, 8);
      await apply(docs.slice(i, i + n));
      i += n;
      await sleep(between(200, 1500));
    }
    await apply(Array.from({ length: 10 }, (_, i) => userDoc(i, "operator")));
    await sleep(between(200, 1500));
    const del = await K.kubectl(["delete", "-n", ns, "--wait=false", "daguusers/u25", "daguusers/u26", "daguusers/u27", "daguusers/u28", "daguusers/u29", "daguapikeys/k10", "daguapikeys/k11", "daguwebhooks/h7"]);
    assert.equal(del.code, 0, del.stderr);
  };
  const applied = waves();

  let operator: OperatorProcess | undefined;
  const lived: number[] = [];
  for (let k = 1; k <= KILLS; k++) {
    operator = await spawnOperator({ kubeconfig: operatorKc });
    // Most kills fall in the reconciles (hashing, generating, writing), counted from when the caches have
    // synced; one in five anywhere in the start-up before that.
    const early = random() < 0.2;
    const life = early ? between(100, 1500) : between(0, 2500);
    const p = operator;
    if (!early) await K.eventually("the operator reconciles", async () => p.lines().some((l) => l.msg === "caches synced; reconciling") || undefined, 60_000, 25);
    await sleep(life);
    await operator.kill("SIGKILL");
    lived.push(early ? -life : life);
  }
  await applied;
  t.diagnostic(`${KILLS} SIGKILLs at ${lived.join(", ")} ms after the caches synced (negative: after the start, before they synced); ${seen.credentialWrites()} credentials writes seen so far`);

  // A last operator, left alone, converges.
  operator = await spawnOperator({ kubeconfig: operatorKc });
  t.after(() => operator?.kill());
  const t0 = Date.now();
  const expectedUsers = Array.from({ length: 25 }, (_, i) => i);
  for (const i of expectedUsers) await R.waitReady(ns, "daguusers", `u${i}`);
  for (let i = 0; i < 10; i++) await R.waitReady(ns, "daguapikeys", `k${i}`);
  for (let i = 0; i < 7; i++) await R.waitReady(ns, "daguwebhooks", `h${i}`);
  const doc: Credentials = await R.waitCredentials(ns, "dagu", (c) => c.users.length === 26 && c.apiKeys.length === 10 && c.webhooks.length === 7, "25 users and the admin, 10 keys, 7 webhooks");
  await R.waitReady(ns, "daguauths", "dagu", "Materialized");
  t.diagnostic(`converged ${Date.now() - t0} ms after the last kill`);

  // Each exactly once.
  const byName = new Map(doc.users.map((u) => [u.username, u]));
  assert.equal(new Set(doc.users.map((u) => u.id)).size, doc.users.length, "no user id twice");
  assert.deepEqual([...byName.keys()].sort(), ["admin", ...expectedUsers.map((i) => `user${i}`)].sort(), "exactly the declared users");
  for (const i of expectedUsers) {
    const obj = await R.get(ns, "daguusers", `u${i}`);
    const u = byName.get(`user${i}`)!;
    assert.equal(u.id, obj.metadata.uid);
    assert.equal(u.role, i < 10 ? "operator" : "viewer", `user${i}'s role`);
    const password = i % 2 === 0 ? `user${i}-password` : await R.secretValue(ns, `u${i}-password`, "password");
    assert.ok(await argon2.verify(u.passwordHash!, password), `user${i}'s password verifies against the hash in force`);
  }
  assert.equal(new Set(doc.apiKeys.map((k) => k.digest)).size, 10, "no key twice");
  const digests = new Set(doc.apiKeys.map((k) => k.digest));
  for (let i = 0; i < 10; i++) assert.ok(digests.has(sha256Hex(await R.secretValue(ns, `k${i}-key`, "apiKey"))), `k${i}'s key in its Secret is the one in force`);
  assert.deepEqual(doc.webhooks.map((w) => w.dagName).sort(), Array.from({ length: 7 }, (_, i) => `dag${i}`).sort());
  for (let i = 0; i < 7; i++) {
    const w = doc.webhooks.find((x) => x.dagName === `dag${i}`)!;
    assert.deepEqual(w.tokenDigests.map((d) => d.digest), [sha256Hex(await R.secretValue(ns, `h${i}-webhook`, "token"))], `h${i}'s token`);
    assert.deepEqual(w.hmacSecrets.map((s) => s.secret), [await R.secretValue(ns, `h${i}-webhook`, "hmacSecret")], `h${i}'s HMAC secret`);
  }

  assert.equal(seen.invalidDocuments(), 0, "every credentials document written was valid");
  // Nothing published was ever replaced: no password hashed twice, no generated value issued twice.
  assert.deepEqual(seen.replaced(), [], "a published hash or generated value was replaced");
  assert.ok(seen.hashesSeen() >= 26, "hashes were seen");

  // An operator started on the converged state hashes nothing and writes nothing.
  await operator.kill("SIGKILL");
  const rv = async () => (await R.core.readNamespacedSecret({ name: "dagu-credentials", namespace: ns })).metadata!.resourceVersion;
  const before = await rv();
  const writesBefore = seen.credentialWrites();
  operator = await spawnOperator({ kubeconfig: operatorKc });
  await K.eventually("the fresh operator reconciled every DaguUser", async () => ((await operator!.metric("dagu_auth_operator_reconcile_total")) ?? 0) >= 25 + 10 + 7 + 1 || undefined, 60_000, 200);
  await K.eventually("its queues are empty", async () => (await operator!.metric("dagu_auth_operator_workqueue_depth")) === 0 || undefined, 60_000, 200);
  await sleep(2000);
  assert.equal(await operator.metric("dagu_auth_operator_hash_duration_seconds_count"), 0, "no password hashed again");
  assert.equal(await rv(), before, "the credentials Secret is not written again");
  assert.equal(seen.credentialWrites(), writesBefore);
  t.diagnostic(`survived ${KILLS} kills; ${seen.credentialWrites()} credentials writes in all; ${seen.valuesSeen()} published values, none replaced`);
});

/**
 * Everything published in `ns`, as it was published: password hashes by user id in each credentials
 * document, generated values by Secret and key. A value seen twice with different contents was replaced.
 */
async function watchPublished(t: TestContext, ns: string) {
  const published = new Map<string, Set<string>>();
  const note = (what: string, value: string | undefined) => {
    if (value === undefined) return;
    const values = published.get(what) ?? new Set<string>();
    values.add(value);
    published.set(what, values);
  };
  let credentialWrites = 0;
  let invalidDocuments = 0;
  const watch = new Informer({ kubeConfig: K.adminAccess(), resource: { group: "", version: "v1", plural: "secrets" }, namespace: ns, resyncPeriodMs: 0 });
  const onSecret = (s: KubeObject) => {
    const data = (s.data ?? {}) as Record<string, string>;
    const value = (k: string) => (data[k] === undefined ? undefined : Buffer.from(data[k], "base64").toString("utf8"));
    const name = s.metadata.name!;
    if (name === "dagu-credentials") {
      credentialWrites++;
      const parsed = parseCredentials(value("credentials.json") ?? "");
      if (!parsed.success) invalidDocuments++;
      else for (const u of parsed.data.users) note(`hash of ${u.id}`, u.passwordHash);
    }
    if (/^u\d+-password$/.test(name)) note(`${name}/password`, value("password"));
    if (/^k\d+-key$/.test(name)) note(`${name}/apiKey`, value("apiKey"));
    if (/^h\d+-webhook$/.test(name)) for (const k of ["token", "hmacSecret"]) note(`${name}/${k}`, value(k));
  };
  watch.onAdd(onSecret);
  watch.onUpdate((_a, b) => onSecret(b));
  watch.start();
  t.after(() => watch.stop());
  await watch.hasSynced;
  return {
    credentialWrites: () => credentialWrites,
    invalidDocuments: () => invalidDocuments,
    valuesSeen: () => published.size,
    hashesSeen: () => [...published.keys()].filter((k) => k.startsWith("hash of ")).length,
    replaced: () => [...published].filter(([, values]) => values.size > 1).map(([what, values]) => `${what} (${values.size} values)`),
  };
}

test("a kill right after each credentials write rehashes nothing and issues nothing twice (what was hashed is remembered first)", async (t) => {
  // Random kills almost never land between the credentials write and the next API call; the failpoint
  // (src/operator/runtime/failpoint.ts) kills the operator exactly there, after every write of new content.
  const ns = await K.testNamespace(t, "kill-after-write");
  const dir = await mkdtemp(join(tmpdir(), "faults-after-write-"));
  const operatorKc = await kubeconfigFile(await O.operatorKubeConfig(), dir, "operator");
  const seen = await watchPublished(t, ns);
  const apply = async (items: unknown[]) => {
    const r = await K.kubectl(["apply", "-n", ns, "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));
    assert.equal(r.code, 0, r.stderr);
  };
  const stages: { change: unknown[][]; done: (c: Credentials) => boolean }[] = [
    {
      change: [
        [secretDoc("admin-pw", "admin-password-1"), ...[0, 2, 4].map((i) => secretDoc(`u${i}-pw`, `user${i}-password`))],
        [{ apiVersion: api, kind: "DaguAuth", metadata: { name: "dagu" }, spec: { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } } }],
        [...Array.from({ length: 6 }, (_, i) => userDoc(i, "viewer")), keyDoc(0), hookDoc(0)],
      ],
      done: (c) => c.users.length === 7 && c.apiKeys.length === 1 && c.webhooks.length === 1,
    },
    { change: [Array.from({ length: 3 }, (_, i) => userDoc(i, "operator"))], done: (c) => c.users.filter((u) => u.role === "operator").length === 3 },
    { change: [[secretDoc("u6-pw", "user6-password"), userDoc(6, "viewer")]], done: (c) => c.users.length === 8 },
  ];
  const credentialsNow = async (): Promise<Credentials | undefined> => {
    const value = await R.secretValue(ns, "dagu-credentials", "credentials.json").catch(() => undefined);
    const parsed = value === undefined ? undefined : parseCredentials(value);
    return parsed?.success ? parsed.data : undefined;
  };
  const alive = (op: OperatorProcess) => op.child.exitCode === null && op.child.signalCode === null;
  /** "alive" once the credentials say the stage is done and the operator still lives 3 s later; "killed" when it died first. */
  const survives = async (op: OperatorProcess, done: (c: Credentials) => boolean): Promise<"alive" | "killed"> => {
    const deadline = Date.now() + 90_000;
    while (alive(op)) {
      if (Date.now() > deadline) {
        const tail = op.lines().slice(-8).map((l) => `${String(l.msg)} ${JSON.stringify(l).slice(0, 300)}`);
        throw new Error(`the operator neither wrote nor went idle within 90 s; its last lines:\n${tail.join("\n")}\ncredentials: ${JSON.stringify((await credentialsNow())?.users.map((u) => [u.username, u.role]))}`);
      }
      const doc = await credentialsNow();
      if (doc && done(doc)) {
        await sleep(3000);
        return alive(op) ? "alive" : "killed";
      }
      await sleep(200);
    }
    return "killed";
  };
  // Each stage is applied while no operator runs; armed operators then follow one another until one has
  // nothing new to write. Each stage needs at least one write, so at least one kill.
  let kills = 0;
  for (const [n, stage] of stages.entries()) {
    for (const items of stage.change) await apply(items);
    let settled = false;
    for (let run = 0; run < 5 && !settled; run++) {
      const armed = await spawnOperator({ kubeconfig: operatorKc, failpoint: "after-credentials-write" });
      const outcome = await survives(armed, stage.done).finally(() => armed.kill("SIGKILL"));
      t.diagnostic(`stage ${n + 1}, run ${run + 1}: ${outcome}`);
      if (outcome === "killed") kills++;
      else settled = true;
      await armed.kill("SIGKILL");
    }
    assert.ok(settled, `stage ${n + 1}: each restart wrote the credentials again (a hash or a value made anew after each kill)`);
  }
  t.diagnostic(`${kills} operators killed right after their credentials write; ${seen.credentialWrites()} credentials writes seen`);
  assert.ok(kills >= stages.length, `the failpoint fired after the writes (${kills} kills)`);

  const operator = await spawnOperator({ kubeconfig: operatorKc });
  t.after(() => operator.kill());
  for (let i = 0; i < 7; i++) await R.waitReady(ns, "daguusers", `u${i}`);
  await R.waitReady(ns, "daguapikeys", "k0");
  await R.waitReady(ns, "daguwebhooks", "h0");
  const doc = await R.waitCredentials(ns, "dagu", (c) => c.users.length === 8 && c.apiKeys.length === 1 && c.webhooks.length === 1, "7 users and the admin, a key, a webhook");
  for (let i = 0; i < 7; i++) {
    const u = doc.users.find((x) => x.username === `user${i}`)!;
    assert.equal(u.role, i < 3 ? "operator" : "viewer", `user${i}'s role`);
    const password = i % 2 === 0 ? `user${i}-password` : await R.secretValue(ns, `u${i}-password`, "password");
    assert.ok(await argon2.verify(u.passwordHash!, password), `user${i}'s password verifies against the hash in force`);
  }
  assert.ok(doc.apiKeys[0]!.digest === sha256Hex(await R.secretValue(ns, "k0-key", "apiKey")), "the key in its Secret is the one in force");
  assert.equal(seen.invalidDocuments(), 0);
  assert.deepEqual(seen.replaced(), [], "a published hash or generated value was replaced");
  assert.ok(seen.hashesSeen() >= 8, "hashes were seen");
});
