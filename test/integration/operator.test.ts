// The operator on the real control plane, running under its own ServiceAccount
// and documented RBAC: what a cluster admin applies becomes hashed credentials,
// status explains what is wrong, nothing is written twice, restarts are quiet.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import argon2 from "argon2";
import { Credentials, CredentialsShard, joinShards, type CredentialsIndex } from "../../src/api/index.ts";
import { sha256Hex } from "../../src/common/tokens.ts";
import { deepEqualJson } from "../../src/common/stable-json.ts";
import type { Dispatcher } from "undici";
import { kubectl, toKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { certManagerCrdsDir } from "../../dev/components.ts";
import { OPERATOR_NAMESPACE, operatorKubeConfig } from "../../dev/operator-account.ts";
import { startTestOperator } from "../harness/test-operator.ts";
import {
  builtinSetup,
  core,
  create,
  credentials,
  custom,
  get,
  GROUP,
  hashCount,
  kc,
  patchSpec,
  ready,
  secret,
  secretValue,
  setSecret,
  VERSION,
  waitCredentials,
  waitReady,
  withOperator,
  type Obj,
} from "../harness/resources.ts";

test("a builtin setup becomes hashed credentials, consumer Secrets and sidecar RBAC, all Ready", async (t) => {
  const ns = await testNamespace(t, "op");
  const op = await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguauths", "dagu", "Materialized");
  for (const [plural, name] of [["daguusers", "alice"], ["daguusers", "bob"], ["daguapikeys", "ci"], ["daguwebhooks", "hello"]] as const) await waitReady(ns, plural, name);

  const c = await waitCredentials(ns, "dagu", (d) => d.users.length === 3 && d.apiKeys.length === 1 && d.webhooks.length === 1, "3 users, a key, a webhook");
  assert.equal(Credentials.safeParse(c).success, true);
  const byName = new Map(c.users.map((u) => [u.username, u]));
  assert.equal(byName.get("admin")?.role, "admin");
  assert.ok(await argon2.verify(byName.get("admin")!.passwordHash!, "admin-password-1"));
  assert.ok(await argon2.verify(byName.get("alice")!.passwordHash!, "alice-password-1"));
  assert.ok(!(await argon2.verify(byName.get("alice")!.passwordHash!, "admin-password-1")));
  const alice = await get(ns, "daguusers", "alice");
  assert.equal(byName.get("alice")?.id, alice.metadata.uid, "a DaguUser is identified by its uid");
  const bobPassword = await secretValue(ns, "bob-password", "password");
  assert.ok(bobPassword.length >= 20);
  assert.ok(await argon2.verify(byName.get("bob")!.passwordHash!, bobPassword), "the generated password is the one hashed");

  const apiKey = await secretValue(ns, "ci-api-key", "apiKey");
  assert.match(apiKey, /^dagu_[1-9A-HJ-NP-Za-km-z]{32,44}$/);
  assert.equal(c.apiKeys[0]!.digest, sha256Hex(apiKey));
  assert.equal(c.apiKeys[0]!.role, "operator");
  assert.deepEqual(c.apiKeys[0]!.allowedSurfaces, ["rest_api"], "MCP is opt-in: the CRD's default is rest_api only");
  const token = await secretValue(ns, "hello-webhook", "token");
  const hmac = await secretValue(ns, "hello-webhook", "hmacSecret");
  assert.match(token, /^dagu_wh_/);
  assert.equal(c.webhooks[0]!.tokenDigests[0]!.digest, sha256Hex(token));
  assert.equal(c.webhooks[0]!.hmacSecrets[0]!.secret, hmac);
  assert.equal(c.token?.keys.length, 1);

  // The DaguAuth may have published once before its users existed (it was created first).
  await eventually("the DaguAuth's status counts 3 users", async () => (await get(ns, "daguauths", "dagu")).status?.users === 3 || undefined);
  const owned = async (kind: "ServiceAccount" | "Role" | "RoleBinding") => {
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const o = kind === "ServiceAccount" ? await core.readNamespacedServiceAccount({ name: "dagu-sidecar", namespace: ns }) : kind === "Role" ? await rbac.readNamespacedRole({ name: "dagu-sidecar", namespace: ns }) : await rbac.readNamespacedRoleBinding({ name: "dagu-sidecar", namespace: ns });
    assert.equal(o.metadata?.ownerReferences?.[0]?.kind, "DaguAuth", `${kind} is owned by the DaguAuth`);
    return o;
  };
  await owned("ServiceAccount");
  const role = (await owned("Role")) as k8s.V1Role;
  assert.ok(role.rules?.every((r) => (r.resourceNames ?? []).length > 0), "every rule of the sidecar's Role names its Secrets");
  await owned("RoleBinding");
  await core.readNamespacedSecret({ name: "dagu-password-changes", namespace: ns });

  // No secret material in the operator's logs.
  const logs = op.logs.join("\n");
  for (const planted of ["admin-password-1", "alice-password-1", bobPassword, apiKey, token, hmac, byName.get("alice")!.passwordHash!, c.token!.keys[0]!.secret]) {
    assert.ok(!logs.includes(planted), "a secret value appears in the operator's logs");
  }
  assert.ok(logs.includes("credentials written"), "the logs were captured");
});

test("a changed password Secret gives a new hash, and the old password stops verifying", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguusers", "alice");
  const before = (await credentials(ns, "dagu")).users.find((u) => u.username === "alice")!;
  await setSecret(ns, "alice-pw", { password: "alice-password-2" });
  const after = (await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.username === "alice")!.passwordHash !== before.passwordHash, "alice's new hash")).users.find((u) => u.username === "alice")!;
  assert.ok(await argon2.verify(after.passwordHash!, "alice-password-2"));
  assert.ok(!(await argon2.verify(after.passwordHash!, "alice-password-1")));
  assert.ok(after.passwordChangedAt > before.passwordChangedAt, "passwordChangedAt advances, so older tokens die");
});

test("a bad reference is explained in status and heals when fixed", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  await create(ns, "daguusers", "DaguUser", "carol", { authRef: { name: "dagu" }, username: "carol", role: "viewer", password: { secretRef: { name: "carol-pw", key: "password" } } });
  const missing = await waitReady(ns, "daguusers", "carol", "SecretNotFound", "False");
  assert.match(ready(missing)!.message, /Secret carol-pw/);
  await secret(ns, "carol-pw", { pw: "short" });
  await waitReady(ns, "daguusers", "carol", "SecretKeyNotFound", "False");
  await setSecret(ns, "carol-pw", { password: "short" });
  await waitReady(ns, "daguusers", "carol", "PasswordTooShort", "False");
  await setSecret(ns, "carol-pw", { password: "long-enough-now" });
  await waitReady(ns, "daguusers", "carol", "Materialized");
  await waitCredentials(ns, "dagu", (d) => d.users.some((u) => u.username === "carol"), "carol present");

  await create(ns, "daguusers", "DaguUser", "orphan", { authRef: { name: "nope" }, username: "orphan", role: "viewer", password: { generate: { secretName: "orphan-pw" } } });
  await waitReady(ns, "daguusers", "orphan", "DaguAuthNotFound", "False");
});

