// Injection and Helm, on the real control plane:
// - the chart's MutatingWebhookConfiguration has the product's rules (src/operator/injection/
//   webhook-configuration.ts), in both certificate modes; the cert-manager objects pass the real
//   cert-manager CRDs' validation;
// - helm install, then the operator run with the chart's own arguments under the chart's ServiceAccount:
//   it issues the certificate into its Secret (owned by the configuration) and publishes the caBundle;
//   helm upgrade keeps it; helm uninstall leaves no webhook and no Secret, and a labelled pod is admitted;
// - Dagu's own chart (charts/dagu of Dagu v2.15.1), annotated through its podAnnotations value, applied to
//   the API server with the webhook registered: the ReplicaSet controller's UI pod is protected, in
//   standalone and distributed mode (the scheduler, coordinator and workers are left alone).
// What cannot run here: a Service-addressed webhook (no kube-proxy routes the API server to a ClusterIP)
// and cert-manager's controllers (they do not build from the module proxy). The webhook is therefore
// called by URL in these tests, and cert-manager's part is shown as the objects the API server accepts.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import YAML from "yaml";
import { SIDECAR_CONTAINER } from "../../src/operator/injection/mutate.ts";
import { webhookConfiguration } from "../../src/operator/injection/webhook-configuration.ts";
import { certManagerCrdsDir, cacheDir, ensureComponents, repoRoot } from "../../dev/components.ts";
import { freePort } from "../../dev/control-plane.ts";
import { registerWebhook, startInjectingOperator } from "../harness/injection.ts";
import { adminKubeConfig, kubectl, run, testKubeconfigPath, type RunResult } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { CLI } from "../harness/sidecar.ts";
import { create, secret, waitReady } from "../harness/resources.ts";

const CHART = join(repoRoot, "charts", "dagu-auth-operator");
const DAGU_CHART = join(cacheDir(), "src", "dagu", "charts", "dagu");
const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);

const helmHome = await mkdtemp(join(tmpdir(), "dagu-auth-helm-"));
process.on("exit", () => void rm(helmHome, { recursive: true, force: true }));
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") };
const helmBin = join(await ensureComponents(["helm"]), "helm");
const helm = (args: string[]): Promise<RunResult> => run(helmBin, args, undefined, helmEnv);
const kubeVersion = kc.makeApiClient(k8s.VersionApi).getCode().then((v) => v.gitVersion);

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}

async function template(chart: string, release: string, namespace: string, args: string[] = []): Promise<{ text: string; objects: Obj[] }> {
  const r = await helm(["template", release, chart, "--namespace", namespace, "--skip-crds", "--skip-tests", "--kube-version", await kubeVersion, ...args]);
  assert.equal(r.code, 0, `helm template ${chart} ${args.join(" ")}:\n${r.stderr}`);
  return { text: r.stdout, objects: YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj | null).filter((o): o is Obj => o !== null) };
}

const release = () => `i${randomBytes(3).toString("hex")}`;
const fullname = (rel: string) => `${rel}-dagu-auth-operator`;

function cleanupRelease(t: TestContext, rel: string): void {
  t.after(async () => {
    await kubectl(["delete", "clusterrole,clusterrolebinding,mutatingwebhookconfiguration", "-l", `app.kubernetes.io/instance=${rel}`, "--ignore-not-found"]);
  });
}

/** The webhooks without where they call: the rules every registration shares. */
function rulesOf(mwc: object): Record<string, unknown>[] {
  const webhooks = (mwc as { webhooks?: Record<string, unknown>[] }).webhooks ?? [];
  return webhooks.map((w) => Object.fromEntries(Object.entries(w).filter(([k]) => k !== "clientConfig" && k !== "namespaceSelector")));
}

