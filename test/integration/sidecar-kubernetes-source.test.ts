// The sidecar's Kubernetes credential source on the real control plane, under the
// ServiceAccount and Role the operator creates for it: it reads what the operator
// writes within about a second, records self-service password changes where the
// operator merges them, and can read nothing else.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import argon2 from "argon2";
import pino from "pino";
import type { Credentials } from "../../src/api/index.ts";
import { KubernetesCredentialSource } from "../../src/sidecar/sources/kubernetes-source.ts";
import { CredentialStore } from "../../src/sidecar/credentials/credential-store.ts";
import { changeTimestamp } from "../../src/sidecar/credentials/password-changes.ts";
import { hashPassword } from "../../src/common/password-hash.ts";
import { serviceAccountKubeConfig, toKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { builtinSetup, core, create, secret, setSecret, waitCredentials, waitReady, withOperator } from "../harness/resources.ts";


test("the sidecar's source follows the operator's credentials and writes password changes it merges", async (t) => {
  const ns = await testNamespace(t, "sck");
  await withOperator(t);
  await builtinSetup(ns);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  const sidecarKc = await serviceAccountKubeConfig(ns, String(auth.status!.serviceAccountName));

  const source = new KubernetesCredentialSource({ kubeConfig: toKubeConfig(sidecarKc), namespace: ns, authName: "dagu", logger: pino({ level: "silent" }) });
  const seen: Credentials[] = [];
  source.on("change", (c) => seen.push(c));
  await source.start();
  t.after(() => source.stop());
  const first = source.current();
  assert.ok(first, "credentials loaded through the watch");
  assert.deepEqual(first.users.map((u) => u.username).sort(), ["admin", "alice", "bob"]);

  // A change made in Git (the password Secret) reaches the sidecar.
  const before = first.users.find((u) => u.username === "alice")!;
  await setSecret(ns, "alice-pw", { password: "alice-password-9" });
  const started = Date.now();
  const updated = await eventually("the sidecar sees alice's new hash", async () => {
    const u = source.current()?.users.find((x) => x.username === "alice");
    return u && u.passwordHash !== before.passwordHash ? u : undefined;
  }, 30_000, 20);
  assert.ok(await argon2.verify(updated.passwordHash!, "alice-password-9"));
  t.diagnostic(`source password change to sidecar: ${Date.now() - started} ms (includes one argon2 hash)`);

  // A self-service change: in force in the sidecar at once, and merged by the operator.
  const newHash = await hashPassword("self-service-pw-1");
  const changedAt = changeTimestamp(updated.passwordChangedAt);
  await source.recordPasswordChange(updated.id, newHash, changedAt);
  assert.equal(source.current()?.users.find((u) => u.id === updated.id)?.passwordHash, newHash, "in force before the call returns");
  await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.id === updated.id)?.passwordHash === newHash, "the operator merged the change");
});

