// examples/dagu-with-sidecar.yaml on the real control plane: the API server admits the pod without a
// token in Dagu's container, and the sidecar works with exactly the token its projected volume holds.
// No kubelet runs here, so the test does what kubelet would: a TokenRequest bound to the pod, for the
// API server's audience and the example's expirationSeconds, written with the cluster CA (from the
// kube-root-ca.crt ConfigMap) and the namespace (downward API) into a directory laid out like the
// projection; the sidecar's Kubernetes source then reads them through KubeConfig.inCluster().
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import pino from "pino";
import { IN_CLUSTER_DIR, KubeConfig } from "../../src/common/kube/config.ts";
import { KubeClient, errorCode, resourcePath } from "../../src/common/kube/client.ts";
import { KubernetesCredentialSource } from "../../src/sidecar/sources/kubernetes-source.ts";
import { changeTimestamp } from "../../src/sidecar/credentials/password-changes.ts";
import { hashPassword } from "../../src/common/password-hash.ts";
import { repoRoot } from "../../dev/components.ts";
import { kubectl } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { builtinSetup, core, kc, waitCredentials, waitReady, withOperator } from "../harness/resources.ts";

const EXAMPLE = join(repoRoot, "examples/dagu-with-sidecar.yaml");
const SECRETS = { group: "", version: "v1", plural: "secrets" };

test("the example pod holds no token in Dagu's container, and the sidecar works with the projected token alone", async (t) => {
  const ns = await testNamespace(t, "proj");
  await withOperator(t);
  await builtinSetup(ns);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  assert.equal(auth.status?.serviceAccountName, "dagu-sidecar", "the ServiceAccount the example runs as");

  const applied = await kubectl(["apply", "-n", ns, "-f", EXAMPLE]);
  assert.equal(applied.code, 0, applied.stderr);
  // The Deployment's ReplicaSet creates the pod through the API server's admission (no scheduler: it stays Pending).
  const pod = await eventually("the example's pod", async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: "app.kubernetes.io/name=dagu" })).items[0], 60_000, 200);
  const spec = pod.spec!;
  assert.equal(spec.automountServiceAccountToken, false);
  const tokenVolumes = (spec.volumes ?? []).filter((v) => v.projected?.sources?.some((s) => s.serviceAccountToken) || v.secret);
  assert.deepEqual(tokenVolumes.map((v) => v.name), ["sidecar-token"], "admission added no kube-api-access volume");
  for (const c of spec.containers) {
    const mounts = (c.volumeMounts ?? []).filter((m) => m.name === "sidecar-token" || m.mountPath.startsWith("/var/run/secrets"));
    if (c.name === "dagu-auth") assert.deepEqual(mounts.map((m) => m.mountPath), [IN_CLUSTER_DIR]);
    else assert.deepEqual(mounts, [], `container ${c.name} holds no token`);
  }

  // What kubelet writes into the projected volume.
  const projection = spec.volumes!.find((v) => v.name === "sidecar-token")!.projected!.sources!;
  const tokenSource = projection.find((s) => s.serviceAccountToken)!.serviceAccountToken!;
  const mint = (audiences?: string[]) =>
    core.createNamespacedServiceAccountToken({
      name: spec.serviceAccountName!,
      namespace: ns,
      body: { spec: { ...(audiences ? { audiences } : {}), expirationSeconds: tokenSource.expirationSeconds, boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata!.name, uid: pod.metadata!.uid } } },
    });
  const minted = await mint(tokenSource.audience ? [tokenSource.audience] : undefined);
  const expiresInS = (Date.parse(String(minted.status!.expirationTimestamp)) - Date.now()) / 1000;
  assert.ok(Math.abs(expiresInS - tokenSource.expirationSeconds!) < 60, `the token lives expirationSeconds (${expiresInS.toFixed(0)} s)`);
  const caConfigMap = await eventually("kube-root-ca.crt, published into every namespace", async () => core.readNamespacedConfigMap({ name: "kube-root-ca.crt", namespace: ns }).catch(() => undefined));
  const dir = await mkdtemp(join(tmpdir(), "dagu-auth-projected-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "token"), minted.status!.token!);
  await writeFile(join(dir, "ca.crt"), caConfigMap.data!["ca.crt"]!);
  await writeFile(join(dir, "namespace"), pod.metadata!.namespace!);
  const server = new URL(kc.getCurrentCluster()!.server);
  const env = { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port };
  const inCluster = KubeConfig.inCluster(env, dir);
  assert.equal(inCluster.namespace, ns);

  // The sidecar's Kubernetes source, as `dagu-auth sidecar --kubernetes` builds it in the pod.
  const source = new KubernetesCredentialSource({ kubeConfig: inCluster, namespace: ns, authName: "dagu", logger: pino({ level: "silent" }) });
  await source.start();
  t.after(() => source.stop());
  assert.deepEqual(source.current()?.users.map((u) => u.username).sort(), ["admin", "alice", "bob"], "credentials read with the projected token");
  const alice = source.current()!.users.find((u) => u.username === "alice")!;
  const newHash = await hashPassword("projected-token-pw-1");
  await source.recordPasswordChange(alice.id, newHash, changeTimestamp(alice.passwordChangedAt));
  await waitCredentials(ns, "dagu", (d) => d.users.find((u) => u.id === alice.id)?.passwordHash === newHash, "a password change written with the projected token, merged by the operator");

  // That token is the sidecar's least privilege, for the API server only, and lives only as long as its pod.
  const client = new KubeClient(inCluster);
  await assert.rejects(client.request("GET", resourcePath(SECRETS, { namespace: ns, name: "dagu-operator-state" })), (err) => errorCode(err) === 403);
  await assert.rejects(client.request("GET", resourcePath(SECRETS, { namespace: ns })), (err) => errorCode(err) === 403);
  const otherAudience = await mint(["https://vault.example.com"]);
  await writeFile(join(dir, "token"), otherAudience.status!.token!);
  const forVault = new KubeClient(KubeConfig.inCluster(env, dir));
  await assert.rejects(forVault.request("GET", resourcePath(SECRETS, { namespace: ns, name: "dagu-credentials" })), (err) => errorCode(err) === 401, "a token for another audience is refused");
  await writeFile(join(dir, "token"), minted.status!.token!);
  await kc.makeApiClient(k8s.AppsV1Api).deleteNamespacedDeployment({ name: "dagu", namespace: ns, body: { propagationPolicy: "Foreground" } });
  await eventually("the pod is deleted with its Deployment", async () => (await core.listNamespacedPod({ namespace: ns })).items.length === 0, 90_000, 200);
  const afterPod = new KubeClient(KubeConfig.inCluster(env, dir));
  await eventually("the pod-bound token is refused once its pod is gone", async () =>
    afterPod.request("GET", resourcePath(SECRETS, { namespace: ns, name: "dagu-credentials" })).then(() => false, (err: unknown) => errorCode(err) === 401),
  );
});