test("disabling and deleting resources removes their credentials in one reconcile; consumer Secrets are collected", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguapikeys", "ci");
  await patchSpec(ns, "daguusers", "alice", { disabled: true });
  await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.username === "alice")?.disabled === true, "alice disabled");
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguusers", name: "alice" });
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguapikeys", name: "ci" });
  await waitCredentials(ns, "dagu", (d) => !d.users.some((u) => u.username === "alice") && d.apiKeys.length === 0, "alice and the key gone");
  await eventually("the consumer Secret is garbage-collected", async () => (await core.readNamespacedSecret({ name: "ci-api-key", namespace: ns }).then(() => false, () => true)) || undefined, 90_000); // kube-controller-manager's GC: slower while it resyncs after CRDs are installed
});

test("deleted and at once created again under the same name: only the new user and key hold credentials", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguusers", "alice");
  await waitReady(ns, "daguapikeys", "ci");
  const oldAlice = (await get(ns, "daguusers", "alice")).metadata.uid;
  const oldKey = await secretValue(ns, "ci-api-key", "apiKey");
  // As `kubectl replace --force` does: the delete and the create land before the operator looks.
  const aliceSpec = { authRef: { name: "dagu" }, username: "alice", role: "developer", password: { secretRef: { name: "alice-pw", key: "password" } } };
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguusers", name: "alice" });
  await create(ns, "daguusers", "DaguUser", "alice", aliceSpec);
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguapikeys", name: "ci" });
  await create(ns, "daguapikeys", "DaguApiKey", "ci", { authRef: { name: "dagu" }, role: "operator", secretName: "ci-api-key-2" });
  const newAlice = (await get(ns, "daguusers", "alice")).metadata.uid;
  assert.notEqual(newAlice, oldAlice);
  await waitReady(ns, "daguusers", "alice", "Materialized");
  await waitReady(ns, "daguapikeys", "ci");
  const newKey = await secretValue(ns, "ci-api-key-2", "apiKey");
  const c = await waitCredentials(ns, "dagu", (d) => d.apiKeys.some((k) => k.digest === sha256Hex(newKey)) && d.users.some((u) => u.id === newAlice), "the new alice and key");
  assert.deepEqual(c.users.filter((u) => u.username === "alice").map((u) => u.id), [newAlice], "the deleted alice is gone");
  assert.ok(!c.apiKeys.some((k) => k.digest === sha256Hex(oldKey)), "the deleted key no longer verifies");
  assert.equal(c.apiKeys.length, 1);
});

test("basic mode: one hashed credential; DaguUsers pointing at it are refused and do not hold it back, also after a switch from builtin", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await secret(ns, "ops-pw", { password: "ops-password-1" });
  await secret(ns, "dave-pw", { password: "dave-password-1" });
  await create(ns, "daguauths", "DaguAuth", "plain", { mode: "basic", basic: { username: "ops", passwordSecretRef: { name: "ops-pw", key: "password" } } });
  await create(ns, "daguusers", "DaguUser", "dave", { authRef: { name: "plain" }, username: "dave", role: "viewer", password: { secretRef: { name: "dave-pw", key: "password" } } });
  const dave = await waitReady(ns, "daguusers", "dave", "DaguAuthNotBuiltin", "False");
  assert.match(ready(dave)!.message, /basic mode/);
  await waitReady(ns, "daguauths", "plain", "Materialized");
  const c = await waitCredentials(ns, "plain", (d) => d.basic !== undefined, "the basic credential");
  assert.equal(c.mode, "basic");
  assert.equal(c.basic!.username, "ops");
  assert.ok(await argon2.verify(c.basic!.passwordHash, "ops-password-1"));
  assert.equal(c.users.length, 0);

  await builtinSetup(ns);
  await waitReady(ns, "daguauths", "dagu", "Materialized");
  await patchSpec(ns, "daguauths", "dagu", { mode: "basic", builtin: null, basic: { username: "ops", passwordSecretRef: { name: "ops-pw", key: "password" } } });
  const switched = await waitCredentials(ns, "dagu", (d) => d.mode === "basic", "dagu switched to basic");
  assert.equal(switched.users.length, 0);
  assert.equal(switched.apiKeys.length, 0);
  await waitReady(ns, "daguauths", "dagu", "Materialized");
  await waitReady(ns, "daguusers", "alice", "DaguAuthNotBuiltin", "False");
});

test("a TLS Secret of your own: a missing one is explained in status, and its creation heals it", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await create(ns, "daguauths", "DaguAuth", "own-tls", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } }, tls: { secretName: "my-tls" } });
  const missing = await waitReady(ns, "daguauths", "own-tls", "SecretNotFound", "False");
  assert.match(ready(missing)!.message, /my-tls \(spec\.tls\.secretName\)/);
  await credentials(ns, "own-tls"); // the credentials are written all the same
  await secret(ns, "my-tls", { "tls.crt": "-----BEGIN CERTIFICATE-----", "tls.key": "-----BEGIN PRIVATE KEY-----" });
  const healed = await waitReady(ns, "daguauths", "own-tls", "Materialized");
  assert.equal(healed.status?.tlsSecretName, "my-tls");
});

test("a duplicate username is refused in status, deterministically", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguusers", "alice");
  await create(ns, "daguusers", "DaguUser", "alice-again", { authRef: { name: "dagu" }, username: "alice", role: "admin", password: { generate: { secretName: "alice-again-pw" } } });
  const dup = await waitReady(ns, "daguusers", "alice-again", "DuplicateUsername", "False");
  assert.match(ready(dup)!.message, /DaguUser alice/);
  await create(ns, "daguusers", "DaguUser", "admin-clash", { authRef: { name: "dagu" }, username: "admin", role: "viewer", password: { generate: { secretName: "admin-clash-pw" } } });
  await waitReady(ns, "daguusers", "admin-clash", "DuplicateUsername", "False");
  const c = await credentials(ns, "dagu");
  assert.equal(c.users.filter((u) => u.username === "alice").length, 1);
  assert.equal(c.users.find((u) => u.username === "alice")?.role, "developer", "the older resource keeps the username");
});

