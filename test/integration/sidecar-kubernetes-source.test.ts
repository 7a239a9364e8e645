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
import { changeTimestamp } from "../../src/sidecar/password-changes.ts";
import { hashPassword } from "../../src/common/password-hash.ts";
import { eventually, serviceAccountKubeConfig, testNamespace, toKubeConfig } from "../harness/kube.ts";
import { builtinSetup, setSecret, waitCredentials, waitReady, withOperator } from "../harness/resources.ts";


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
  assert.ok(await argon2.verify(updated.passwordHash, "alice-password-9"));
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
