// The DaguAuth reconcile as a sequence of owned steps (src/operator/dagu-auth-reconciler.ts), over an
// in-memory API (test/unit/fakes/kube-objects.ts): each step that cannot go on ends the reconcile with
// the condition that says why and writes nothing after it; a reconcile that finds everything in place
// writes nothing and hashes nothing. The same behaviour against a real API server: test/integration/operator.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CREDENTIALS_KEY } from "../../src/api/index.ts";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { secretValue } from "../../src/common/kube/secret-data.ts";
import { ownedSecret } from "../../src/operator/context.ts";
import { CONFLICT_RECHECK_MS, reconcileDaguAuth } from "../../src/operator/dagu-auth-reconciler.ts";
import type { FakeKube } from "./fakes/kube-objects.ts";
import { fakeOperator } from "./fakes/operator-context.ts";

const NS = "ns";
const basicSpec = { mode: "basic", basic: { username: "admin", passwordSecretRef: { name: "basic", key: "password" } } };
const daguAuth = (spec: unknown): KubeObject => ({ apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", metadata: { name: "dagu", namespace: NS, uid: "auth-uid", generation: 1 }, spec });
const passwordSecret: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "basic", namespace: NS }, data: { password: Buffer.from("a-long-enough-password").toString("base64") } };

function operator(auth: KubeObject, options: { users?: KubeObject[]; maxInlineBytes?: number } = {}) {
  const op = fakeOperator({ auths: [auth], ...options });
  return { ...op, reconcile: () => reconcileDaguAuth(op.ctx, `${NS}/dagu`) };
}

const generationOf = (kube: FakeKube) => (JSON.parse(secretValue(kube.secret(NS, "dagu-credentials"), CREDENTIALS_KEY)!) as { generation: number }).generation;

test("everything in place: state, credentials, the sidecar's objects and Secrets, Ready; the next reconcile writes and hashes nothing", async () => {
  const op = operator(daguAuth(basicSpec));
  op.kube.seed(passwordSecret);
  assert.equal(await op.reconcile(), undefined);
  assert.deepEqual(op.kube.writes, [
    "create Secret/dagu-operator-state",
    "update Secret/dagu-operator-state", // the basic user's fingerprint and hash
    "apply Secret/dagu-credentials",
    "apply ServiceAccount/dagu-sidecar",
    "apply Role/dagu-sidecar",
    "apply RoleBinding/dagu-sidecar",
    "create Secret/dagu-password-changes",
    "create Secret/dagu-login-throttle",
    "create Secret/dagu-sso-users",
  ]);
  assert.equal(op.hashes(), 1);
  assert.equal(generationOf(op.kube), 1);
  assert.equal(op.ready()?.status, "True");
  assert.equal(op.ready()?.reason, "Materialized");
  assert.deepEqual(op.events, ["Normal Materialized"]);

  const writes = op.kube.writes.length;
  const statuses = op.kube.statuses.length;
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.kube.writes.length, writes, `nothing written again: ${op.kube.writes.slice(writes).join(", ")}`);
  assert.equal(op.kube.statuses.length, statuses, "the status is what it was");
  assert.equal(op.hashes(), 1, "nothing hashed again");
});

test("an invalid spec stops at once: InvalidSpec, nothing written", async () => {
  const op = operator(daguAuth({ mode: "nonsense" }));
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.ready()?.reason, "InvalidSpec");
  assert.deepEqual(op.kube.writes, []);
});

test("a Secret of the DaguAuth's held by someone else: OwnedObjectConflict, looked at again later, nothing written", async () => {
  const op = operator(daguAuth(basicSpec));
  op.kube.seed(passwordSecret);
  op.kube.seed({ apiVersion: "v1", kind: "Secret", metadata: { name: "dagu-credentials", namespace: NS }, data: {} });
  assert.deepEqual(await op.reconcile(), { requeueAfter: CONFLICT_RECHECK_MS });
  assert.equal(op.ready()?.reason, "OwnedObjectConflict");
  assert.match(op.ready()!.message, /Secret dagu-credentials exists and is not owned by DaguAuth dagu/);
  assert.deepEqual(op.kube.writes, []);
});

test("an operator state that cannot be read: StateInvalid, nothing written, nothing hashed", async () => {
  const auth = daguAuth(basicSpec);
  const op = operator(auth);
  op.kube.seed(passwordSecret);
  op.kube.seed(ownedSecret(auth, "dagu-operator-state", { "state.json": "not json" }, { authName: "dagu" }));
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.ready()?.reason, "StateInvalid");
  assert.match(op.ready()!.message, /^Secret dagu-operator-state: .*delete it to start over/);
  assert.deepEqual(op.kube.writes, []);
  assert.equal(op.hashes(), 0);
});