test("API key rotation keeps the previous key valid for the overlap", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguapikeys", "ci");
  const first = await secretValue(ns, "ci-api-key", "apiKey");
  await patchSpec(ns, "daguapikeys", "ci", { rotation: { generation: 1, overlap: "1h" } });
  const c = await waitCredentials(ns, "dagu", (d) => d.apiKeys.length === 2, "two keys during the overlap");
  const second = await secretValue(ns, "ci-api-key", "apiKey");
  assert.notEqual(first, second);
  const old = c.apiKeys.find((k) => k.digest === sha256Hex(first));
  const cur = c.apiKeys.find((k) => k.digest === sha256Hex(second));
  assert.ok(old?.notAfter, "the old key carries its end of overlap");
  assert.ok(cur && !cur.notAfter);
  const status = await waitReady(ns, "daguapikeys", "ci");
  assert.equal(status.status?.rotationGeneration, 1);
});

test("transitions in time and in Git: an overlap ends, a key expires, signing keys rotate, a webhook's DAG is claimed twice, a DaguAuth is deleted", async (t) => {
  const ns = await testNamespace(t, "op");
  const op = await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguwebhooks", "hello");
  const first = await credentials(ns, "dagu");
  const oldToken = await secretValue(ns, "hello-webhook", "token");

  // A webhook rotated with a 3 s overlap: both tokens, then only the new one, without any other change.
  await patchSpec(ns, "daguwebhooks", "hello", { rotation: { generation: 1, overlap: "3s" } });
  const during = await waitCredentials(ns, "dagu", (d) => d.webhooks[0]!.tokenDigests.length === 2, "two tokens during the overlap");
  const newToken = await secretValue(ns, "hello-webhook", "token");
  assert.notEqual(newToken, oldToken);
  assert.deepEqual(during.webhooks[0]!.tokenDigests.map((d) => d.digest).sort(), [sha256Hex(oldToken), sha256Hex(newToken)].sort());
  const after = await waitCredentials(ns, "dagu", (d) => d.webhooks[0]!.tokenDigests.length === 1, "the old token gone after the overlap");
  assert.equal(after.webhooks[0]!.tokenDigests[0]!.digest, sha256Hex(newToken));

  // A replay window declared in Git reaches the sidecar's credentials in seconds.
  await patchSpec(ns, "daguwebhooks", "hello", { auth: { mode: "tokenAndHmac", hmacEnforcement: "strict", timestampWindow: "5m" } });
  await waitCredentials(ns, "dagu", (d) => d.webhooks[0]!.timestampWindowSeconds === 300, "the webhook's timestamp window");

  // An API key that expires in a few seconds leaves the credentials by itself, and says so.
  const expiresAt = new Date(Date.now() + 4000).toISOString();
  await create(ns, "daguapikeys", "DaguApiKey", "temp", { authRef: { name: "dagu" }, role: "viewer", secretName: "temp-key", expiresAt });
  await waitCredentials(ns, "dagu", (d) => d.apiKeys.some((k) => k.name === "temp" && k.expiresAt !== undefined), "the temporary key");
  await waitCredentials(ns, "dagu", (d) => !d.apiKeys.some((k) => k.name === "temp"), "the expired key gone");
  await waitReady(ns, "daguapikeys", "temp", "Expired", "False");

  // The signing key rotates with overlap: the new one signs, the old one still verifies.
  await patchSpec(ns, "daguauths", "dagu", { builtin: { token: { rotation: { generation: 1, overlap: "1h" } } } });
  const rotated = await waitCredentials(ns, "dagu", (d) => d.token!.keys.length === 2, "two signing keys");
  assert.notEqual(rotated.token!.activeKid, first.token!.activeKid);
  assert.ok(rotated.token!.keys.find((k) => k.kid === first.token!.activeKid)?.notAfter, "the old key ends after the overlap");

  // A second webhook for the same DAG is refused; deleting the first hands the DAG over.
  await create(ns, "daguwebhooks", "DaguWebhook", "hello-2", { authRef: { name: "dagu" }, dagName: "hello", auth: { mode: "token" }, secretName: "hello-2-webhook" });
  const refused = await waitReady(ns, "daguwebhooks", "hello-2", "DuplicateDagName", "False");
  assert.match(ready(refused)!.message, /DaguWebhook hello/);
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguwebhooks", name: "hello" });
  await waitReady(ns, "daguwebhooks", "hello-2", "Materialized");
  const secondToken = await secretValue(ns, "hello-2-webhook", "token");
  const handed = await waitCredentials(ns, "dagu", (d) => d.webhooks.length === 1 && d.webhooks[0]!.tokenDigests[0]!.digest === sha256Hex(secondToken), "hello-2 holds the DAG");
  assert.ok(!handed.webhooks.some((w) => w.tokenDigests.some((d) => d.digest === sha256Hex(newToken))), "the deleted webhook's token is revoked");

  // No secret of these rotations, expiries and handovers in the operator's logs.
  const planted = [oldToken, newToken, secondToken, await secretValue(ns, "hello-2-webhook", "token"), await secretValue(ns, "temp-key", "apiKey"), ...rotated.token!.keys.map((k) => k.secret), ...rotated.users.flatMap((u) => u.passwordHash ?? [])];
  const logs = op.logs.join("\n");
  assert.ok(logs.includes("credentials written"), "the logs were captured");
  for (const value of planted) assert.ok(!logs.includes(value), "a secret value appears in the operator's logs");

  // Deleting the DaguAuth: its children say so, and what it owned is collected.
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguauths", name: "dagu" });
  await waitReady(ns, "daguusers", "alice", "DaguAuthNotFound", "False");
  await eventually("the credentials Secret is garbage-collected", async () => (await core.readNamespacedSecret({ name: "dagu-credentials", namespace: ns }).then(() => false, () => true)) || undefined, 90_000);
});

test("a self-service password change is merged: the newer of it and the source wins", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  const alice = await waitReady(ns, "daguusers", "alice");
  const uid = alice.metadata.uid!;
  const selfHash = await argon2.hash("self-service-pw", { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
  const changedAt = new Date(Date.now() + 1000).toISOString().replace("Z", "000000Z").replace(/\.(\d{3})000000Z$/, ".$1000000Z");
  await core.patchNamespacedSecret(
    { name: "dagu-password-changes", namespace: ns, body: { stringData: { "password-changes.json": JSON.stringify({ [uid]: { passwordHash: selfHash, changedAt } }) } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
  const merged = await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.id === uid)?.passwordHash === selfHash, "the self-service hash in force");
  assert.equal(merged.users.find((u) => u.id === uid)?.passwordChangedAt, changedAt);
  await new Promise((r) => setTimeout(r, 1100));
  await setSecret(ns, "alice-pw", { password: "alice-password-3" });
  const back = await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.id === uid)?.passwordHash !== selfHash, "the newer source password wins");
  const user = back.users.find((u) => u.id === uid)!;
  assert.ok(await argon2.verify(user.passwordHash!, "alice-password-3"));
  assert.ok(user.passwordChangedAt > changedAt);
});