test("the sidecar's ServiceAccount can read its credentials and nothing else", async (t) => {
  const ns = await testNamespace(t, "sck");
  await withOperator(t);
  await builtinSetup(ns);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  const api = (await serviceAccountKubeConfig(ns, String(auth.status!.serviceAccountName))).makeApiClient(k8s.CoreV1Api);
  await api.readNamespacedSecret({ name: "dagu-credentials", namespace: ns });
  const refused = async (what: string, call: () => Promise<unknown>) => {
    await assert.rejects(call, (err: { code?: number }) => err.code === 403, `${what} is forbidden`);
  };
  await refused("the operator state", () => api.readNamespacedSecret({ name: "dagu-operator-state", namespace: ns }));
  await refused("a user's password Secret", () => api.readNamespacedSecret({ name: "alice-pw", namespace: ns }));
  await refused("a consumer API key", () => api.readNamespacedSecret({ name: "ci-api-key", namespace: ns }));
  await refused("listing Secrets", () => api.listNamespacedSecret({ namespace: ns }));
  await refused("writing its own credentials", () =>
    api.patchNamespacedSecret({ name: "dagu-credentials", namespace: ns, body: { metadata: { labels: { x: "y" } } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch)),
  );
});

/** A store over the Kubernetes source, as the sidecar runs it, under the operator-made ServiceAccount. */
async function sidecarStore(t: { after: (fn: () => Promise<void>) => void }, ns: string, serviceAccount: string) {
  const kubeConfig = toKubeConfig(await serviceAccountKubeConfig(ns, serviceAccount));
  const store = new CredentialStore(new KubernetesCredentialSource({ kubeConfig, namespace: ns, authName: "dagu", logger: pino({ level: "silent" }) }));
  const rejections: string[] = [];
  store.on("rejected", (e) => rejections.push(e.message));
  await store.start();
  t.after(() => store.stop());
  return { store, rejections };
}

test("a corrupted or deleted credentials Secret turns readiness off and keeps the last good document until the operator heals it", async (t) => {
  const ns = await testNamespace(t, "sck");
  await withOperator(t);
  await builtinSetup(ns);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  const { store, rejections } = await sidecarStore(t, ns, String(auth.status!.serviceAccountName));
  assert.ok(store.ready());
  const good = store.snapshot()!.credentials.generation;

  // Readiness off is observed while the operator may already be writing the next generation.
  let sawNotReady = false;
  store.on("rejected", () => {
    sawNotReady ||= !store.ready();
    assert.equal(store.snapshot()!.credentials.generation >= good, true, "the last good document stays in force");
  });
  await core.patchNamespacedSecret(
    { name: "dagu-credentials", namespace: ns, body: { data: { "credentials.json": Buffer.from('{"version": 1, "secret": "S3CRET"').toString("base64") } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
  await eventually("the corruption is refused", async () => rejections.find((m) => /not valid/.test(m)));
  assert.ok(!rejections.some((m) => m.includes("S3CRET")), "no content of the Secret in the error");
  await eventually("healed by the operator: ready on a newer generation", async () => (store.ready() && store.snapshot()!.credentials.generation > good) || undefined);

  const healed = store.snapshot()!.credentials.generation;
  await core.deleteNamespacedSecret({ name: "dagu-credentials", namespace: ns });
  await eventually("the deletion is refused", async () => rejections.find((m) => /does not exist/.test(m)));
  await eventually("recreated by the operator: ready again", async () => (store.ready() && store.snapshot()!.credentials.generation > healed) || undefined);
  assert.ok(sawNotReady, "readiness was off in between");
});

test("a sharded document is followed across generations under the sidecar's Role", async (t) => {
  const ns = await testNamespace(t, "sck");
  await withOperator(t, undefined, { maxInlineBytes: 1200 });
  await builtinSetup(ns);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  const index = JSON.parse(Buffer.from((await core.readNamespacedSecret({ name: "dagu-credentials", namespace: ns })).data!["credentials.json"]!, "base64").toString()) as { shards?: unknown[] };
  assert.ok((index.shards?.length ?? 0) > 1, "the operator wrote shards");
  const { store, rejections } = await sidecarStore(t, ns, String(auth.status!.serviceAccountName));
  assert.ok(store.ready(), rejections.join("; "));
  assert.deepEqual(store.snapshot()!.credentials.users.map((u) => u.username).sort(), ["admin", "alice", "bob"]);

  for (const name of ["carol", "dan"]) {
    await secret(ns, `${name}-pw`, { password: `${name}-password-1` });
    await create(ns, "daguusers", "DaguUser", name, { authRef: { name: "dagu" }, username: name, role: "viewer", password: { secretRef: { name: `${name}-pw`, key: "password" } } });
    await eventually(`${name} enforced from the new shards`, async () => (store.ready() && store.snapshot()!.credentials.users.some((u) => u.username === name)) || undefined, 30_000);
  }
  assert.ok(!rejections.some((m) => /unreadable/.test(m)), `every generation was readable at once: ${rejections.join("; ")}`);
});
