// examples/dagu-with-sidecar.yaml as a cluster admin would apply it: only the sidecar holds the
// ServiceAccount token (Dagu's container runs DAG code, which must not reach the credentials), and the
// NetworkPolicy lets only the sidecar's port into the pod.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import { IN_CLUSTER_DIR } from "../../src/common/kube/config.ts";
import { repoRoot } from "../../dev/components.ts";

const Mount = z.object({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional() });
const Container = z.object({ name: z.string(), volumeMounts: z.array(Mount).default([]), ports: z.array(z.object({ name: z.string(), containerPort: z.number() })).default([]) });
const Volume = z.looseObject({ name: z.string(), projected: z.object({ sources: z.array(z.record(z.string(), z.unknown())) }).optional(), secret: z.unknown().optional() });
const PodSpec = z.object({
  serviceAccountName: z.string(),
  automountServiceAccountToken: z.boolean().optional(),
  shareProcessNamespace: z.boolean().optional(),
  containers: z.array(Container),
  volumes: z.array(Volume).default([]),
});
const Deployment = z.object({ kind: z.literal("Deployment"), spec: z.object({ template: z.object({ metadata: z.object({ labels: z.record(z.string(), z.string()) }), spec: PodSpec }) }) });
const NetworkPolicy = z.object({
  kind: z.literal("NetworkPolicy"),
  spec: z.object({
    podSelector: z.object({ matchLabels: z.record(z.string(), z.string()) }),
    policyTypes: z.array(z.string()),
    ingress: z.array(z.object({ from: z.unknown().optional(), ports: z.array(z.object({ port: z.union([z.string(), z.number()]), protocol: z.string().optional() })).optional() })),
  }),
});

async function example() {
  const docs = parseAllDocuments(await readFile(join(repoRoot, "examples/dagu-with-sidecar.yaml"), "utf8")).map((d) => d.toJS() as { kind?: string });
  const deployment = Deployment.parse(docs.find((d) => d.kind === "Deployment"));
  const policy = NetworkPolicy.parse(docs.find((d) => d.kind === "NetworkPolicy"));
  return { pod: deployment.spec.template.spec, labels: deployment.spec.template.metadata.labels, policy };
}

/** Volumes that carry a ServiceAccount token (a projected token, or a Secret of the legacy kind). */
function tokenVolumes(pod: z.infer<typeof PodSpec>): Set<string> {
  return new Set(pod.volumes.filter((v) => v.projected?.sources.some((s) => "serviceAccountToken" in s) || v.secret !== undefined).map((v) => v.name));
}

test("the example pod: no token in Dagu's container, a projected token in the sidecar's at the in-cluster path", async () => {
  const { pod } = await example();
  assert.equal(pod.automountServiceAccountToken, false, "no token mounted into every container");
  assert.notEqual(pod.shareProcessNamespace, true, "Dagu's processes must not see the sidecar's (and its files through /proc)");
  const dagu = pod.containers.find((c) => c.name === "dagu");
  const sidecar = pod.containers.find((c) => c.name === "dagu-auth");
  assert.ok(dagu && sidecar, "the two containers");
  const tokens = tokenVolumes(pod);
  for (const c of pod.containers.filter((c) => c !== sidecar)) {
    assert.deepEqual(c.volumeMounts.filter((m) => tokens.has(m.name)), [], `container ${c.name} mounts no token`);
    assert.ok(!c.volumeMounts.some((m) => m.mountPath.startsWith("/var/run/secrets")), `container ${c.name} mounts nothing under /var/run/secrets`);
  }
  const mount = sidecar.volumeMounts.find((m) => tokens.has(m.name));
  assert.ok(mount, "the sidecar mounts a token");
  assert.equal(mount.mountPath, IN_CLUSTER_DIR, "where KubeConfig.inCluster() reads it");
  assert.equal(mount.readOnly, true);

  // What automount would have put there: token, ca.crt and namespace, each from its source.
  const sources = pod.volumes.find((v) => v.name === mount.name)!.projected!.sources;
  const token = z.object({ serviceAccountToken: z.object({ path: z.literal("token"), expirationSeconds: z.number().min(600), audience: z.string().optional() }) });
  const ca = z.object({ configMap: z.object({ name: z.literal("kube-root-ca.crt"), items: z.tuple([z.object({ key: z.literal("ca.crt"), path: z.literal("ca.crt") })]) }) });
  const namespace = z.object({ downwardAPI: z.object({ items: z.tuple([z.object({ path: z.literal("namespace"), fieldRef: z.object({ fieldPath: z.literal("metadata.namespace") }) })]) }) });
  assert.equal(sources.length, 3);
  const parsedToken = token.parse(sources.find((s) => "serviceAccountToken" in s));
  assert.equal(parsedToken.serviceAccountToken.audience, undefined, "the API server's own audience: the token is for it, not another service");
  ca.parse(sources.find((s) => "configMap" in s));
  namespace.parse(sources.find((s) => "downwardAPI" in s));
});

test("the example NetworkPolicy admits only the sidecar's proxy port", async () => {
  const { pod, labels, policy } = await example();
  for (const [k, v] of Object.entries(policy.spec.podSelector.matchLabels)) assert.equal(labels[k], v, `the policy selects the Dagu pod (${k})`);
  assert.deepEqual(policy.spec.policyTypes, ["Ingress"]);
  const sidecar = pod.containers.find((c) => c.name === "dagu-auth")!;
  const proxy = sidecar.ports.find((p) => p.name === "proxy")!;
  const ports = policy.spec.ingress.flatMap((rule) => {
    assert.ok(rule.ports && rule.ports.length > 0, "every ingress rule names its ports (a rule without ports admits all)");
    return rule.ports;
  });
  assert.ok(ports.length > 0);
  for (const p of ports) assert.ok(p.port === proxy.name || p.port === proxy.containerPort, `port ${p.port} is the sidecar's proxy port`);
  const daguPorts = pod.containers.find((c) => c.name === "dagu")!.ports;
  assert.deepEqual(daguPorts, [], "Dagu declares no port: it listens on 127.0.0.1 only");
});