test("a damaged password-changes Secret keeps the self-service changes read before, and says so", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await builtinSetup(ns);
  const alice = await waitReady(ns, "daguusers", "alice");
  const uid = alice.metadata.uid!;
  const selfHash = await argon2.hash("self-service-pw", { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
  const changedAt = new Date(Date.now() + 1000).toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const changes = (text: string) => core.patchNamespacedSecret({ name: "dagu-password-changes", namespace: ns, body: { stringData: { "password-changes.json": text } } }, merge);
  await changes(JSON.stringify({ [uid]: { passwordHash: selfHash, changedAt } }));
  await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.id === uid)?.passwordHash === selfHash, "the self-service hash in force");

  await changes("{ not json");
  const said = await waitReady(ns, "daguauths", "dagu", "PasswordChangesInvalid", "False");
  assert.match(ready(said)!.message, /dagu-password-changes is not valid/);
  // Any later reconcile (here: a new user) still publishes alice's changed password, not the one in Git.
  await create(ns, "daguusers", "DaguUser", "erin", { authRef: { name: "dagu" }, username: "erin", role: "viewer", password: { generate: { secretName: "erin-pw" } } });
  const after = await waitCredentials(ns, "dagu", (d) => d.users.some((u) => u.username === "erin"), "erin added");
  assert.equal(after.users.find((u) => u.id === uid)?.passwordHash, selfHash, "the changed password did not revert");

  await changes(JSON.stringify({ [uid]: { passwordHash: selfHash, changedAt } }));
  await waitReady(ns, "daguauths", "dagu", "Materialized");
});

async function restartHashesAndWritesNothing(t: TestContext, options: { maxInlineBytes?: number }): Promise<string> {
  const ns = await testNamespace(t, "op");
  const first = await startTestOperator({ name: "first", ...options });
  await builtinSetup(ns);
  for (const [plural, name] of [["daguauths", "dagu"], ["daguusers", "alice"], ["daguusers", "bob"], ["daguapikeys", "ci"], ["daguwebhooks", "hello"]] as const) await waitReady(ns, plural, name);
  await new Promise((r) => setTimeout(r, 1500)); // let trailing reconciles settle
  await first.stop();
  const snapshot = async () => {
    const secrets = await core.listNamespacedSecret({ namespace: ns });
    const objs = await Promise.all(["daguauths", "daguusers", "daguapikeys", "daguwebhooks"].map((p) => custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: p }) as Promise<{ items: Obj[] }>));
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const sidecar = [(await core.readNamespacedServiceAccount({ name: "dagu-sidecar", namespace: ns })).metadata!, (await rbac.readNamespacedRole({ name: "dagu-sidecar", namespace: ns })).metadata!, (await rbac.readNamespacedRoleBinding({ name: "dagu-sidecar", namespace: ns })).metadata!];
    return new Map([
      ...secrets.items.map((s) => [`secret/${s.metadata!.name}`, s.metadata!.resourceVersion!] as const),
      ...objs.flatMap((l) => l.items.map((o) => [`cr/${o.metadata.name}`, o.metadata.resourceVersion!] as const)),
      ...sidecar.map((m, i) => [`sidecar/${i}`, m.resourceVersion!] as const),
    ]);
  };
  const before = await snapshot();
  const second = await startTestOperator({ name: "second", ...options });
  t.after(() => second.stop());
  await eventually("the second operator leads and settles", async () => second.isLeader || undefined);
  await new Promise((r) => setTimeout(r, 3000));
  const after = await snapshot();
  assert.deepEqual(after, before, "no Secret, resource or sidecar object was written by the restarted operator");
  assert.equal(await hashCount(second), 0, "no argon2 hash after the restart");
  assert.ok(await hashCount(first) >= 3, "the first operator did hash (the metric works)");
  const reconciles = (await second.metrics.reconcileTotal.get()).values.filter((v) => v.labels.kind === "DaguUser").reduce((a, v) => a + v.value, 0);
  assert.ok(reconciles >= 2, "the restarted operator did reconcile the users");
  return ns;
}

test("a restart hashes nothing and writes nothing", async (t) => {
  const ns = await restartHashesAndWritesNothing(t, {});
  const state = JSON.parse(await secretValue(ns, "dagu-operator-state", "state.json")) as { passwords: Record<string, unknown>; passwordBuckets?: number[] };
  assert.equal(Object.keys(state.passwords).length, 3, "a small state stays in one Secret");
  assert.equal(state.passwordBuckets, undefined);
});

test("past the inline limit the operator state goes into buckets; a restart still hashes and writes nothing", async (t) => {
  const ns = await restartHashesAndWritesNothing(t, { maxInlineBytes: 600 });
  const main = JSON.parse(await secretValue(ns, "dagu-operator-state", "state.json")) as { passwords: Record<string, unknown>; passwordBuckets?: number[] };
  assert.deepEqual(main.passwords, {}, "no records left in the main Secret");
  assert.ok((main.passwordBuckets?.length ?? 0) >= 1, `the main Secret lists the buckets: ${JSON.stringify(main.passwordBuckets)}`);
  const ids = new Set<string>();
  for (const bucket of main.passwordBuckets!) {
    const records = (JSON.parse(await secretValue(ns, `dagu-operator-state-${bucket}`, "state.json")) as { passwords: Record<string, unknown> }).passwords;
    for (const id of Object.keys(records)) ids.add(id);
  }
  assert.equal(ids.size, 3, "the initial admin, alice and bob, each in one bucket");
  const role = await kc.makeApiClient(k8s.RbacAuthorizationV1Api).readNamespacedRole({ name: "dagu-sidecar", namespace: ns });
  assert.ok(!role.rules?.some((r) => r.resourceNames?.some((n) => n.startsWith("dagu-operator-state"))), "the sidecar may not read the state");
});

test("two replicas: one leads; stopping it hands over", async (t) => {
  const lease = { namespace: OPERATOR_NAMESPACE, name: "test-handover", leaseDurationSeconds: 4, renewDeadlineMs: 3000, retryPeriodMs: 300 };
  const a = await startTestOperator({ name: "a", leaderElection: lease });
  const b = await startTestOperator({ name: "b", leaderElection: lease });
  t.after(async () => {
    await a.stop();
    await b.stop();
  });
  await eventually("one leader", async () => (a.isLeader || b.isLeader) || undefined);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(Number(a.isLeader) + Number(b.isLeader), 1, "exactly one replica leads");
  const [leader, follower] = a.isLeader ? [a, b] : [b, a];
  const stoppedAt = Date.now();
  await leader.stop();
  await eventually("the follower takes over", async () => follower.isLeader || undefined, 10_000, 50);
  assert.ok(Date.now() - stoppedAt < 3000, `a graceful stop hands over at once (took ${Date.now() - stoppedAt} ms)`);
});

async function installCertManagerCrds(): Promise<void> {
  const applied = await kubectl(["apply", "--server-side", "-f", await certManagerCrdsDir()]);
  assert.equal(applied.code, 0, applied.stderr);
  await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io"]);
}