test("the chart's webhook configuration has the product's rules; the cert-manager mode's objects pass cert-manager's CRDs", async (t) => {
  const rel = release();
  const plain = await template(CHART, rel, "ops");
  const mwc = plain.objects.find((o) => o.kind === "MutatingWebhookConfiguration")!;
  assert.equal(mwc.metadata.name, fullname(rel));
  assert.deepEqual(rulesOf(mwc), rulesOf(webhookConfiguration({ name: "x", clientConfig: { url: "https://x" } })));
  for (const w of (mwc as unknown as k8s.V1MutatingWebhookConfiguration).webhooks!) {
    assert.deepEqual(w.clientConfig.service, { name: `${fullname(rel)}-webhook`, namespace: "ops", path: "/inject", port: 443 });
    assert.equal(w.clientConfig.caBundle, undefined, "self-managed: the operator writes it (and upgrades do not erase it)");
  }
  // An install with an instance takes only the pods of its instance; the API server accepts its CEL.
  const blue = (await template(CHART, rel, "ops", ["--set", "operator.instance=blue"])).objects.find((o) => o.kind === "MutatingWebhookConfiguration")!;
  assert.deepEqual(rulesOf(blue), rulesOf(webhookConfiguration({ name: "x", clientConfig: { url: "https://x" }, instance: "blue" })));
  const blueDry = await kubectl(["create", "--dry-run=server", "-f", "-"], YAML.stringify(blue));
  assert.equal(blueDry.code, 0, blueDry.stderr);
  const service = plain.objects.find((o) => o.kind === "Service" && o.metadata.name === `${fullname(rel)}-webhook`) as Obj & { spec: { ports: unknown[] } };
  assert.deepEqual(service.spec.ports, [{ name: "webhook", port: 443, targetPort: "webhook", protocol: "TCP" }]);
  const deployment = plain.objects.find((o) => o.kind === "Deployment") as Obj & { spec: { template: { spec: k8s.V1PodSpec } } };
  const args = deployment.spec.template.spec.containers[0]!.args!;
  for (const a of ["--webhook-certificates=self-managed", `--webhook-configuration=${fullname(rel)}`, `--webhook-secret=${fullname(rel)}-webhook-tls`, `--webhook-host=${fullname(rel)}-webhook.ops.svc`]) assert.ok(args.includes(a), `args include ${a}`);
  const config = JSON.parse((plain.objects.find((o) => o.kind === "ConfigMap") as Obj & { data: Record<string, string> }).data["injection.json"]!) as { sidecar: { image: string } };
  assert.equal(config.sidecar.image, "ghcr.io/dagu-auth-operator/dagu-auth:0.1.0", "the operator's own image by default");

  const cm = await template(CHART, rel, "ops", ["--set", "injection.certificates=certManager"]);
  const cmMwc = cm.objects.find((o) => o.kind === "MutatingWebhookConfiguration")!;
  assert.equal(cmMwc.metadata.annotations?.["cert-manager.io/inject-ca-from"], `ops/${fullname(rel)}-webhook`, "cainjector fills the caBundle");
  assert.deepEqual(cm.objects.filter((o) => o.apiVersion === "cert-manager.io/v1").map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
    `Certificate/${fullname(rel)}-webhook`,
    `Certificate/${fullname(rel)}-webhook-ca`,
    `Issuer/${fullname(rel)}-selfsigned`,
    `Issuer/${fullname(rel)}-webhook-ca`,
  ]);
  const serving = cm.objects.find((o) => o.kind === "Certificate" && o.metadata.name === `${fullname(rel)}-webhook`) as Obj & { spec: { secretName: string; dnsNames: string[] } };
  assert.equal(serving.spec.secretName, `${fullname(rel)}-webhook-tls`);
  assert.deepEqual(serving.spec.dnsNames, [`${fullname(rel)}-webhook.ops.svc`, `${fullname(rel)}-webhook.ops.svc.cluster.local`]);
  const cmArgs = (cm.objects.find((o) => o.kind === "Deployment") as Obj & { spec: { template: { spec: k8s.V1PodSpec } } }).spec.template.spec.containers[0]!.args!;
  assert.ok(cmArgs.includes("--webhook-certificates=cert-manager") && !cmArgs.some((a) => a.startsWith("--webhook-configuration")));
  const role = cm.objects.find((o) => o.kind === "ClusterRole") as Obj & { rules: { resources: string[] }[] };
  assert.ok(!role.rules.some((r) => r.resources.includes("mutatingwebhookconfigurations")), "with cert-manager the operator never touches the configuration");
  const own = await template(CHART, rel, "ops", ["--set", "injection.certificates=certManager", "--set", "injection.certManager.issuerRef.name=corp-ca", "--set", "injection.certManager.issuerRef.kind=ClusterIssuer"]);
  assert.deepEqual(own.objects.filter((o) => o.apiVersion === "cert-manager.io/v1").map((o) => o.kind), ["Certificate"], "an issuer of your own: only the serving Certificate");

  const off = await template(CHART, rel, "ops", ["--set", "injection.enabled=false"]);
  assert.deepEqual(off.objects.filter((o) => ["MutatingWebhookConfiguration", "ConfigMap"].includes(o.kind) || o.metadata.name.endsWith("-webhook")), [], "injection off: no webhook parts");
  const offArgs = (off.objects.find((o) => o.kind === "Deployment") as Obj & { spec: { template: { spec: k8s.V1PodSpec } } }).spec.template.spec.containers[0]!.args!;
  assert.ok(!offArgs.some((a) => a.startsWith("--injection") || a.startsWith("--webhook")));

  // The real cert-manager CRDs accept the objects (server-side dry run in a namespace of this test).
  const crds = await kubectl(["apply", "--server-side", "-f", await certManagerCrdsDir()]);
  assert.equal(crds.code, 0, crds.stderr);
  await kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io"]);
  const ns = await testNamespace(t, "injchart");
  const inNs = await template(CHART, rel, ns, ["--set", "injection.certificates=certManager"]);
  const docs = inNs.objects.filter((o) => o.apiVersion === "cert-manager.io/v1").map((o) => YAML.stringify(o)).join("---\n");
  const dry = await kubectl(["apply", "--dry-run=server", "-n", ns, "-f", "-"], docs);
  assert.equal(dry.code, 0, dry.stderr);

  // Bad values are refused by the schema, naming the value.
  for (const [args, expect] of [
    [["--set", "injection.certificates=vault"], /at '\/injection\/certificates': value must be one of 'selfManaged', 'certManager'/],
    [["--set", "injection.port=443"], /at '\/injection\/port': minimum: got 443, want 1,?024/],
    [["--set", "injection.sidecar.imagePullPolicy=Sometimes"], /at '\/injection\/sidecar\/imagePullPolicy'/],
    [["--set", "injection.sidecar.memory=1Gi"], /additional properties 'memory' not allowed/],
  ] as const) {
    const r = await helm(["template", "bad", CHART, "--kube-version", await kubeVersion, ...args]);
    assert.notEqual(r.code, 0, `${args.join(" ")} was accepted`);
    assert.match(r.stderr, expect);
  }
});

