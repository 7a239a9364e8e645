// Drift detection of the objects a DaguAuth owns (owned-objects.ts): what counts as
// someone else's change, and what the informer events do with it.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { AUTH_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from "../../src/operator/context.ts";
import { appliedId, carries, ownedObjectChanged, ownerAuthKey, pruneOwned } from "../../src/operator/owned-objects.ts";
import { type AppliedObject } from "../../src/operator/context.ts";

const owner = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", name: "dagu", uid: "u-1", controller: true, blockOwnerDeletion: true };
const role = (over: Record<string, unknown> = {}, meta: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
  apiVersion: "rbac.authorization.k8s.io/v1",
  kind: "Role",
  metadata: {
    name: "dagu-sidecar",
    namespace: "ns",
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [AUTH_LABEL]: "dagu" },
    annotations: { "auth.dagu.dev/applied-hash": "abc" },
    ownerReferences: [owner],
    ...meta,
  },
  rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: ["dagu-credentials"], verbs: ["get", "list", "watch"] }],
  ...over,
});
// What the API server returns: server fields, someone's extra label, another owner.
const live = (over: Record<string, unknown> = {}, meta: Partial<KubeObject["metadata"]> = {}): KubeObject => {
  const r = role(over, meta);
  return {
    ...r,
    metadata: {
      ...r.metadata,
      uid: "x",
      resourceVersion: "7",
      creationTimestamp: "2025-01-01T00:00:00Z",
      managedFields: [{ manager: "dagu-auth-operator" }],
      ...meta,
    },
  };
};

describe("carries", () => {
  test("server fields and additions of others are not a change", () => {
    assert.equal(carries(live(), role()), true);
    assert.equal(carries(live({}, { labels: { ...role().metadata.labels, team: "platform" } }), role()), true);
    assert.equal(carries(live({}, { ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "other", uid: "u-2" }, owner] }), role()), true);
    const cert = (spec: Record<string, unknown>, status?: unknown): KubeObject => ({ apiVersion: "cert-manager.io/v1", kind: "Certificate", metadata: { name: "c" }, spec, ...(status ? { status } : {}) });
    assert.equal(carries(cert({ dnsNames: ["a"], privateKey: { size: 256, encoding: "PKCS1" } }, { conditions: [] }), cert({ dnsNames: ["a"], privateKey: { size: 256 } })), true, "a defaulted field and a status");
  });

  test("an empty list or object is carried by an absent one", () => {
    const sa = (meta: Partial<KubeObject["metadata"]>, rest: Record<string, unknown> = {}): KubeObject => ({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "s", ...meta }, ...rest });
    assert.equal(carries(sa({}), sa({ annotations: {} }, { secrets: [] })), true);
    assert.equal(carries(sa({}), sa({}, { secrets: [{ name: "x" }] })), false);
  });

  test("a removed or changed field of ours is a change", () => {
    assert.equal(carries(live({ rules: [] }), role()), false, "rules emptied");
    assert.equal(carries(live({ rules: [...(role().rules as unknown[]), { apiGroups: [""], resources: ["pods"], verbs: ["get"] }] }), role()), false, "a rule added: rules are atomic, the apply replaces them");
    assert.equal(carries(live({ rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: ["dagu-credentials"], verbs: ["get"] }] }), role()), false, "a verb removed");
    assert.equal(carries(live({}, { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } }), role()), false, "our label removed");
    assert.equal(carries(live({}, { annotations: { "auth.dagu.dev/applied-hash": "old" } }), role()), false, "applied by an older spec");
    assert.equal(carries(live({}, { ownerReferences: [] }), role()), false, "our owner reference removed");
    assert.equal(carries(live({}, { ownerReferences: [{ ...owner, controller: false }] }), role()), false, "no longer the controller");
  });
});