test("TLS from cert-manager: a Certificate owned by the DaguAuth, and the sidecar may read its Secret", async (t) => {
  await installCertManagerCrds();
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await create(ns, "daguauths", "DaguAuth", "secure", {
    builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } },
    tls: { issuerRef: { name: "ca-issuer" }, dnsNames: ["dagu.example.com"] },
  });
  const auth = await waitReady(ns, "daguauths", "secure", "Materialized");
  assert.equal(auth.status?.tlsSecretName, "secure-tls");
  const cert = (await custom.getNamespacedCustomObject({ group: "cert-manager.io", version: "v1", namespace: ns, plural: "certificates", name: "secure-tls" })) as { metadata: { ownerReferences?: { kind: string }[] }; spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } } };
  assert.equal(cert.spec.secretName, "secure-tls");
  assert.deepEqual(cert.spec.dnsNames, ["dagu.example.com"]);
  assert.deepEqual([cert.spec.issuerRef.name, cert.spec.issuerRef.kind], ["ca-issuer", "Issuer"]);
  assert.equal(cert.metadata.ownerReferences?.[0]?.kind, "DaguAuth");
  const role = await kc.makeApiClient(k8s.RbacAuthorizationV1Api).readNamespacedRole({ name: "secure-sidecar", namespace: ns });
  assert.ok(role.rules?.some((r) => r.resourceNames?.includes("secure-tls") && !r.verbs.includes("patch")), "read-only access to the TLS Secret");
});

test("a deleted or edited sidecar object or Certificate comes back without a restart; nothing else is rewritten", async (t) => {
  await installCertManagerCrds();
  const ns = await testNamespace(t, "op");
  // Resyncs every second: the quiet periods below include several, and each reconciles the DaguAuth.
  const op = await withOperator(t, undefined, { resyncPeriodMs: 1000 });
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await create(ns, "daguauths", "DaguAuth", "owner", {
    builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } },
    tls: { issuerRef: { name: "ca-issuer" }, dnsNames: ["dagu.example.com"] },
  });
  await waitReady(ns, "daguauths", "owner", "Materialized");

  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const cert = { group: "cert-manager.io", version: "v1", namespace: ns, plural: "certificates", name: "owner-tls" };
  type Meta = { metadata?: { uid?: string; resourceVersion?: string } };
  const owned: Record<string, { read: () => Promise<Meta>; remove: () => Promise<unknown> }> = {
    ServiceAccount: { read: () => core.readNamespacedServiceAccount({ name: "owner-sidecar", namespace: ns }), remove: () => core.deleteNamespacedServiceAccount({ name: "owner-sidecar", namespace: ns }) },
    Role: { read: () => rbac.readNamespacedRole({ name: "owner-sidecar", namespace: ns }), remove: () => rbac.deleteNamespacedRole({ name: "owner-sidecar", namespace: ns }) },
    RoleBinding: { read: () => rbac.readNamespacedRoleBinding({ name: "owner-sidecar", namespace: ns }), remove: () => rbac.deleteNamespacedRoleBinding({ name: "owner-sidecar", namespace: ns }) },
    Certificate: { read: () => custom.getNamespacedCustomObject(cert) as Promise<Meta>, remove: () => custom.deleteNamespacedCustomObject(cert) },
  };
  const versions = async () => Object.fromEntries(await Promise.all(Object.entries(owned).map(async ([kind, o]) => [kind, (await o.read()).metadata?.resourceVersion] as const)));
  const daguAuthReconciles = async () => (await op.metrics.reconcileTotal.get()).values.filter((v) => v.labels.kind === "DaguAuth").reduce((a, v) => a + v.value, 0);
  const quietly = async (what: string) => {
    const before = await versions();
    const reconciles = await daguAuthReconciles();
    await new Promise((r) => setTimeout(r, 3500));
    assert.ok((await daguAuthReconciles()) >= reconciles + 2, "the DaguAuth was reconciled meanwhile (resyncs)");
    assert.deepEqual(await versions(), before, `nothing was rewritten ${what}`);
  };
  const role = await rbac.readNamespacedRole({ name: "owner-sidecar", namespace: ns });
  const certSpec = ((await custom.getNamespacedCustomObject(cert)) as { spec: unknown }).spec;

  await quietly("while nothing changed");
  // Changes by others that leave what the operator applied in place: a label of
  // their own, a status write as cert-manager's, an unrelated Role.
  await core.patchNamespacedServiceAccount({ name: "owner-sidecar", namespace: ns, body: { metadata: { labels: { team: "platform" } } } }, merge);
  await custom.patchNamespacedCustomObjectStatus({ ...cert, body: { status: { conditions: [{ type: "Ready", status: "False", reason: "Pending", message: "issuing" }] } } }, merge);
  await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "unrelated" }, rules: [] } });
  await quietly("after changes that keep what the operator applied");

  for (const [kind, o] of Object.entries(owned)) {
    const { uid } = (await o.read()).metadata!;
    await o.remove();
    await eventually(`the deleted ${kind} is back`, async () => {
      const back = await o.read().catch(() => undefined);
      return back?.metadata?.uid && back.metadata.uid !== uid ? back : undefined;
    });
  }
  assert.deepEqual((await rbac.readNamespacedRole({ name: "owner-sidecar", namespace: ns })).rules, role.rules);

  // Edits of what the operator applied are undone.
  await rbac.patchNamespacedRole({ name: "owner-sidecar", namespace: ns, body: { rules: [{ apiGroups: [""], resources: ["secrets"], verbs: ["get", "list"] }] } }, merge);
  await eventually("the Role's rules are restored", async () => deepEqualJson((await rbac.readNamespacedRole({ name: "owner-sidecar", namespace: ns })).rules, role.rules) || undefined);
  await rbac.patchNamespacedRoleBinding({ name: "owner-sidecar", namespace: ns, body: { subjects: [{ kind: "ServiceAccount", name: "default", namespace: ns }] } }, merge);
  await eventually("the RoleBinding's subjects are restored", async () => (await rbac.readNamespacedRoleBinding({ name: "owner-sidecar", namespace: ns })).subjects?.[0]?.name === "owner-sidecar" || undefined);
  await custom.patchNamespacedCustomObject({ ...cert, body: { spec: { dnsNames: ["evil.example.com"] } } }, merge);
  await eventually("the Certificate's spec is restored", async () => deepEqualJson(((await custom.getNamespacedCustomObject(cert)) as { spec: unknown }).spec, certSpec) || undefined);
  await quietly("once restored");
  assert.ok(op.isLeader, "the same operator did it all, without a restart");
});

