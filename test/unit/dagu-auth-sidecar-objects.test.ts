// The DaguAuth reconciler's sidecar objects (src/operator/dagu-auth-sidecar-objects.ts) over an in-memory
// API: each object is applied once and again only when it changed or someone else changed it; the Role
// names the credentials shards; what is no longer wanted is pruned; cert-manager's absence is a fact,
// not an error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DaguAuthSpec } from "../../src/api/index.ts";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { appliedId } from "../../src/operator/owned-objects.ts";
import { SidecarObjects, type SidecarObjectsAccess } from "../../src/operator/dagu-auth-sidecar-objects.ts";
import { FakeKube } from "./fakes/kube-objects.ts";

const auth: KubeObject = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", metadata: { name: "dagu", namespace: "ns", uid: "auth-uid" } };
const basic = DaguAuthSpec.parse({ mode: "basic", basic: { username: "admin", passwordSecretRef: { name: "basic", key: "password" } } });

function setup() {
  const kube = new FakeKube();
  const events: string[] = [];
  const access: SidecarObjectsAccess = {
    applied: new Map(),
    writer: kube.writer,
    secrets: kube.secrets,
    ownedObjects: (namespace) => kube.list(namespace, ["ServiceAccount", "Role", "RoleBinding", "Certificate"]),
    events: { normal: (_o, reason, message) => void events.push(`${reason}: ${message}`) },
  };
  return { kube, access, events };
}

const roleOf = (kube: FakeKube) => kube.list("ns", ["Role"])[0] as KubeObject & { rules: { resourceNames: string[] }[] };

test("applied once; again only when someone else changed it", async () => {
  const { kube, access } = setup();
  const objects = await SidecarObjects.check(access, auth, basic, []);
  assert.equal(objects.conflict, undefined);
  assert.deepEqual(await objects.apply([]), { certManagerMissing: false });
  const first = [...kube.writes];
  assert.deepEqual(first.filter((w) => w.startsWith("apply")), ["apply ServiceAccount/dagu-sidecar", "apply Role/dagu-sidecar", "apply RoleBinding/dagu-sidecar"]);

  kube.writes.length = 0;
  await (await SidecarObjects.check(access, auth, basic, [])).apply([]);
  assert.deepEqual(kube.writes, [], "what was applied and not changed since is not written");

  // The informer saw the Role change (owned-objects.ts forgets it): the live object decides.
  const role = roleOf(kube);
  access.applied.delete(appliedId(role));
  await (await SidecarObjects.check(access, auth, basic, [])).apply([]);
  assert.deepEqual(kube.writes, [], "the live Role still carries what was applied");
  kube.seed({ ...role, rules: [] });
  access.applied.delete(appliedId(role));
  await (await SidecarObjects.check(access, auth, basic, [])).apply([]);
  assert.deepEqual(kube.writes, ["apply Role/dagu-sidecar"], "an edited Role is put back");
  assert.equal(roleOf(kube).rules.length, 3);
});

test("the Role names the credentials shards in use, and the remote nodes' key Secrets", async () => {
  const { kube, access } = setup();
  const objects = await SidecarObjects.check(access, auth, basic, ["node-key"]);
  await objects.allowShards(["dagu-credentials-g2-0", "dagu-credentials-g2-1"]);
  const names = roleOf(kube).rules.flatMap((r) => r.resourceNames);
  for (const name of ["dagu-credentials", "dagu-credentials-g2-0", "dagu-credentials-g2-1", "node-key"]) assert.ok(names.includes(name), name);
  await objects.apply([]);
  assert.ok(!roleOf(kube).rules.flatMap((r) => r.resourceNames).includes("dagu-credentials-g2-0"), "shards no longer in use are no longer readable");
});

test("a renamed ServiceAccount: the old one is pruned (with an Event), unless a conflict holds everything", async () => {
  const { kube, access, events } = setup();
  await (await SidecarObjects.check(access, auth, basic, [])).apply([]);
  const renamed = DaguAuthSpec.parse({ ...basic, sidecar: { serviceAccountName: "runner" } });
  await (await SidecarObjects.check(access, auth, renamed, [])).apply([]);
  assert.deepEqual(kube.list("ns", ["ServiceAccount"]).map((o) => o.metadata.name), ["runner"]);
  assert.deepEqual(events, ["Pruned: deleted ServiceAccount/dagu-sidecar, which this DaguAuth no longer uses"]);

  // Someone else's ServiceAccount under the next name: nothing is pruned meanwhile.
  kube.seed({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "taken", namespace: "ns" } });
  const taken = DaguAuthSpec.parse({ ...basic, sidecar: { serviceAccountName: "taken" } });
  const objects = await SidecarObjects.check(access, auth, taken, []);
  assert.match(objects.conflict?.message ?? "", /ServiceAccount taken \(spec\.sidecar\.serviceAccountName\) exists and is not owned by DaguAuth dagu/);
  await objects.apply([]);
  assert.deepEqual(kube.list("ns", ["ServiceAccount"]).map((o) => o.metadata.name).sort(), ["runner", "taken"]);
  assert.equal(events.length, 1);
});

test("an issuer without cert-manager in the cluster: CertManagerMissing is a fact, the rest is applied", async () => {
  const { kube, access } = setup();
  kube.unserved.add("Certificate");
  const tls = DaguAuthSpec.parse({ ...basic, tls: { issuerRef: { name: "ca", kind: "ClusterIssuer" }, dnsNames: ["dagu.example.com"] } });
  const objects = await SidecarObjects.check(access, auth, tls, []);
  assert.equal(objects.conflict, undefined);
  assert.deepEqual(await objects.apply([]), { certManagerMissing: true });
  assert.ok(kube.writes.includes("apply Role/dagu-sidecar"));
});

test("the Secrets the sidecar writes are created once, and left alone afterwards", async () => {
  const { kube, access } = setup();
  await (await SidecarObjects.check(access, auth, basic, [])).apply([]);
  const created = kube.writes.filter((w) => w.startsWith("create"));
  assert.deepEqual(created, ["create Secret/dagu-password-changes", "create Secret/dagu-login-throttle", "create Secret/dagu-sso-users"]);
  kube.writes.length = 0;
  await (await SidecarObjects.check(access, auth, basic, [])).apply([]);
  assert.deepEqual(kube.writes, []);
});