describe("ownedObjectChanged", () => {
  const setup = () => {
    const applied = new Map<string, AppliedObject>([[appliedId(role()), { digest: "abc", object: role() }]]);
    const enqueued: string[] = [];
    const ctx = { applied, enqueue: { auth: (k: string) => void enqueued.push(k), user: () => undefined, apiKey: () => undefined, webhook: () => undefined } };
    return { ctx, applied, enqueued };
  };

  test("our own write, a resync or an addition of others: nothing to do", () => {
    const { ctx, applied, enqueued } = setup();
    ownedObjectChanged(ctx, live(), false);
    ownedObjectChanged(ctx, live({}, { labels: { ...role().metadata.labels, team: "platform" } }), false);
    assert.deepEqual(enqueued, []);
    assert.equal(applied.size, 1);
  });

  test("deleted: the digest is forgotten and the DaguAuth reconciled", () => {
    const { ctx, applied, enqueued } = setup();
    ownedObjectChanged(ctx, live(), true);
    assert.deepEqual(enqueued, ["ns/dagu"]);
    assert.equal(applied.size, 0);
  });

  test("edited: the digest is forgotten and the DaguAuth reconciled", () => {
    const { ctx, applied, enqueued } = setup();
    ownedObjectChanged(ctx, live({ rules: [] }), false);
    assert.deepEqual(enqueued, ["ns/dagu"]);
    assert.equal(applied.size, 0);
  });

  test("not applied by this process (a restart): its DaguAuth takes a look", () => {
    const { ctx, enqueued } = setup();
    ownedObjectChanged(ctx, live({}, { name: "other" }), false);
    assert.deepEqual(enqueued, ["ns/dagu"]);
  });

  test("the DaguAuth comes from the label, else from the owner reference", () => {
    assert.equal(ownerAuthKey(live()), "ns/dagu");
    assert.equal(ownerAuthKey(live({}, { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } })), "ns/dagu");
    assert.equal(ownerAuthKey(live({}, { labels: {}, ownerReferences: [] })), undefined);
  });
});

test("pruneOwned deletes only what carries the DaguAuth's label and the DaguAuth as controller and is not kept", async () => {
  const auth: KubeObject = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", metadata: { name: "dagu", namespace: "ns", uid: "auth-uid" } };
  const sa = (name: string, labels: Record<string, string>, ownerUid?: string, controller = true): KubeObject => ({
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: { name, namespace: "ns", uid: `uid-${name}`, labels, ...(ownerUid ? { ownerReferences: [{ apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", name: "dagu", uid: ownerUid, controller }] } : {}) },
  });
  const ours = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [AUTH_LABEL]: "dagu" };
  const current = sa("dagu-sidecar", ours, "auth-uid");
  const renamedAway = sa("old-sidecar", ours, "auth-uid");
  const noOwner = sa("bystander", ours);
  const otherAuth = sa("other-sidecar", { ...ours, [AUTH_LABEL]: "other" }, "other-uid");
  const sameLabelOtherUid = sa("recreated", ours, "previous-auth-uid");
  // Someone else's, with our label and a reference to the DaguAuth, but another controller: not ours to delete.
  const notController = sa("referenced", ours, "auth-uid", false);
  const deletes: string[] = [];
  const applied = new Map<string, AppliedObject>([[appliedId(renamedAway), { digest: "d", object: renamedAway }]]);
  const pruned = await pruneOwned(
    {
      ownedObjects: (namespace) => (namespace === "ns" ? [current, renamedAway, noOwner, otherAuth, sameLabelOtherUid, notController] : []),
      writer: { delete: async (_v: string, kind: string, ns: string, name: string, options?: { uid?: string }) => void deletes.push(`${kind} ${ns}/${name} uid=${options?.uid}`) },
      applied,
    },
    auth,
    new Set([appliedId(current)]),
  );
  assert.deepEqual(pruned, ["ServiceAccount/old-sidecar"]);
  assert.deepEqual(deletes, ["ServiceAccount ns/old-sidecar uid=uid-old-sidecar"], "deleted only with its uid as a precondition");
  assert.equal(applied.size, 0, "its applied record is forgotten");
});