test("what a DaguAuth stops using is deleted: a renamed sidecar ServiceAccount, the Certificate of a removed issuer", async (t) => {
  await installCertManagerCrds();
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  const builtin = { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } };
  await create(ns, "daguauths", "DaguAuth", "prune", { builtin, tls: { issuerRef: { name: "ca-issuer" }, dnsNames: ["dagu.example.com"] } });
  await waitReady(ns, "daguauths", "prune", "Materialized");
  const cert = { group: "cert-manager.io", version: "v1", namespace: ns, plural: "certificates", name: "prune-tls" };
  await custom.getNamespacedCustomObject(cert);
  await core.readNamespacedServiceAccount({ name: "prune-sidecar", namespace: ns });
  // Someone else's ServiceAccount with a similar name and even our label, but no owner reference: never touched.
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "bystander", labels: { "app.kubernetes.io/managed-by": "dagu-auth-operator", "auth.dagu.dev/auth": "prune" } } } });

  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  await custom.patchNamespacedCustomObject({ group: "auth.dagu.dev", version: "v1alpha1", namespace: ns, plural: "daguauths", name: "prune", body: { spec: { tls: null, sidecar: { serviceAccountName: "dagu-sidecar" } } } }, merge);
  await eventually("the new ServiceAccount exists and the RoleBinding names it", async () => {
    await core.readNamespacedServiceAccount({ name: "dagu-sidecar", namespace: ns }).catch(() => undefined);
    const binding = await kc.makeApiClient(k8s.RbacAuthorizationV1Api).readNamespacedRoleBinding({ name: "prune-sidecar", namespace: ns });
    return binding.subjects?.[0]?.name === "dagu-sidecar" || undefined;
  });
  await eventually("the old ServiceAccount is deleted", async () => (await core.readNamespacedServiceAccount({ name: "prune-sidecar", namespace: ns }).then(() => false, () => true)) || undefined);
  await eventually("the Certificate is deleted", async () => (await custom.getNamespacedCustomObject(cert).then(() => false, () => true)) || undefined);
  await core.readNamespacedServiceAccount({ name: "bystander", namespace: ns }); // still there
  await core.readNamespacedServiceAccount({ name: "dagu-sidecar", namespace: ns });
  const events = await eventually("Pruned events", async () => {
    const list = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    const pruned = list.items.filter((e) => e.reason === "Pruned").map((e) => e.note ?? "");
    return pruned.length >= 2 ? pruned : undefined;
  });
  assert.ok(events.some((n) => n.includes("ServiceAccount/prune-sidecar")) && events.some((n) => n.includes("Certificate/prune-tls")), events.join("; "));
  await waitReady(ns, "daguauths", "prune", "Materialized");
});

test("someone else's ServiceAccount, Role or Secret under a name the operator would use is reported, never adopted or deleted", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t);
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  const builtin = { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } };
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  const absent = (read: () => Promise<unknown>) => read().then(() => false, (err: { code?: number }) => err.code === 404);
  const untouched = async (what: string, read: () => Promise<{ metadata?: { resourceVersion?: string; ownerReferences?: unknown[] } }>, resourceVersion: string | undefined) => {
    const now = await read();
    assert.equal(now.metadata?.resourceVersion, resourceVersion, `${what} was not written`);
    assert.deepEqual(now.metadata?.ownerReferences ?? [], [], `${what} was not adopted`);
  };

  // Dagu's own chart made a ServiceAccount `dagu`; a DaguAuth is pointed at it.
  const daguSa = await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "dagu", labels: { "app.kubernetes.io/name": "dagu" } } } });
  const readDaguSa = () => core.readNamespacedServiceAccount({ name: "dagu", namespace: ns });
  await create(ns, "daguauths", "DaguAuth", "shared", { builtin, sidecar: { serviceAccountName: "dagu" } });
  const conflicted = await waitReady(ns, "daguauths", "shared", "OwnedObjectConflict", "False");
  assert.match(ready(conflicted)!.message, /ServiceAccount dagu \(spec\.sidecar\.serviceAccountName\) exists and is not owned by DaguAuth shared/);
  await untouched("the foreign ServiceAccount", readDaguSa, daguSa.metadata!.resourceVersion);
  assert.ok(await absent(() => rbac.readNamespacedRoleBinding({ name: "shared-sidecar", namespace: ns })), "no RoleBinding grants the credentials to someone else's ServiceAccount");

  // Its own name: it works; pointed at the foreign one again: reported, and its own is kept and still bound.
  await patchSpec(ns, "daguauths", "shared", { sidecar: null });
  await waitReady(ns, "daguauths", "shared", "Materialized");
  await patchSpec(ns, "daguauths", "shared", { sidecar: { serviceAccountName: "dagu" } });
  await waitReady(ns, "daguauths", "shared", "OwnedObjectConflict", "False");
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await rbac.readNamespacedRoleBinding({ name: "shared-sidecar", namespace: ns })).subjects?.[0]?.name, "shared-sidecar", "the binding still names its own ServiceAccount");
  await core.readNamespacedServiceAccount({ name: "shared-sidecar", namespace: ns }); // not pruned while in conflict
  await untouched("the foreign ServiceAccount", readDaguSa, daguSa.metadata!.resourceVersion);
  // Deleted: its own objects go with it, the foreign one stays.
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguauths", name: "shared" });
  await eventually("its own ServiceAccount is garbage-collected", async () => (await absent(() => core.readNamespacedServiceAccount({ name: "shared-sidecar", namespace: ns }))) || undefined, 90_000);
  await untouched("the foreign ServiceAccount", readDaguSa, daguSa.metadata!.resourceVersion);

  // Someone else's Role under the sidecar's Role name: left alone, and no binding to it.
  const role = await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "third-sidecar" }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }] } });
  await create(ns, "daguauths", "DaguAuth", "third", { builtin });
  assert.match(ready(await waitReady(ns, "daguauths", "third", "OwnedObjectConflict", "False"))!.message, /^Role third-sidecar exists/);
  await untouched("the foreign Role", () => rbac.readNamespacedRole({ name: "third-sidecar", namespace: ns }), role.metadata!.resourceVersion);
  assert.ok(await absent(() => rbac.readNamespacedRoleBinding({ name: "third-sidecar", namespace: ns })), "no RoleBinding to someone else's Role");

  // Someone else's Secret under the credentials' name: nothing is written at all.
  await secret(ns, "other-credentials", { "credentials.json": "not the operator's" });
  const otherCredentials = await core.readNamespacedSecret({ name: "other-credentials", namespace: ns });
  await create(ns, "daguauths", "DaguAuth", "other", { builtin });
  assert.match(ready(await waitReady(ns, "daguauths", "other", "OwnedObjectConflict", "False"))!.message, /^Secret other-credentials exists and is not owned by DaguAuth other/);
  await untouched("the foreign Secret", () => core.readNamespacedSecret({ name: "other-credentials", namespace: ns }), otherCredentials.metadata!.resourceVersion);
  assert.ok(await absent(() => core.readNamespacedSecret({ name: "other-operator-state", namespace: ns })), "no state written");
  // Removed by its owner: the next look (here an annotation; else within 30 s) takes the name.
  await core.deleteNamespacedSecret({ name: "other-credentials", namespace: ns });
  await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguauths", name: "other", body: { metadata: { annotations: { touched: "1" } } } }, merge);
  await waitReady(ns, "daguauths", "other", "Materialized");
  const taken = await core.readNamespacedSecret({ name: "other-credentials", namespace: ns });
  assert.equal(taken.metadata?.ownerReferences?.[0]?.name, "other");
});

