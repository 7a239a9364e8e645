// The DaguUser, DaguApiKey and DaguWebhook reconcilers, reached through the narrow access the wiring
// hands them (src/operator/wiring/child-access.ts), over the in-memory API (test/unit/fakes/): a problem
// becomes the condition that names it and an answer for the DaguAuth, a generated value is generated
// once, someone else's Secret is never taken over, and a reconcile that finds everything in place writes
// and hashes nothing. Against a real API server: test/integration/operator.test.ts and its neighbours.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { secretValue } from "../../src/common/kube/secret-data.ts";
import { sha256Hex } from "../../src/common/tokens.ts";
import { API_KEY_SECRET_KEY, reconcileDaguApiKey } from "../../src/operator/dagu-api-key-reconciler.ts";
import { reconcileDaguAuth } from "../../src/operator/dagu-auth-reconciler.ts";
import { reconcileDaguUser } from "../../src/operator/dagu-user-reconciler.ts";
import { reconcileDaguWebhook } from "../../src/operator/dagu-webhook-reconciler.ts";
import { childReconcilerAccess } from "../../src/operator/wiring/child-access.ts";
import { fakeOperator, type FakeOperatorObjects } from "./fakes/operator-context.ts";

const NS = "ns";
const AUTH_KEY = `${NS}/dagu`;
const resource = (kind: string, name: string, spec: Record<string, unknown>): KubeObject => ({
  apiVersion: "auth.dagu.dev/v1alpha1",
  kind,
  metadata: { name, namespace: NS, uid: `${name}-uid`, generation: 1, creationTimestamp: "2026-01-01T00:00:00Z" },
  spec: { authRef: { name: "dagu" }, ...spec },
});
const alice = resource("DaguUser", "alice", { username: "alice", role: "developer", password: { secretRef: { name: "alice-password", key: "password" } } });
const ci = resource("DaguApiKey", "ci", { role: "operator", secretName: "ci-key" });
const deploy = resource("DaguWebhook", "deploy", { dagName: "deploy", secretName: "deploy-hook" });
const secret = (name: string, values: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: NS },
  data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
});

/** A builtin DaguAuth and `children`, the children reconciled through what the wiring hands them. */
function operator(children: Omit<FakeOperatorObjects, "auths">) {
  const op = fakeOperator({ auths: [resource("DaguAuth", "dagu", { mode: "builtin" })], ...children });
  const access = childReconcilerAccess(op.ctx);
  const status = (kind: string, name: string) => op.kube.statuses.findLast((s) => s.kind === kind && s.metadata.name === name)?.status as Record<string, unknown> | undefined;
  return {
    ...op,
    status,
    auth: () => reconcileDaguAuth(op.ctx, AUTH_KEY),
    user: (name: string) => reconcileDaguUser(access.users, `${NS}/${name}`),
    apiKey: (name: string) => reconcileDaguApiKey(access.apiKeys, `${NS}/${name}`),
    webhook: (name: string) => reconcileDaguWebhook(access.webhooks, `${NS}/${name}`),
    offers: () => op.ctx.materials.of(AUTH_KEY),
  };
}

test("the wiring hands each child reconciler only what its access interface names", () => {
  const { ctx } = fakeOperator();
  const access = childReconcilerAccess(ctx);
  const common = ["caches", "enqueue", "events", "materials", "now", "secrets", "writer"];
  assert.deepEqual(Object.keys(access.users).sort(), [...common, "hashPassword"].sort());
  assert.deepEqual(Object.keys(access.apiKeys).sort(), common);
  assert.deepEqual(Object.keys(access.webhooks).sort(), common);
  assert.deepEqual(Object.keys(access.users.caches).sort(), ["auths", "users"]);
  assert.deepEqual(Object.keys(access.apiKeys.caches).sort(), ["apiKeys", "auths"]);
  assert.deepEqual(Object.keys(access.webhooks.caches).sort(), ["auths", "webhooks"]);
  assert.deepEqual(Object.keys(access.users.writer).sort(), ["applyStatus", "create", "update"], "no apply, no delete");
  assert.deepEqual(Object.keys(access.users.enqueue), ["auth"]);
});

test("a DaguUser before its DaguAuth has a state: the DaguAuth is asked, the user looks again, nothing written", async () => {
  const op = operator({ users: [alice] });
  op.kube.seed(secret("alice-password", { password: "a-long-enough-password" }));
  assert.deepEqual(await op.user("alice"), { requeueAfter: 2000 });
  assert.ok(op.enqueued.includes(`auth ${AUTH_KEY}`));
  assert.deepEqual(op.kube.writes, []);
  assert.deepEqual(op.kube.statuses, []);
  assert.equal(op.hashes(), 0);
});

