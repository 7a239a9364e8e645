// The Helm chart (charts/dagu-auth-operator) with the real helm (v3.21) on the real control plane:
// it lints, renders what src/ says (RBAC from src/operator/rbac.ts), is accepted by the API server
// and admitted under the "restricted" Pod Security Standard, refuses bad values with a message that
// names the value, installs and uninstalls with helm, and its ServiceAccount and RBAC are enough for
// the operator to make a DaguAuth and a DaguUser Ready.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import pino from "pino";
import YAML from "yaml";
import { injectionClusterRules, OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACE_RULES, type PolicyRule } from "../../src/operator/rbac.ts";
import { startOperator } from "../../src/operator/operator.ts";
import { ensureComponents, repoRoot } from "../../dev/components.ts";
import { adminKubeConfig, kubectl, run, testKubeconfigPath, toKubeConfig, type RunResult } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { create, secret, waitReady } from "../harness/resources.ts";

const CHART = join(repoRoot, "charts", "dagu-auth-operator");
const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);

// helm keeps its caches and settings in a directory of this run, not in the user's home.
const helmHome = await mkdtemp(join(tmpdir(), "dagu-auth-helm-"));
process.on("exit", () => rmSync(helmHome, { recursive: true, force: true }));
const helmEnv = { ...process.env, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") };

// The global setup builds the control plane's components; helm is built here on first use (~2 min, cached).
const helmBin = join(await ensureComponents(["helm"]), "helm");

function helm(args: string[]): Promise<RunResult> {
  return run(helmBin, args, undefined, helmEnv);
}

/** `helm template` for the server's Kubernetes version (a helm built with `go install` assumes 1.20). */
let serverVersion: Promise<string> | undefined;
async function template(release: string, namespace: string, args: string[] = []): Promise<RunResult> {
  serverVersion ??= kc.makeApiClient(k8s.VersionApi).getCode().then((v) => v.gitVersion);
  return helm(["template", release, CHART, "--namespace", namespace, "--skip-crds", "--kube-version", await serverVersion, ...args]);
}

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

async function render(release: string, namespace: string, args: string[] = []): Promise<{ text: string; objects: Obj[] }> {
  const r = await template(release, namespace, args);
  assert.equal(r.code, 0, `helm template ${args.join(" ")} failed:\n${r.stderr}`);
  const objects = YAML.parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
  return { text: r.stdout, objects };
}

const release = () => `h${randomBytes(3).toString("hex")}`;
const fullname = (rel: string) => `${rel}-dagu-auth-operator`;

/** Cluster-scoped objects outlive the test namespace: delete them by the release's instance label. */
function cleanupClusterScoped(t: TestContext, rel: string): void {
  t.after(async () => {
    await kubectl(["delete", "clusterrole,clusterrolebinding,mutatingwebhookconfiguration", "-l", `app.kubernetes.io/instance=${rel}`, "--ignore-not-found"]);
  });
}

async function restrictedNamespace(t: TestContext, prefix: string): Promise<string> {
  const ns = await testNamespace(t, prefix);
  const r = await kubectl(["label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted"]);
  assert.equal(r.code, 0, r.stderr);
  return ns;
}

test("helm lint passes, with the defaults and with every optional part on", async () => {
  for (const args of [[], ["--set", "serviceMonitor.enabled=true"], ["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"], ["--set", "podAntiAffinityPreset=hard", "--set", "zoneSpread=false"], ["--set", "injection.certificates=certManager"], ["--set", "injection.enabled=false"]]) {
    const r = await helm(["lint", "--strict", CHART, ...args]);
    assert.equal(r.code, 0, `helm lint ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  }
});

test("the rendered chart follows Helm's conventions, src/operator/rbac.ts and the restricted Pod Security Standard", async () => {
  const rel = release();
  const { objects } = await render(rel, "ops");
  const kinds = objects.map((o) => o.kind).sort();
  // The injection webhook's parts (ConfigMap, MutatingWebhookConfiguration, its Service): injection-chart.test.ts.
  assert.deepEqual(kinds, ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "MutatingWebhookConfiguration", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "Service", "ServiceAccount"]);
  for (const o of objects) {
    const labels = o.metadata.labels ?? {};
    for (const key of ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"]) {
      assert.ok(labels[key], `${o.kind} has the label ${key}`);
    }
    assert.equal(labels["app.kubernetes.io/instance"], rel);
    if (!o.kind.startsWith("Cluster") && o.kind !== "MutatingWebhookConfiguration") assert.equal(o.metadata.namespace, "ops", `${o.kind} is in the release namespace`);
  }
  const byKind = (kind: string) => objects.find((o) => o.kind === kind)!;
  // Rules exactly as the single source says (the test harness runs the operator under the same).
  const asPlain = (rules: PolicyRule[]) => JSON.parse(JSON.stringify(rules)) as unknown;
  assert.deepEqual(byKind("ClusterRole")["rules"], asPlain([...OPERATOR_CLUSTER_RULES, ...injectionClusterRules(fullname(rel))]));
  assert.deepEqual(byKind("Role")["rules"], asPlain(OPERATOR_NAMESPACE_RULES));

  const deployment = byKind("Deployment") as Obj & { spec: { replicas: number; template: { spec: k8s.V1PodSpec } } };
  assert.equal(deployment.spec.replicas, 2);
  const pod = deployment.spec.template.spec;
  assert.equal(pod.serviceAccountName, fullname(rel));
  assert.equal(pod.securityContext?.runAsNonRoot, true);
  assert.equal(pod.securityContext?.runAsUser, 65532);
  assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault");
  assert.ok(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.length, "soft pod anti-affinity");
  assert.equal(pod.topologySpreadConstraints?.[0]?.whenUnsatisfiable, "ScheduleAnyway", "soft zone spread");
  const [container] = pod.containers;
  assert.ok(container);
  assert.deepEqual(container.command, ["dagu-auth", "operator"]);
  for (const arg of ["--health-address=:8081", "--leader-elect", "--leader-election-namespace=$(POD_NAMESPACE)"]) assert.ok(container.args?.includes(arg), `args include ${arg}`);
  assert.equal(container.env?.find((e) => e.name === "POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath, "metadata.namespace");
  assert.equal(container.livenessProbe?.httpGet?.path, "/healthz");
  assert.equal(container.readinessProbe?.httpGet?.path, "/readyz");
  assert.deepEqual(container.securityContext?.capabilities?.drop, ["ALL"]);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
  assert.ok(container.resources?.requests?.["memory"]);
  assert.equal((byKind("PodDisruptionBudget") as Obj & { spec: { minAvailable: number } }).spec.minAvailable, 1);
  const service = objects.find((o) => o.kind === "Service" && o.metadata.name === fullname(rel)) as Obj & { spec: { ports: { name: string; port: number }[] } };
  assert.deepEqual(service.spec.ports.map((p) => [p.name, p.port]), [["metrics", 8081]]);

  // One replica: no PodDisruptionBudget (it would block every drain). ServiceMonitor only on request.
  const single = await render(rel, "ops", ["--set", "replicaCount=1"]);
  assert.ok(!single.objects.some((o) => o.kind === "PodDisruptionBudget"));
  const monitored = await render(rel, "ops", ["--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prom"]);
  const monitor = monitored.objects.find((o) => o.kind === "ServiceMonitor") as Obj & { spec: { endpoints: { port: string; path: string }[] } };
  assert.ok(monitor, "a ServiceMonitor when serviceMonitor.enabled");
  assert.equal(monitor.metadata.labels?.["release"], "prom");
  assert.deepEqual(monitor.spec.endpoints.map((e) => [e.port, e.path]), [["metrics", "/metrics"]]);
  const noLeader = await render(rel, "ops", ["--set", "replicaCount=1", "--set", "leaderElection.enabled=false"]);
  assert.ok(!noLeader.objects.some((o) => o.kind === "Role"), "no leases Role without leader election");
  assert.ok(container.args?.includes("--lease-name=dagu-auth-operator") && !container.args.some((a) => a.startsWith("--instance")), "the default install: no instance");
  const blue = await render(rel, "ops", ["--set", "operator.instance=blue"]);
  const blueArgs = (blue.objects.find((o) => o.kind === "Deployment") as Obj & { spec: { template: { spec: k8s.V1PodSpec } } }).spec.template.spec.containers[0]!.args ?? [];
  for (const arg of ["--instance=blue", "--lease-name=dagu-auth-operator-blue"]) assert.ok(blueArgs.includes(arg), `an instance: ${arg} in ${blueArgs.join(" ")}`);
  const pinned = await render(rel, "ops", ["--set", `image.digest=sha256:${"a".repeat(64)}`]);
  assert.match(pinned.text, new RegExp(`image: ".+@sha256:${"a".repeat(64)}"`));
});

test("the rendered chart is accepted by the API server and its pods are admitted as restricted", async (t) => {
  const ns = await restrictedNamespace(t, "helm");
  const rel = release();
  cleanupClusterScoped(t, rel);
  const { text } = await render(rel, ns);
  const dry = await kubectl(["apply", "--dry-run=server", "-f", "-"], text);
  assert.equal(dry.code, 0, dry.stderr);
  assert.doesNotMatch(dry.stderr, /would violate PodSecurity/, "no Pod Security warning");
  const applied = await kubectl(["apply", "-f", "-"], text);
  assert.equal(applied.code, 0, applied.stderr);
  assert.doesNotMatch(applied.stderr, /Warning/);
  // The ReplicaSet controller creates the pods; admission (Pod Security "restricted" enforced, the
  // ServiceAccount exists) lets them in. There is no scheduler or kubelet here, so they stay Pending.
  const pods = await eventually("the Deployment's 2 pods are admitted", async () => {
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: `app.kubernetes.io/instance=${rel}` });
    return list.items.length === 2 ? list.items : undefined;
  }, 30_000, 200);
  for (const p of pods) assert.equal(p.spec?.serviceAccountName, fullname(rel));
  const events = await kubectl(["get", "events", "-n", ns, "--field-selector", "reason=FailedCreate", "-o", "name"]);
  assert.equal(events.stdout.trim(), "", "no pod was refused");
});

test("bad values are refused by values.schema.json with a message that names the value", async () => {
  const cases: { what: string; args: string[]; expect: RegExp }[] = [
    { what: "negative replicas", args: ["--set", "replicaCount=-1"], expect: /at '\/replicaCount': minimum: got -1, want 0/ },
    { what: "an unknown key (a typo)", args: ["--set", "replicas=3"], expect: /additional properties 'replicas' not allowed/ },
    { what: "a wrong type", args: ["--set-string", "replicaCount=two"], expect: /at '\/replicaCount': got string, want integer/ },
    { what: "an unknown log level", args: ["--set", "operator.logLevel=verbose"], expect: /at '\/operator\/logLevel': value must be one of 'fatal', 'error', 'warn', 'info', 'debug', 'trace'/ },
    { what: "an unknown key below image", args: ["--set", "image.name=x"], expect: /at '\/image': additional properties 'name' not allowed/ },
    { what: "a privileged health port", args: ["--set", "operator.healthPort=80"], expect: /at '\/operator\/healthPort': minimum: got 80, want 1,?024/ },
    { what: "a malformed digest", args: ["--set", "image.digest=sha256:abc"], expect: /at '\/image\/digest': 'sha256:abc' does not match pattern/ },
    { what: "a malformed memory limit", args: ["--set", "resources.limits.memory=lots"], expect: /at '\/resources\/limits\/memory': 'lots' does not match pattern/ },
    { what: "a wrong pull policy", args: ["--set", "image.pullPolicy=Sometimes"], expect: /value must be one of 'Always', 'IfNotPresent', 'Never'/ },
    { what: "an instance that is not a DNS label", args: ["--set", "operator.instance=Blue_1"], expect: /at '\/operator\/instance': 'Blue_1' does not match pattern/ },
    { what: "two replicas without leader election", args: ["--set", "leaderElection.enabled=false"], expect: /replicaCount is 2 but leaderElection\.enabled is false/ },
    { what: "no ServiceAccount to run as", args: ["--set", "serviceAccount.create=false"], expect: /serviceAccount\.name is required when serviceAccount\.create is false/ },
  ];
  for (const c of cases) {
    const r = await template("bad", "ops", c.args);
    assert.notEqual(r.code, 0, `${c.what}: accepted, but should have been refused`);
    assert.match(r.stderr, c.expect, `${c.what}: unexpected message:\n${r.stderr}`);
  }
});

test("helm install and uninstall work, and NOTES say what to apply next", async (t) => {
  const ns = await restrictedNamespace(t, "helm-install");
  const rel = release();
  cleanupClusterScoped(t, rel);
  const kube = ["--kubeconfig", testKubeconfigPath(), "--namespace", ns];
  const installed = await helm(["install", rel, CHART, ...kube, "--skip-crds"]);
  assert.equal(installed.code, 0, installed.stderr);
  for (const next of ["kind: DaguAuth", "auth.dagu.dev/inject: dagu", "dagu-with-sidecar.yaml", "kubectl -n dagu get dagu", "status.serviceAccountName"]) {
    assert.ok(installed.stdout.includes(next), `NOTES mention ${next}:\n${installed.stdout}`);
  }
  const status = await helm(["status", rel, ...kube]);
  assert.match(status.stdout, /STATUS: deployed/);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  await rbac.readClusterRole({ name: fullname(rel) });
  const uninstalled = await helm(["uninstall", rel, ...kube, "--wait", "--timeout", "60s"]);
  assert.equal(uninstalled.code, 0, uninstalled.stderr);
  await assert.rejects(rbac.readClusterRole({ name: fullname(rel) }), "the ClusterRole goes with the release");
});

/** Which (resource, verb) pairs a ServiceAccount may use, by SubjectAccessReview. */
async function allowed(user: string, namespace: string | undefined, group: string, resource: string, verb: string): Promise<boolean> {
  const [res, subresource] = resource.split("/");
  const review = await kc.makeApiClient(k8s.AuthorizationV1Api).createSubjectAccessReview({
    body: { spec: { user, resourceAttributes: { group, resource: res, verb, ...(subresource ? { subresource } : {}), ...(namespace ? { namespace } : {}) } } },
  });
  return review.status?.allowed === true;
}

/** A TokenRequest token of the chart's ServiceAccount: the credentials a pod of the Deployment would get. */
/** The operator as the chart runs it: its ServiceAccount's token, leader election on the chart's Lease in the release namespace; its log lines go to `logs`. */
async function startChartOperator(ns: string, rel: string, logs: string[], namespaces?: string[]) {
  return startOperator({
    kubeConfig: await chartKubeConfig(ns, rel),
    logger: pino({ level: "debug" }, { write: (line: string) => void logs.push(line) }),
    leaderElection: { namespace: ns, name: "dagu-auth-operator", leaseDurationSeconds: 4, renewDeadlineMs: 3000, retryPeriodMs: 500 },
    resyncPeriodMs: 0,
    ...(namespaces ? { namespaces } : {}),
  });
}

async function chartKubeConfig(ns: string, rel: string) {
  const token = await core.createNamespacedServiceAccountToken({ name: fullname(rel), namespace: ns, body: { spec: { expirationSeconds: 3600, audiences: [] } } });
  const cluster = kc.getCurrentCluster()!;
  const operatorKc = new k8s.KubeConfig();
  operatorKc.loadFromOptions({
    clusters: [{ name: "local", server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: "chart", token: token.status!.token }],
    contexts: [{ name: "local", cluster: "local", user: "chart" }],
    currentContext: "local",
  });
  return toKubeConfig(operatorKc);
}

test("the operator makes a DaguAuth and a DaguUser Ready under the chart's ServiceAccount and RBAC alone", async (t) => {
  const ns = await restrictedNamespace(t, "helm-op");
  const workloads = await testNamespace(t, "helm-dagu");
  const rel = release();
  cleanupClusterScoped(t, rel);
  const { text } = await render(rel, ns);
  const applied = await kubectl(["apply", "-f", "-"], text);
  assert.equal(applied.code, 0, applied.stderr);

  // Least privilege: exactly what src/operator/rbac.ts grants, the Lease only in the release namespace.
  const user = `system:serviceaccount:${ns}:${fullname(rel)}`;
  for (const rule of OPERATOR_CLUSTER_RULES) {
    for (const resource of rule.resources) {
      for (const verb of rule.verbs) assert.ok(await allowed(user, undefined, rule.apiGroups[0]!, resource, verb), `${verb} ${resource} cluster-wide`);
    }
  }
  assert.ok(await allowed(user, ns, "coordination.k8s.io", "leases", "update"), "update its Lease");
  assert.ok(!(await allowed(user, workloads, "coordination.k8s.io", "leases", "update")), "no Leases outside the release namespace");
  for (const [group, resource, verb] of [["auth.dagu.dev", "daguauths", "update"], ["auth.dagu.dev", "daguusers", "delete"], ["rbac.authorization.k8s.io", "roles", "escalate"], ["rbac.authorization.k8s.io", "clusterroles", "bind"], ["", "pods", "list"]] as const) {
    assert.ok(!(await allowed(user, workloads, group, resource, verb)), `no ${verb} on ${resource}`);
  }

  const logs: string[] = [];
  const operator = await startChartOperator(ns, rel, logs);
  try {
    await secret(workloads, "admin-pw", { password: "chart-admin-password" });
    await create(workloads, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
    await create(workloads, "daguusers", "DaguUser", "alice", { authRef: { name: "dagu" }, username: "alice", role: "viewer", password: { generate: { secretName: "alice-password" } } });
    const auth = await waitReady(workloads, "daguauths", "dagu", "Materialized");
    await waitReady(workloads, "daguusers", "alice", "Materialized");
    assert.equal(auth.status?.["users"], 2);
    assert.equal(auth.status?.["serviceAccountName"], "dagu-sidecar");
    // What the sidecar's pod needs was created with these permissions too.
    await core.readNamespacedServiceAccount({ name: "dagu-sidecar", namespace: workloads });
    await core.readNamespacedSecret({ name: "alice-password", namespace: workloads });
    const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: "dagu-auth-operator", namespace: ns });
    assert.ok(lease.spec?.holderIdentity, "the operator led through the chart's Lease");
    await eventually("an Event about the DaguUser", async () => {
      const r = await kubectl(["get", "events", "-n", workloads, "--field-selector", "involvedObject.name=alice", "-o", "jsonpath={.items[*].reason}"]);
      return r.stdout.includes("Materialized") || undefined;
    });
    assert.doesNotMatch(logs.join("\n"), /forbidden/i, "no request of the operator was forbidden");
  } finally {
    await operator.stop();
  }
});

test("a namespaced install (watchNamespaces): Roles only there, nothing cluster-wide; an object elsewhere is left alone", async (t) => {
  const ns = await restrictedNamespace(t, "helm-nsop");
  const workloads = await testNamespace(t, "helm-watched");
  const elsewhere = await testNamespace(t, "helm-elsewhere");
  const rel = release();
  cleanupClusterScoped(t, rel);
  const { text, objects } = await render(rel, ns, ["--set", `watchNamespaces={${workloads}}`, "--set", "injection.enabled=false"]);
  assert.deepEqual(objects.filter((o) => o.kind.startsWith("Cluster")).map((o) => o.kind), [], "no ClusterRole, no ClusterRoleBinding");
  const applied = await kubectl(["apply", "-f", "-"], text);
  assert.equal(applied.code, 0, applied.stderr);

  const user = `system:serviceaccount:${ns}:${fullname(rel)}`;
  for (const rule of OPERATOR_CLUSTER_RULES) {
    for (const resource of rule.resources) {
      for (const verb of rule.verbs) {
        assert.ok(await allowed(user, workloads, rule.apiGroups[0]!, resource, verb), `${verb} ${resource} in the watched namespace`);
        assert.ok(!(await allowed(user, elsewhere, rule.apiGroups[0]!, resource, verb)), `no ${verb} ${resource} in another namespace`);
        assert.ok(!(await allowed(user, undefined, rule.apiGroups[0]!, resource, verb)), `no ${verb} ${resource} cluster-wide`);
      }
    }
  }

  const logs: string[] = [];
  const operator = await startChartOperator(ns, rel, logs, [workloads]);
  try {
    for (const where of [elsewhere, workloads]) {
      await secret(where, "admin-pw", { password: "chart-admin-password" });
      await create(where, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
      await create(where, "daguusers", "DaguUser", "alice", { authRef: { name: "dagu" }, username: "alice", role: "viewer", password: { generate: { secretName: "alice-password" } } });
    }
    await waitReady(workloads, "daguauths", "dagu", "Materialized");
    await waitReady(workloads, "daguusers", "alice", "Materialized");
    await core.readNamespacedSecret({ name: "dagu-credentials", namespace: workloads });
    // The same objects in a namespace outside the list: no status, no Secret, no ServiceAccount, no Event.
    await new Promise((r) => setTimeout(r, 2000));
    const untouched = await kubectl(["get", "daguauths,daguusers", "-n", elsewhere, "-o", "jsonpath={range .items[*]}{.metadata.name}={.status}{\"\\n\"}{end}"]);
    assert.equal(untouched.stdout.trim(), "dagu=\nalice=", "no status written outside the watched namespace");
    const secrets = await kubectl(["get", "secrets,serviceaccounts,roles,events", "-n", elsewhere, "-o", "name"]);
    assert.deepEqual(secrets.stdout.trim().split("\n").filter((n) => !n.startsWith("serviceaccount/default")).sort(), ["secret/admin-pw"], "nothing written outside the watched namespace");
    assert.doesNotMatch(logs.join("\n"), /forbidden/i, "no request of the operator was forbidden");
  } finally {
    await operator.stop();
  }
});