test("helm install: the operator, run with the chart's arguments as the chart's ServiceAccount, publishes certificate and caBundle; upgrade keeps them; uninstall leaves no webhook", async (t) => {
  const ns = await testNamespace(t, "injchart");
  const workloads = await testNamespace(t, "injchart-dagu");
  const rel = release();
  cleanupRelease(t, rel);
  const kube = ["--kubeconfig", testKubeconfigPath(), "--namespace", ns];
  // Limited to this test's namespace: no other test's labelled pod may meet this webhook.
  const selector = ["--set-json", `injection.namespaceSelector={"matchLabels":{"kubernetes.io/metadata.name":"${workloads}"}}`];
  const installed = await helm(["install", rel, CHART, ...kube, "--skip-crds", ...selector]);
  assert.equal(installed.code, 0, installed.stderr);
  const name = fullname(rel);
  await admission.readMutatingWebhookConfiguration({ name });
  await core.readNamespacedService({ name: `${name}-webhook`, namespace: ns });

  // The operator as the Deployment runs it: its args (the kubelet's $(POD_NAMESPACE) expanded), the
  // ConfigMap as its --injection-config, a token of the chart's ServiceAccount; only the listeners on loopback.
  const { objects } = await template(CHART, rel, ns, selector);
  const podSpec = (objects.find((o) => o.kind === "Deployment") as Obj & { spec: { template: { spec: k8s.V1PodSpec } } }).spec.template.spec;
  const dir = await mkdtemp(join(tmpdir(), "dagu-auth-chart-op-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configFile = join(dir, "injection.json");
  await writeFile(configFile, (objects.find((o) => o.kind === "ConfigMap") as Obj & { data: Record<string, string> }).data["injection.json"]!);
  const token = await core.createNamespacedServiceAccountToken({ name: podSpec.serviceAccountName!, namespace: ns, body: { spec: { expirationSeconds: 3600, audiences: [] } } });
  const cluster = kc.getCurrentCluster()!;
  const opKc = new k8s.KubeConfig();
  opKc.loadFromOptions({ clusters: [{ name: "c", server: cluster.server, caData: cluster.caData }], users: [{ name: "u", token: token.status!.token }], contexts: [{ name: "c", cluster: "c", user: "u" }], currentContext: "c" });
  await writeFile(join(dir, "kubeconfig"), opKc.exportConfig());
  const args = podSpec.containers[0]!.args!.map((a) =>
    a.replace("$(POD_NAMESPACE)", ns).replace(/^--injection-config=.*/, `--injection-config=${configFile}`).replace(/^--health-address=.*/, `--health-address=127.0.0.1:${0}`),
  );
  const webhookPort = await freePort();
  const operator = spawn(process.execPath, [CLI, "operator", ...args, `--webhook-address=127.0.0.1:${webhookPort}`, "--kubeconfig", join(dir, "kubeconfig")], { env: { PATH: process.env.PATH ?? "", POD_NAMESPACE: ns }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  operator.stdout.on("data", (d: Buffer) => (out += d.toString()));
  operator.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const stopped = new Promise((r) => operator.once("exit", r));
  t.after(async () => {
    operator.kill("SIGTERM");
    await stopped;
  });

  const published = await eventually("the operator published the caBundle into both webhooks of the chart's configuration", async () => {
    const mwc = await admission.readMutatingWebhookConfiguration({ name });
    return mwc.webhooks!.every((w) => w.clientConfig.caBundle) ? mwc : undefined;
  }, 60_000, 250).catch((err: unknown) => assert.fail(`${String(err)}\n${out.slice(-3000)}`));
  const tls = await core.readNamespacedSecret({ name: `${name}-webhook-tls`, namespace: ns });
  assert.equal(tls.type, "kubernetes.io/tls");
  assert.deepEqual(tls.metadata!.ownerReferences?.map((r) => [r.kind, r.name, r.uid]), [["MutatingWebhookConfiguration", name, published.metadata!.uid]]);
  const cert = new X509Certificate(Buffer.from(tls.data!["tls.crt"]!, "base64"));
  assert.equal(cert.subjectAltName, `DNS:${name}-webhook.${ns}.svc, DNS:${name}-webhook.${ns}.svc.cluster.local`);
  const ca = new X509Certificate(Buffer.from(published.webhooks![0]!.clientConfig.caBundle!, "base64"));
  assert.ok(cert.verify(ca.publicKey), "the published caBundle verifies the serving certificate");
  // The webhook answers on its port with that certificate (what the Service would route to).
  const probe = await fetch(`https://127.0.0.1:${webhookPort}/inject`).catch((e: Error) => e);
  assert.ok(probe instanceof Error && /self-signed|certificate/i.test(String(probe.cause ?? probe.message)), "TLS with the operator's own CA");
  assert.doesNotMatch(out, /forbidden/i, "no request of the operator was forbidden");

  // Stop the operator, then upgrade: the caBundle the chart does not carry stays.
  operator.kill("SIGTERM");
  await stopped;
  const upgraded = await helm(["upgrade", rel, CHART, ...kube, "--skip-crds", ...selector, "--set", "operator.logLevel=debug"]);
  assert.equal(upgraded.code, 0, upgraded.stderr);
  const after = await admission.readMutatingWebhookConfiguration({ name });
  assert.deepEqual(after.webhooks!.map((w) => w.clientConfig.caBundle), published.webhooks!.map((w) => w.clientConfig.caBundle), "helm upgrade kept the caBundle");

  const uninstalled = await helm(["uninstall", rel, ...kube, "--wait", "--timeout", "60s"]);
  assert.equal(uninstalled.code, 0, uninstalled.stderr);
  await assert.rejects(admission.readMutatingWebhookConfiguration({ name }), "no webhook configuration left");
  const left = await admission.listMutatingWebhookConfiguration({ labelSelector: `app.kubernetes.io/instance=${rel}` });
  assert.equal(left.items.length, 0);
  await eventually("the certificate Secret is collected with its owner", async () => (await core.readNamespacedSecret({ name: `${name}-webhook-tls`, namespace: ns }).then(() => false, () => true)) || undefined);
  // Nothing blocks pods any more: a labelled pod is admitted (as written: no webhook is there to inject).
  const pod = await core.createNamespacedPod({ namespace: workloads, body: { metadata: { name: "after", labels: { "auth.dagu.dev/inject": "dagu" } }, spec: { containers: [{ name: "dagu", image: "ghcr.io/dagucloud/dagu:2.15.1" }] } } });
  assert.deepEqual(pod.spec!.containers.map((c) => c.name), ["dagu"]);
});

/** Dagu's chart with the annotation set through its values, applied; the pods its Deployments make. */
async function applyDaguChart(ns: string, extra: string[]): Promise<k8s.V1Pod[]> {
  const { text, objects } = await template(DAGU_CHART, "dg", ns, ["--set-string", "podAnnotations.auth\\.dagu\\.dev/inject=dagu", ...extra]);
  const deployments = objects.filter((o) => o.kind === "Deployment").length;
  const applied = await kubectl(["apply", "-n", ns, "-f", "-"], text);
  assert.equal(applied.code, 0, applied.stderr);
  return eventually(`the ReplicaSet controllers created ${deployments} pods`, async () => {
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: "app.kubernetes.io/instance=dg" })).items;
    return pods.length === deployments ? pods : undefined;
  }, 60_000, 250);
}

async function daguAuthReady(ns: string): Promise<void> {
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await create(ns, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  await waitReady(ns, "daguauths", "dagu", "Materialized");
}

test("Dagu's own chart, annotated through its values: the UI pod comes out protected", async (t) => {
  const ns = await testNamespace(t, "injdagu");
  const webhook = await registerWebhook(t, ns);
  const op = await startInjectingOperator(t, webhook);
  await daguAuthReady(ns);
  await eventually("the webhook is ready", async () => op.injection!.server.hasCertificate && (await admission.readMutatingWebhookConfiguration({ name: webhook.name })).webhooks!.every((w) => w.clientConfig.caBundle) ? true : undefined);

  const [ui] = await applyDaguChart(ns, []);
  const spec = ui!.spec!;
  assert.deepEqual(spec.containers.map((c) => c.name), ["ui", SIDECAR_CONTAINER]);
  const [dagu, sidecar] = spec.containers as [k8s.V1Container, k8s.V1Container];
  assert.deepEqual(dagu.args, ["dagu", "start-all", "--config", "/etc/dagu/dagu.yaml"], "Dagu's arguments untouched");
  const env = Object.fromEntries((dagu.env ?? []).map((e) => [e.name, e.value]));
  assert.deepEqual([env.DAGU_HOST, env.DAGU_PORT, env.DAGU_AUTH_MODE, env.DAGU_HOME], ["127.0.0.1", "18080", "none", "/data"]);
  assert.deepEqual({ ...sidecar.ports![0] }, { name: "http", containerPort: 8080, protocol: "TCP" }, "the chart's Service (targetPort http) reaches the sidecar");
  assert.equal(dagu.ports, undefined);
  for (const probe of [dagu.livenessProbe!, dagu.readinessProbe!]) assert.deepEqual([probe.httpGet!.path, probe.httpGet!.port], ["/dagu/healthz", 9090]);
  assert.equal(dagu.livenessProbe!.initialDelaySeconds, 30, "the chart's timings are kept");
  assert.equal(spec.serviceAccountName, "dagu-sidecar", "the chart's ServiceAccount dg-dagu is replaced");
  assert.equal(spec.automountServiceAccountToken, false);
  assert.deepEqual(dagu.volumeMounts!.map((m) => m.name).sort(), ["config", "data"], "Dagu keeps its volumes and gets no token");
  const service = await core.readNamespacedService({ name: "dg-dagu-ui", namespace: ns });
  assert.equal(service.spec!.ports![0]!.targetPort, "http");

  // A server-side dry run of the UI pod tells the user what was replaced, as a warning.
  const { objects } = await template(DAGU_CHART, "dg", ns, ["--set-string", "podAnnotations.auth\\.dagu\\.dev/inject=dagu"]);
  const template_ = (objects.find((o) => o.kind === "Deployment") as Obj & { spec: { template: k8s.V1PodTemplateSpec } }).spec.template;
  const dry = await kubectl(["create", "--dry-run=server", "-n", ns, "-o", "json", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { ...template_.metadata, name: "dry" }, spec: template_.spec }));
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /serviceAccountName dg-dagu replaced by dagu-sidecar/);
  assert.deepEqual((JSON.parse(dry.stdout) as k8s.V1Pod).spec!.containers.map((c) => c.name), ["ui", SIDECAR_CONTAINER]);
});