test("a DaguUser whose password Secret is missing: SecretNotFound, an answer for its DaguAuth, nothing hashed; once it exists the user is enforced, and then nothing is written or hashed again", async () => {
  const op = operator({ users: [alice] });
  await op.auth(); // its state: the DaguAuth waits for alice
  const writes = op.kube.writes.length;
  op.enqueued.length = 0;

  assert.equal(await op.user("alice"), undefined);
  const ready = op.ready("DaguUser", "alice");
  assert.equal(ready?.status, "False");
  assert.equal(ready?.reason, "SecretNotFound");
  assert.equal(ready?.message, "Secret alice-password (spec.password.secretRef) does not exist");
  assert.equal(op.status("DaguUser", "alice")?.passwordSecretName, "alice-password");
  assert.deepEqual(op.events, ["Warning SecretNotFound"]);
  const offer = op.offers().users.get("alice-uid");
  assert.equal(offer?.ok, false, "an answer, so the DaguAuth does not wait for alice forever");
  assert.deepEqual(op.enqueued, [`auth ${AUTH_KEY}`]);
  assert.equal(op.kube.writes.length, writes, "a user writes nothing of its own for a referenced password");
  assert.equal(op.hashes(), 0);

  op.kube.seed(secret("alice-password", { password: "a-long-enough-password" }));
  assert.equal(await op.user("alice"), undefined);
  assert.equal(op.hashes(), 1);
  assert.equal(op.offers().users.get("alice-uid")?.ok, true, "offered; Ready follows once the DaguAuth wrote it");
  await op.auth();
  assert.equal(await op.user("alice"), undefined);
  assert.equal(op.ready("DaguUser", "alice")?.reason, "Materialized");

  const [writesBefore, statusesBefore] = [op.kube.writes.length, op.kube.statuses.length];
  op.enqueued.length = 0;
  assert.equal(await op.user("alice"), undefined);
  assert.equal(op.kube.writes.length, writesBefore);
  assert.equal(op.kube.statuses.length, statusesBefore, "the status is what it was");
  assert.equal(op.hashes(), 1, "an unchanged password is not hashed again");
  assert.deepEqual(op.enqueued, [], "the same offer does not wake the DaguAuth");
});

test("a DaguApiKey generates its key once into its own Secret and offers only its digest; a second reconcile rewrites nothing", async () => {
  const op = operator({ apiKeys: [ci] });
  await op.auth();
  const writes = op.kube.writes.length;
  op.enqueued.length = 0;

  await op.apiKey("ci");
  assert.deepEqual(op.kube.writes.slice(writes), ["create Secret/ci-key"]);
  const written = op.kube.secret(NS, "ci-key")!;
  const key = secretValue(written, API_KEY_SECRET_KEY)!;
  assert.match(key, /^dagu_/);
  assert.equal(written.metadata.ownerReferences?.[0]?.uid, "ci-uid");
  const offer = op.offers().apiKeys.get("ci-uid");
  assert.ok(offer?.ok);
  assert.deepEqual(offer.value.entries.map((e) => e.digest), [sha256Hex(key)]);
  assert.ok(!JSON.stringify(offer).includes(key), "the key itself never reaches the credentials");
  assert.deepEqual(op.enqueued, [`auth ${AUTH_KEY}`]);

  const [writesBefore, statusesBefore] = [op.kube.writes.length, op.kube.statuses.length];
  op.enqueued.length = 0;
  await op.apiKey("ci");
  assert.equal(op.kube.writes.length, writesBefore, `nothing written again: ${op.kube.writes.slice(writesBefore).join(", ")}`);
  assert.equal(op.kube.statuses.length, statusesBefore);
  assert.equal(op.kube.secret(NS, "ci-key")!.metadata.resourceVersion, written.metadata.resourceVersion);
  assert.equal(op.offers().apiKeys.get("ci-uid"), offer, "the same offer");
  assert.deepEqual(op.enqueued, []);

  await op.auth();
  await op.apiKey("ci");
  assert.equal(op.ready("DaguApiKey", "ci")?.reason, "Materialized");
  assert.equal(op.status("DaguApiKey", "ci")?.keyPrefix, key.slice(0, (op.status("DaguApiKey", "ci")?.keyPrefix as string).length));
  assert.equal(secretValue(op.kube.secret(NS, "ci-key"), API_KEY_SECRET_KEY), key, "the same key");
});

test("a DaguWebhook whose Secret name is held by someone else: SecretConflict, the Secret untouched, nothing offered for the DAG", async () => {
  const op = operator({ webhooks: [deploy] });
  await op.auth();
  const writes = op.kube.writes.length;
  const foreign = op.kube.seed(secret("deploy-hook", { token: "someone-elses" }));

  assert.equal(await op.webhook("deploy"), undefined);
  const ready = op.ready("DaguWebhook", "deploy");
  assert.equal(ready?.status, "False");
  assert.equal(ready?.reason, "SecretConflict");
  assert.equal(ready?.message, "Secret deploy-hook (spec.secretName) exists and is not owned by this DaguWebhook; choose another name");
  assert.equal(op.kube.writes.length, writes);
  assert.equal(op.kube.secret(NS, "deploy-hook"), foreign, "not rewritten");
  assert.equal(op.offers().webhooks.get("deploy-uid")?.ok, false);
  assert.deepEqual(op.events, ["Warning SecretConflict"]);
});

test("a child of a DaguAuth that does not exist: DaguAuthNotFound, nothing written", async () => {
  const op = operator({ webhooks: [{ ...deploy, spec: { ...(deploy.spec as object), authRef: { name: "elsewhere" } } }] });
  assert.equal(await op.webhook("deploy"), undefined);
  assert.equal(op.ready("DaguWebhook", "deploy")?.reason, "DaguAuthNotFound");
  assert.deepEqual(op.kube.writes, []);
});