test("two installs with different instances never act on the same objects", async (t) => {
  const ns = await testNamespace(t, "op");
  const blueOp = await withOperator(t, "blue", { instance: "blue" });
  const defaultOp = await withOperator(t, "default");
  const blue = { "auth.dagu.dev/instance": "blue" };
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  const createLabelled = (plural: string, kind: string, name: string, labels: Record<string, string>, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name, labels }, spec } });
  const builtin = { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } };
  await createLabelled("daguauths", "DaguAuth", "sky", blue, { builtin });
  await createLabelled("daguapikeys", "DaguApiKey", "sky-ci", blue, { authRef: { name: "sky" }, role: "operator", secretName: "sky-ci-key" });
  await create(ns, "daguauths", "DaguAuth", "plain", { builtin });
  await create(ns, "daguapikeys", "DaguApiKey", "plain-ci", { authRef: { name: "plain" }, role: "operator", secretName: "plain-ci-key" });
  // Across instances a child does not find its DaguAuth: the blue install does not see `plain`.
  await createLabelled("daguapikeys", "DaguApiKey", "crossed", blue, { authRef: { name: "plain" }, role: "viewer", secretName: "crossed-key" });
  for (const [plural, name] of [["daguauths", "sky"], ["daguapikeys", "sky-ci"], ["daguauths", "plain"], ["daguapikeys", "plain-ci"]] as const) await waitReady(ns, plural, name, "Materialized");
  await waitReady(ns, "daguapikeys", "crossed", "DaguAuthNotFound", "False");

  // What each install created carries its owner's instance, or none.
  const instanceOf = async (name: string) => (await core.readNamespacedSecret({ name, namespace: ns })).metadata?.labels?.["auth.dagu.dev/instance"];
  for (const name of ["sky-credentials", "sky-operator-state", "sky-password-changes", "sky-ci-key"]) assert.equal(await instanceOf(name), "blue", name);
  for (const name of ["plain-credentials", "plain-ci-key"]) assert.equal(await instanceOf(name), undefined, name);
  assert.equal((await core.readNamespacedServiceAccount({ name: "sky-sidecar", namespace: ns })).metadata?.labels?.["auth.dagu.dev/instance"], "blue");
  const credentialsOfSky = await credentials(ns, "sky");
  assert.deepEqual(credentialsOfSky.apiKeys.map((k) => k.name), ["sky-ci"]);

  // Each install reconciled only its own: by the resources its logs name.
  const named = (op: { logs: string[] }) => new Set(op.logs.flatMap((l) => [...l.matchAll(/"(?:daguAuth|key)":"([^"]+)"/g)].map((m) => m[1]!)).filter((k) => k.startsWith(`${ns}/`)));
  const mentionedByBlue = named(blueOp);
  const mentionedByDefault = named(defaultOp);
  assert.ok(mentionedByBlue.has(`${ns}/sky`) && mentionedByDefault.has(`${ns}/plain`), `each logged its own: ${[...mentionedByBlue]} / ${[...mentionedByDefault]}`);
  for (const k of mentionedByBlue) assert.ok(!k.endsWith("/plain") && !k.endsWith("/plain-ci"), `the blue install touched ${k}`);
  for (const k of mentionedByDefault) assert.ok(!k.endsWith("/sky") && !k.endsWith("/sky-ci") && !k.endsWith("/crossed"), `the default install touched ${k}`);
  const daguAuthReconciles = async (op: { metrics: { reconcileTotal: { get(): Promise<{ values: { labels: Record<string, unknown>; value: number }[] }> } } }) =>
    (await op.metrics.reconcileTotal.get()).values.filter((v) => v.labels.kind === "DaguAuth").reduce((a, v) => a + v.value, 0);
  assert.ok((await daguAuthReconciles(blueOp)) > 0 && (await daguAuthReconciles(defaultOp)) > 0);
});

test("past the inline limit the credentials are sharded: an index, immutable shards, old generations removed", async (t) => {
  const ns = await testNamespace(t, "op");
  await withOperator(t, undefined, { maxInlineBytes: 3000 });
  await builtinSetup(ns);
  for (let i = 0; i < 4; i++) {
    await create(ns, "daguusers", "DaguUser", `user-${i}`, { authRef: { name: "dagu" }, username: `user-${i}`, role: "viewer", password: { generate: { secretName: `user-${i}-pw` } } });
  }
  await waitReady(ns, "daguusers", "user-3");
  const read = async () => {
    const raw = await secretValue(ns, "dagu-credentials", "credentials.json");
    const index = JSON.parse(raw) as CredentialsIndex & { kind?: string };
    if (index.kind !== "index") {
      const doc = Credentials.parse(JSON.parse(raw));
      return { index: { ...index, generation: doc.generation, shards: [] }, doc };
    }
    const shards = await Promise.all(index.shards.map(async (s) => CredentialsShard.parse(JSON.parse(await secretValue(ns, s.secretName, s.key)))));
    return { index, doc: Credentials.parse(JSON.parse(joinShards(index, shards))) };
  };
  const first = await eventually("a sharded document with 7 users", async () => {
    const r = await read().catch(() => undefined);
    return r && r.doc.users.length === 7 && r.index.shards.length > 0 ? r : undefined;
  });
  assert.ok(first.index.shards.length >= 2, "more than one shard");
  const role = await kc.makeApiClient(k8s.RbacAuthorizationV1Api).readNamespacedRole({ name: "dagu-sidecar", namespace: ns });
  for (const s of first.index.shards) assert.ok(role.rules?.some((r) => r.resourceNames?.includes(s.secretName)), `the sidecar may read ${s.secretName}`);
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguusers", name: "user-0" });
  // Six users fit inline again: the index gives way to the document, and the shards go.
  const second = await eventually("the next generation without user-0", async () => {
    const r = await read().catch(() => undefined);
    return r && r.doc.users.length === 6 ? r : undefined;
  });
  assert.ok(second.index.generation > first.index.generation);
  for (const s of first.index.shards) {
    if (second.index.shards.some((n) => n.secretName === s.secretName)) continue;
    await eventually(`old shard ${s.secretName} removed`, async () => core.readNamespacedSecret({ name: s.secretName, namespace: ns }).then(() => undefined, () => true));
  }
});