test("the basic user's password Secret missing: no credentials written (nothing to enforce), the sidecar's objects are, SecretNotFound", async () => {
  const op = operator(daguAuth(basicSpec));
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.ready()?.reason, "SecretNotFound");
  assert.match(op.ready()!.message, /Secret basic \(spec\.basic\.passwordSecretRef\) does not exist/);
  assert.equal(op.kube.secret(NS, "dagu-credentials"), undefined);
  assert.ok(op.kube.writes.includes("apply Role/dagu-sidecar"));
  assert.equal(op.hashes(), 0);
});

test("the sidecar's ServiceAccount name held by someone else: neither it nor a RoleBinding to it is written; the credentials are; OwnedObjectConflict", async () => {
  const op = operator(daguAuth(basicSpec));
  op.kube.seed(passwordSecret);
  op.kube.seed({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "dagu-sidecar", namespace: NS } });
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.ready()?.reason, "OwnedObjectConflict");
  assert.ok(op.kube.writes.includes("apply Role/dagu-sidecar"));
  assert.ok(!op.kube.writes.includes("apply ServiceAccount/dagu-sidecar"));
  assert.ok(!op.kube.writes.includes("apply RoleBinding/dagu-sidecar"), "binding someone else's ServiceAccount would hand it the credentials");
  assert.equal(generationOf(op.kube), 1);
});

test("a shard's name held by someone else, found while writing: OwnedObjectConflict, looked at again later, no index written", async () => {
  const op = operator(daguAuth(basicSpec), { maxInlineBytes: 200 });
  op.kube.seed(passwordSecret);
  op.kube.seed({ apiVersion: "v1", kind: "Secret", metadata: { name: "dagu-credentials-g1-0", namespace: NS }, data: {} });
  assert.deepEqual(await op.reconcile(), { requeueAfter: CONFLICT_RECHECK_MS });
  assert.equal(op.ready()?.reason, "OwnedObjectConflict");
  assert.match(op.ready()!.message, /Secret dagu-credentials-g1-0/);
  assert.equal(op.kube.secret(NS, "dagu-credentials"), undefined);
});

test("builtin mode waits for every child to answer: Reconciling, no credentials written yet", async () => {
  const user: KubeObject = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguUser", metadata: { name: "alice", namespace: NS, uid: "alice-uid", generation: 1 }, spec: { authRef: { name: "dagu" } } };
  const op = operator(daguAuth({ mode: "builtin" }), { users: [user] });
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.ready()?.status, "Unknown");
  assert.match(op.ready()!.message, /waiting for 1 users, API keys and webhooks/);
  assert.equal(op.kube.secret(NS, "dagu-credentials"), undefined);
  assert.ok(op.enqueued.includes("user ns/alice"), "a new state: the children are asked");
});

test("its own writes not in the cache yet: looked at again in a moment instead of read back", async () => {
  const op = operator(daguAuth(basicSpec));
  op.kube.seed(passwordSecret);
  op.kube.lagging = true;
  await op.reconcile();
  const writes = op.kube.writes.length;
  assert.deepEqual(await op.reconcile(), { requeueAfter: 50 });
  assert.equal(op.kube.writes.length, writes);
  op.kube.sync();
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.kube.writes.length, writes, "once the cache caught up, nothing to write");
  assert.equal(op.hashes(), 1);
});

test("a deleted DaguAuth: its materials go and its children are told", async () => {
  const user: KubeObject = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguUser", metadata: { name: "alice", namespace: NS, uid: "alice-uid", generation: 1 }, spec: { authRef: { name: "dagu" } } };
  const op = operator(daguAuth(basicSpec), { users: [user] });
  op.ctx.materials.of(`${NS}/dagu`).published = { generation: 3, users: new Map(), userInputs: new Map(), rejectedUsers: new Map(), apiKeyInputs: new Map(), webhookInputs: new Map(), rejectedWebhooks: new Map() };
  op.caches.auths.objects.clear();
  assert.equal(await op.reconcile(), undefined);
  assert.equal(op.ctx.materials.of(`${NS}/dagu`).published, undefined);
  assert.deepEqual(op.enqueued, ["user ns/alice"]);
  assert.deepEqual(op.kube.writes, []);
});