test("Dagu's chart in distributed mode: the server pod is protected; scheduler, coordinator and workers serve no UI and are left as they are", async (t) => {
  const ns = await testNamespace(t, "injdagu");
  const webhook = await registerWebhook(t, ns);
  const op = await startInjectingOperator(t, webhook);
  await daguAuthReady(ns);
  await eventually("the webhook is ready", async () => op.injection!.server.hasCertificate && (await admission.readMutatingWebhookConfiguration({ name: webhook.name })).webhooks!.every((w) => w.clientConfig.caBundle) ? true : undefined);
  const pods = await applyDaguChart(ns, ["--set", "deploymentMode=distributed", "--set", "persistence.accessMode=ReadWriteMany", "--set", "workerPools.general.replicas=1"]);
  const byComponent = new Map(pods.map((p) => [p.metadata!.labels!["app.kubernetes.io/component"] ?? "", p]));
  const server = byComponent.get("ui")!;
  assert.deepEqual(server.spec!.containers.map((c) => c.name), ["ui", SIDECAR_CONTAINER]);
  assert.deepEqual(server.spec!.containers[0]!.args!.slice(0, 2), ["dagu", "server"]);
  for (const [component, pod] of byComponent) {
    if (component === "ui") continue;
    assert.ok(!pod.spec!.containers.some((c) => c.name === SIDECAR_CONTAINER), `${component} is left alone`);
    assert.notEqual(pod.spec!.serviceAccountName, "dagu-sidecar", `${component} does not run as the sidecar's ServiceAccount`);
  }
  assert.ok(byComponent.size >= 4, `ui, scheduler, coordinator and a worker (${[...byComponent.keys()].join(", ")})`);
});
