// The four kinds' status as kstatus reads it (Flux's health checks, kpt, cli-utils appliers): Current
// only when the resource is enforced, InProgress while the operator works or waits for something that
// appears by itself, Failed when nothing progresses without a change.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { builtinSetup, core, create, custom, get, GROUP, patchSpec, secret, VERSION, withOperator, type Obj } from "../harness/resources.ts";

type Kstatus = "Current" | "InProgress" | "Failed" | "Terminating";
type Status = Obj & { metadata: { deletionTimestamp?: string }; status?: { observedGeneration?: number } };

/**
 * kstatus' rules for a custom resource without a type-specific rule, from sigs.k8s.io/cli-utils
 * pkg/kstatus (README "Statuses", "Conditions", "The Ready Condition"; status/generic.go
 * checkGenericProperties, checkGeneration):
 * 1. metadata.deletionTimestamp set: Terminating.
 * 2. status.observedGeneration present and not metadata.generation: InProgress ("changes that the
 *    controller has not yet seen").
 * 3. The abnormal-true conditions, in list order, the first True one decides: Reconciling: InProgress;
 *    Stalled: Failed.
 * 4. Otherwise the Ready condition: False: InProgress ("in the process of reconciling"); True, Unknown or
 *    absent: Current (kstatus cannot tell a resource that never sets Ready from one that is done).
 */
function kstatus(o: Status): Kstatus {
  if (o.metadata.deletionTimestamp) return "Terminating";
  const observed = o.status?.observedGeneration;
  if (o.metadata.generation !== undefined && observed !== undefined && observed !== o.metadata.generation) return "InProgress";
  for (const c of o.status?.conditions ?? []) {
    if (c.type === "Reconciling" && c.status === "True") return "InProgress";
    if (c.type === "Stalled" && c.status === "True") return "Failed";
  }
  return o.status?.conditions?.find((c) => c.type === "Ready")?.status === "False" ? "InProgress" : "Current";
}

/** What the operator promises on top: kstatus' verdict and Ready agree, and the abnormal conditions carry the reason. */
function consistent(o: Status): void {
  const s = kstatus(o);
  const conditions = o.status?.conditions ?? [];
  const of = (type: string) => conditions.find((c) => c.type === type);
  const ready = of("Ready");
  const what = `${o.metadata.name}: ${JSON.stringify(conditions)}`;
  if (!ready) return; // not seen by the operator yet
  if (s === "Current") assert.equal(ready.status, "True", `Current only when Ready: ${what}`);
  if (ready.status === "True") assert.ok(!of("Reconciling") && !of("Stalled"), `no abnormal condition when Ready: ${what}`);
  if (s === "Failed") assert.equal(of("Stalled")?.reason, ready.reason, `Stalled carries the reason: ${what}`);
  assert.ok(!(of("Reconciling") && of("Stalled")), `never both: ${what}`);
  for (const c of conditions) assert.equal(c.observedGeneration, o.metadata.generation, `each condition names the generation: ${what}`);
}

async function waitKstatus(ns: string, plural: string, name: string, want: Kstatus, reason?: string): Promise<Status> {
  const o = await eventually(`${plural}/${name} ${want}${reason ? ` (${reason})` : ""}`, async () => {
    const obj = (await get(ns, plural, name)) as Status;
    const ready = obj.status?.conditions?.find((c) => c.type === "Ready");
    return kstatus(obj) === want && (!reason || ready?.reason === reason) ? obj : undefined;
  }, 60_000, 200);
  consistent(o);
  return o;
}