test("Events record readiness transitions; the Secret cache holds only owned and referenced Secrets", async (t) => {
  const ns = await testNamespace(t, "op");
  const op = await withOperator(t);
  await builtinSetup(ns);
  await waitReady(ns, "daguusers", "alice");
  await create(ns, "daguusers", "DaguUser", "dave", { authRef: { name: "dagu" }, username: "dave", role: "viewer", password: { secretRef: { name: "dave-pw", key: "password" } } });
  await waitReady(ns, "daguusers", "dave", "SecretNotFound", "False");
  const events = kc.makeApiClient(k8s.EventsV1Api);
  const found = await eventually("Events for alice and dave", async () => {
    const list = await events.listNamespacedEvent({ namespace: ns });
    const of = (name: string, reason: string) => list.items.find((e) => e.regarding?.name === name && e.reason === reason);
    return of("alice", "Materialized") && of("dave", "SecretNotFound") ? list.items : undefined;
  });
  assert.equal(found.find((e) => e.regarding?.name === "dave")?.type, "Warning");

  const cached = async () => (await op.metrics.registry.getSingleMetric("dagu_auth_operator_cached_secrets")!.get()).values.find((v) => v.labels.namespace === ns)?.value ?? 0;
  const before = await cached();
  for (let i = 0; i < 3; i++) await secret(ns, `unrelated-${i}`, { token: "not ours" });
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await cached(), before, "unrelated Secrets are not cached");
  await secret(ns, "dave-pw", { password: "dave-password-1" });
  await waitReady(ns, "daguusers", "dave", "Materialized");
  assert.equal(await cached(), before + 1, "a referenced Secret is cached once referenced");
});

test("Secret bodies are read only by the operator's label or by name; referenced Secrets are followed through metadata", async (t) => {
  const ns = await testNamespace(t, "op");
  const other = await testNamespace(t, "op-unrelated");
  // Every request the operator sends, as it leaves the process.
  const kubeConfig = toKubeConfig(await operatorKubeConfig());
  const requests: { method: string; path: string; accept: string }[] = [];
  const dispatcher = kubeConfig.dispatcher;
  const send = dispatcher.request.bind(dispatcher) as (o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
  Object.assign(dispatcher, {
    request: (o: Dispatcher.RequestOptions) => {
      const headers = (o.headers ?? {}) as Record<string, string>;
      requests.push({ method: o.method, path: o.path, accept: headers.accept ?? "" });
      return send(o);
    },
  });
  const op = await withOperator(t, undefined, { kubeConfig });
  for (let i = 0; i < 5; i++) await secret(other, `helm-release-${i}`, { release: "x".repeat(100 * 1024) });
  await builtinSetup(ns);
  await waitReady(ns, "daguusers", "alice", "Materialized");
  // A change to a referenced Secret arrives through the metadata watch; its new body is read by name.
  const before = (await credentials(ns, "dagu")).users.find((u) => u.username === "alice")!.passwordHash;
  await setSecret(ns, "alice-pw", { password: "alice-password-2" });
  await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.username === "alice")!.passwordHash !== before, "alice's new hash");
  // One referenced before it exists.
  await create(ns, "daguusers", "DaguUser", "dave", { authRef: { name: "dagu" }, username: "dave", role: "viewer", password: { secretRef: { name: "dave-pw", key: "password" } } });
  await waitReady(ns, "daguusers", "dave", "SecretNotFound", "False");
  await secret(ns, "dave-pw", { password: "dave-password-1" });
  await waitReady(ns, "daguusers", "dave", "Materialized");

  const collection = /^\/api\/v1\/(namespaces\/[^/]+\/)?secrets(\?|$)/;
  const lists = requests.filter((r) => r.method === "GET" && collection.test(r.path));
  const bodies = lists.filter((r) => !r.accept.includes("as=PartialObjectMetadata"));
  assert.ok(bodies.length > 0 && lists.length > bodies.length, "both kinds of Secret watches ran");
  for (const r of bodies) assert.match(decodeURIComponent(r.path), /labelSelector=app\.kubernetes\.io\/managed-by=dagu-auth-operator/, `a list or watch of Secret bodies without the operator's label: ${r.path}`);
  const byName = requests.filter((r) => r.method === "GET" && /\/secrets\/[^/?]+$/.test(r.path)).map((r) => r.path);
  assert.ok(byName.some((p) => p.endsWith(`/namespaces/${ns}/secrets/alice-pw`)), "a referenced Secret is read by name");
  assert.ok(!byName.some((p) => p.includes(`/namespaces/${other}/`)), "no unrelated Secret is ever read");
  const cached = async () => (await op.metrics.registry.getSingleMetric("dagu_auth_operator_cached_secrets")!.get()).values.find((v) => v.labels.namespace === other)?.value ?? 0;
  assert.equal(await cached(), 0, "no unrelated Secret body is cached");
});

test("a stop right after the start, before the caches synced, finishes without waiting on itself", async (t) => {
  const ns = await testNamespace(t, "stop");
  await builtinSetup(ns);
  for (const delayMs of [0, 10, 30, 60, 120, 250]) {
    const op = await startTestOperator({ name: `early-stop-${delayMs}` });
    await new Promise((r) => setTimeout(r, delayMs));
    await op.stop();
    // Every step of a stop is bounded (10 s) and logs when it ran late; none may.
    assert.deepEqual(op.logs.filter((l) => l.includes("graceful stop")), [], `stopped ${delayMs} ms after the start`);
  }
});

test("a restart in the middle of reconciling converges without duplicate keys", async (t) => {
  for (const delayMs of [150, 600]) {
    const ns = await testNamespace(t, `mid${delayMs}`);
    const first = await startTestOperator({ name: `mid-${delayMs}` });
    await builtinSetup(ns);
    await new Promise((r) => setTimeout(r, delayMs));
    await first.stop();
    assert.deepEqual(first.logs.filter((l) => l.includes("graceful stop")), [], "every step of the stop finished in time");
    const second = await withOperator(t, `mid-${delayMs}-b`);
    for (const [plural, name] of [["daguauths", "dagu"], ["daguusers", "alice"], ["daguusers", "bob"], ["daguapikeys", "ci"], ["daguwebhooks", "hello"]] as const) await waitReady(ns, plural, name);
    const c = await waitCredentials(ns, "dagu", (d) => d.users.length === 3 && d.apiKeys.length === 1, "converged");
    assert.equal(c.apiKeys[0]!.digest, sha256Hex(await secretValue(ns, "ci-api-key", "apiKey")), "the one key in the credentials is the one in the consumer Secret");
    assert.equal(c.webhooks[0]!.tokenDigests.length, 1);
    assert.equal(c.webhooks[0]!.tokenDigests[0]!.digest, sha256Hex(await secretValue(ns, "hello-webhook", "token")));
    const bob = c.users.find((u) => u.username === "bob")!;
    assert.ok(await argon2.verify(bob.passwordHash!, await secretValue(ns, "bob-password", "password")));
    await second.stop();
  }
});