test("kstatus reads each kind's status: Current when enforced, InProgress while working or waiting, Failed when stuck", async (t) => {
  const ns = await testNamespace(t, "kst");
  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  let op = await withOperator(t, "kstatus-1");
  await builtinSetup(ns);
  for (const [plural, name] of [["daguauths", "dagu"], ["daguusers", "alice"], ["daguusers", "bob"], ["daguapikeys", "ci"], ["daguwebhooks", "hello"]] as const) {
    await waitKstatus(ns, plural, name, "Current", plural === "daguauths" || name !== "bob" ? "Materialized" : undefined);
  }

  // Waiting for something that appears by itself: InProgress, and healed once it does.
  await create(ns, "daguusers", "DaguUser", "carol", { authRef: { name: "dagu" }, username: "carol", role: "viewer", password: { secretRef: { name: "carol-pw", key: "password" } } });
  await waitKstatus(ns, "daguusers", "carol", "InProgress", "SecretNotFound");
  await create(ns, "daguusers", "DaguUser", "orphan", { authRef: { name: "later" }, username: "orphan", role: "viewer", password: { generate: { secretName: "orphan-pw" } } });
  await waitKstatus(ns, "daguusers", "orphan", "InProgress", "DaguAuthNotFound");
  await create(ns, "daguauths", "DaguAuth", "waiting", { builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "waiting-admin-pw", key: "password" } } } });
  await waitKstatus(ns, "daguauths", "waiting", "InProgress", "SecretNotFound");

  // Stuck until someone changes something: Failed, on each kind.
  await create(ns, "daguusers", "DaguUser", "alice-2", { authRef: { name: "dagu" }, username: "alice", role: "viewer", password: { generate: { secretName: "alice-2-pw" } } });
  await waitKstatus(ns, "daguusers", "alice-2", "Failed", "DuplicateUsername");
  await secret(ns, "taken-api-key", { apiKey: "someone else's" });
  await create(ns, "daguapikeys", "DaguApiKey", "taken", { authRef: { name: "dagu" }, role: "viewer", secretName: "taken-api-key" });
  await waitKstatus(ns, "daguapikeys", "taken", "Failed", "SecretConflict");
  await create(ns, "daguwebhooks", "DaguWebhook", "hello-2", { authRef: { name: "dagu" }, dagName: "hello", secretName: "hello-2-webhook" });
  await waitKstatus(ns, "daguwebhooks", "hello-2", "Failed", "DuplicateDagName");
  await secret(ns, "stuck-credentials", { "credentials.json": "someone else's" });
  // With an admin: a builtin DaguAuth without one is not Ready (NoAdmin).
  await create(ns, "daguauths", "DaguAuth", "stuck", { builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  await waitKstatus(ns, "daguauths", "stuck", "Failed", "OwnedObjectConflict");
  // A child of a DaguAuth that never publishes stays in progress (Ready=Unknown alone would read as Current).
  await create(ns, "daguapikeys", "DaguApiKey", "stuck-key", { authRef: { name: "stuck" }, role: "viewer", secretName: "stuck-key" });
  const pendingKey = await waitKstatus(ns, "daguapikeys", "stuck-key", "InProgress", "Pending");
  assert.equal(pendingKey.status?.conditions?.find((c) => c.type === "Ready")?.status, "Unknown");

  // Fixed: Current again, and the abnormal conditions are gone.
  await secret(ns, "carol-pw", { password: "carol-password-1" });
  await waitKstatus(ns, "daguusers", "carol", "Current", "Materialized");
  // spec.username is immutable: the resource is replaced, as a GitOps tool would.
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguusers", name: "alice-2" });
  await eventually("alice-2 gone", async () => get(ns, "daguusers", "alice-2").then(() => undefined, () => true));
  await create(ns, "daguusers", "DaguUser", "alice-2", { authRef: { name: "dagu" }, username: "alice-two", role: "viewer", password: { generate: { secretName: "alice-2-pw-b" } } });
  await waitKstatus(ns, "daguusers", "alice-2", "Current", "Materialized");
  await core.deleteNamespacedSecret({ name: "stuck-credentials", namespace: ns });
  await waitKstatus(ns, "daguauths", "stuck", "Current", "Materialized"); // within the 30 s recheck
  await waitKstatus(ns, "daguapikeys", "stuck-key", "Current", "Materialized");

  // A change the operator has not seen: InProgress through observedGeneration alone.
  await op.stop();
  await patchSpec(ns, "daguusers", "alice", { role: "viewer" });
  const unseen = (await get(ns, "daguusers", "alice")) as Status;
  assert.equal(kstatus(unseen), "InProgress");
  assert.equal(unseen.status?.conditions?.find((c) => c.type === "Ready")?.status, "True", "Ready alone still says True");
  op = await withOperator(t, "kstatus-2");
  await waitKstatus(ns, "daguusers", "alice", "Current", "Materialized");

  // Deleted while a finalizer holds it: Terminating.
  const hold = (finalizers: string[] | null) => custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguwebhooks", name: "hello-2", body: { metadata: { finalizers } } }, merge);
  await hold(["test.dagu.dev/hold"]);
  await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: "daguwebhooks", name: "hello-2" });
  assert.equal(kstatus((await get(ns, "daguwebhooks", "hello-2")) as Status), "Terminating");
  await hold(null);

  // Every object, as it ended, agrees with the promises above.
  for (const plural of ["daguauths", "daguusers", "daguapikeys", "daguwebhooks"]) {
    const list = (await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural })) as { items: Status[] };
    for (const o of list.items) consistent(o);
  }
  assert.ok(op.isLeader);
});
