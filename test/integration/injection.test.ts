// Sidecar injection on the real control plane: the operator's webhook registered with the real
// kube-apiserver over TLS on 127.0.0.1, pods created through the API (a Deployment's, by the real
// ReplicaSet controller; there is no kubelet, so pods stay Pending and their mutated spec is what is
// read), refusals with their reason, an unlabelled pod never sent to the webhook (and admitted while
// the webhook is down), idempotence on the server, and certificate rotation without a failed admission.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { SIDECAR_CONTAINER, TOKEN_VOLUME } from "../../src/operator/injection/mutate.ts";
import { daguContainer, labelledPod, registerWebhook, startInjectingOperator, TEST_SIDECAR_IMAGE } from "../harness/injection.ts";
import { adminKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { OPERATOR_NAMESPACE } from "../../dev/operator-account.ts";
import { create, secret, waitReady } from "../harness/resources.ts";

const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const apps = kc.makeApiClient(k8s.AppsV1Api);
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);

async function daguAuth(ns: string, name = "dagu", spec: Record<string, unknown> = {}): Promise<void> {
  await secret(ns, `${name}-admin-pw`, { password: "admin-password-1" });
  await create(ns, "daguauths", "DaguAuth", name, { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: `${name}-admin-pw`, key: "password" } } }, ...spec });
  await waitReady(ns, "daguauths", name, "Materialized");
}

/** The API server's refusal message of a failed create. */
async function refusal(call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (err) {
    const body = (err as { body?: string }).body ?? String(err);
    try {
      return (JSON.parse(body) as { message: string }).message;
    } catch {
      return body;
    }
  }
  assert.fail("the API server admitted what it should have refused");
}

const spec0 = (pods: k8s.V1Pod[]) => pods[0]!.spec!;

async function webhookReady(op: { injection?: { server: { hasCertificate: boolean } } }, name: string): Promise<void> {
  await eventually("the webhook serves a certificate and the caBundle is published", async () => {
    const mwc = await admission.readMutatingWebhookConfiguration({ name });
    return (op.injection?.server.hasCertificate && mwc.webhooks?.every((w) => w.clientConfig.caBundle)) || undefined;
  });
}

test("a Deployment's labelled pods are mutated; an unlabelled pod is untouched and never sent to the webhook", async (t) => {
  const ns = await testNamespace(t, "inj");
  const webhook = await registerWebhook(t, ns);
  const op = await startInjectingOperator(t, webhook);
  await daguAuth(ns);
  await webhookReady(op, webhook.name);
  const server = op.injection!.server;

  await apps.createNamespacedDeployment({
    namespace: ns,
    body: {
      metadata: { name: "dagu" },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "dagu" } },
        template: { metadata: { labels: { app: "dagu", "auth.dagu.dev/inject": "dagu" } }, spec: { serviceAccountName: "default", containers: [daguContainer()] } },
      },
    },
  });
  const pods = await eventually("the ReplicaSet controller created 2 pods", async () => {
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: "app=dagu" });
    return list.items.length === 2 ? list.items : undefined;
  });
  for (const pod of pods) {
    const spec = pod.spec!;
    const names = spec.containers.map((c) => c.name);
    assert.deepEqual(names, ["dagu", SIDECAR_CONTAINER]);
    const [dagu, sidecar] = spec.containers as [k8s.V1Container, k8s.V1Container];
    assert.equal(sidecar.image, TEST_SIDECAR_IMAGE);
    assert.deepEqual({ ...sidecar.ports?.[0] }, { name: "http", containerPort: 8080, protocol: "TCP" });
    assert.equal(dagu.ports, undefined);
    assert.deepEqual(
      dagu.env?.filter((e) => e.name.startsWith("DAGU_")).map((e) => [e.name, e.value]),
      [["DAGU_HOME", "/var/lib/dagu"], ["DAGU_PORT", "18080"], ["DAGU_HOST", "127.0.0.1"], ["DAGU_AUTH_MODE", "none"]],
    );
    assert.equal(dagu.livenessProbe?.httpGet?.path, "/dagu/healthz");
    assert.equal(spec.serviceAccountName, "dagu-sidecar");
    assert.equal(spec.automountServiceAccountToken, false);
    // The API server's own ServiceAccount admission added no token to Dagu: the only token is the sidecar's.
    assert.ok(!spec.volumes?.some((v) => v.name.startsWith("kube-api-access-")), "no automounted token volume");
    assert.deepEqual(dagu.volumeMounts ?? [], []);
    assert.equal(sidecar.volumeMounts?.find((m) => m.name === TOKEN_VOLUME)?.mountPath, "/var/run/secrets/kubernetes.io/serviceaccount");
    assert.equal(pod.metadata?.annotations?.["auth.dagu.dev/injected"], "dagu");
  }

  // Unlabelled: never sent (the counter of answered requests does not move), spec as written.
  const answered = await server.answered();
  const plain = await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: "plain", labels: { app: "other" } }, spec: { containers: [daguContainer()] } } });
  assert.deepEqual(plain.spec!.containers.map((c) => c.name), ["dagu"]);
  assert.equal(plain.spec!.serviceAccountName, "default");
  assert.ok(plain.spec!.volumes?.some((v) => v.name.startsWith("kube-api-access-")), "the usual automounted token");
  assert.equal(await server.answered(), answered, "the unlabelled pod never reached the webhook");
  const labelled = await core.createNamespacedPod({ namespace: ns, body: labelledPod("counted", "dagu"), dryRun: "All" });
  assert.deepEqual(labelled.spec!.containers.map((c) => c.name), ["dagu", SIDECAR_CONTAINER], "server-side dry run calls the webhook (sideEffects None)");
  assert.equal(await server.answered(), answered + 1, "the labelled one did");

  // A DaguAuth with spec.basePath (ADR 0020): its pods' sidecar gets --dagu-base-path, their Dagu DAGU_BASE_PATH.
  await daguAuth(ns, "based", { basePath: "/dagu" });
  const based = await core.createNamespacedPod({ namespace: ns, body: labelledPod("based", "based"), dryRun: "All" });
  const [basedDagu, basedSidecar] = based.spec!.containers as [k8s.V1Container, k8s.V1Container];
  const args = basedSidecar.args ?? [];
  assert.equal(args[args.indexOf("--dagu-base-path") + 1], "/dagu", JSON.stringify(args));
  assert.equal(basedDagu.env?.find((e) => e.name === "DAGU_BASE_PATH")?.value, "/dagu");
  assert.ok(!(spec0(pods).containers[1]!.args ?? []).includes("--dagu-base-path"), "none without spec.basePath");

  // The webhook down: unlabelled pods are admitted as ever; labelled ones are refused, never admitted bare.
  await op.stop();
  const during = await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: "plain-2" }, spec: { containers: [daguContainer()] } } });
  assert.deepEqual(during.spec!.containers.map((c) => c.name), ["dagu"]);
  assert.match(await refusal(() => core.createNamespacedPod({ namespace: ns, body: labelledPod("bare", "dagu") })), /failed calling webhook "inject\.auth\.dagu\.dev"/);
});

test("refused with the reason: a missing DaguAuth, no recognizable Dagu server, a token mounted into Dagu; a second mutation changes nothing", async (t) => {
  const ns = await testNamespace(t, "inj");
  const webhook = await registerWebhook(t, ns);
  const op = await startInjectingOperator(t, webhook);
  await daguAuth(ns);
  await webhookReady(op, webhook.name);

  const missing = await refusal(() => core.createNamespacedPod({ namespace: ns, body: labelledPod("p1", "nope") }));
  assert.match(missing, /admission webhook "inject\.auth\.dagu\.dev" denied the request: DaguAuth nope \(named by auth\.dagu\.dev\/inject\) does not exist in namespace/);
  const unknown = await refusal(() => core.createNamespacedPod({ namespace: ns, body: labelledPod("p2", "dagu", [{ name: "web", image: "nginx:1.27" }]) }));
  assert.match(unknown, /cannot protect this pod: no container runs Dagu's server.*web/);
  const shell = await refusal(() => core.createNamespacedPod({ namespace: ns, body: labelledPod("p3", "dagu", [daguContainer({ command: ["sh", "-c", "dagu start-all"] })]) }));
  assert.match(shell, /not through a shell/);
  const tokenPod = labelledPod("p4", "dagu", [daguContainer({ volumeMounts: [{ name: "tok", mountPath: "/t" }] })]);
  tokenPod.spec!.volumes = [{ name: "tok", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } }];
  assert.match(await refusal(() => core.createNamespacedPod({ namespace: ns, body: tokenPod })), /container dagu mounts a ServiceAccount token \(volume tok\)/);
  // The annotation names a DaguAuth too (for charts without pod labels); the label and annotation must agree.
  const both = labelledPod("p5", "dagu");
  both.metadata!.annotations = { "auth.dagu.dev/inject": "other" };
  assert.match(await refusal(() => core.createNamespacedPod({ namespace: ns, body: both })), /name different DaguAuths/);
  assert.equal((await core.listNamespacedPod({ namespace: ns })).items.length, 0, "nothing was admitted");

  // Idempotent on the server: the mutated pod, sent again as it is, comes out the same.
  const first = await core.createNamespacedPod({ namespace: ns, body: labelledPod("once", "dagu") });
  const again = await core.createNamespacedPod({
    namespace: ns,
    body: { metadata: { name: "twice", labels: first.metadata!.labels!, annotations: first.metadata!.annotations! }, spec: first.spec! },
  });
  assert.deepEqual(again.spec, first.spec);
  assert.deepEqual(again.metadata!.annotations, first.metadata!.annotations);
});

test("the webhook's certificate rotates (serving certificate and CA, two operator replicas) without a failed admission", async (t) => {
  const ns = await testNamespace(t, "inj");
  const webhook = await registerWebhook(t, ns);
  // Serving certificates live 6 s (renewed at 4 s), the CA 24 s (succeeded at 16 s); 2 s to propagate.
  const policy = { certValidityMs: 6_000, caValidityMs: 24_000, propagationMs: 2_000 };
  const a = await startInjectingOperator(t, webhook, { name: "a", policy });
  // A second replica: it plans and writes the same Secret (conditional writes) while A serves.
  const { freePort } = await import("../../dev/control-plane.ts");
  await startInjectingOperator(t, webhook, { name: "b", port: await freePort(), policy });
  await daguAuth(ns);
  await webhookReady(a, webhook.name);

  const certs = new Set<string>();
  const bundles = new Set<string>();
  let admitted = 0;
  const failures: string[] = [];
  const until = Date.now() + 35_000;
  const watchSecret = (async () => {
    while (Date.now() < until) {
      const s = await core.readNamespacedSecret({ name: webhook.secretName, namespace: OPERATOR_NAMESPACE });
      certs.add(new X509Certificate(Buffer.from(s.data!["tls.crt"]!, "base64")).serialNumber);
      const mwc = await admission.readMutatingWebhookConfiguration({ name: webhook.name });
      bundles.add(mwc.webhooks![0]!.clientConfig.caBundle!);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  // Two clients creating pods back to back (server-side dry run: the webhook runs, nothing is stored).
  const client = async () => {
    for (let i = 0; Date.now() < until; i++) {
      try {
        const pod = await core.createNamespacedPod({ namespace: ns, body: labelledPod(`r${i}`, "dagu"), dryRun: "All" });
        assert.ok(pod.spec!.containers.some((c) => c.name === SIDECAR_CONTAINER));
        admitted++;
      } catch (err) {
        failures.push((err as { body?: string }).body ?? String(err));
      }
    }
  };
  await Promise.all([client(), client(), watchSecret]);
  t.diagnostic(`${admitted} admissions, ${certs.size} serving certificates, ${bundles.size} caBundles, ${failures.length} failures`);
  assert.deepEqual(failures, [], "no admission failed");
  assert.ok(admitted > 50, `admissions kept coming (${admitted})`);
  assert.ok(certs.size >= 5, `the serving certificate rotated (${certs.size} seen)`);
  assert.ok(bundles.size >= 3, `the CA rotated: a successor joined the bundle and the old one left (${bundles.size} bundles seen)`);
});

test("the mutated pod, run as written (Dagu with its env, the sidecar with its args, as the pod's ServiceAccount), is a protected Dagu", async (t) => {
  const { spawn } = await import("node:child_process");
  const { mkdtemp, writeFile, rm, mkdir } = await import("node:fs/promises");
  const { networkInterfaces, tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const { connect } = await import("node:net");
  const { freePort } = await import("../../dev/control-plane.ts");
  const { bin, DAGU_BINARIES, ensureComponents } = await import("../../dev/components.ts");
  const { serviceAccountKubeConfig } = await import("../../dev/kube.ts");
  const { CLI } = await import("../harness/sidecar.ts");

  const ns = await testNamespace(t, "inj");
  const webhook = await registerWebhook(t, ns);
  const [publicPort, daguPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const op = await startInjectingOperator(t, webhook, { config: { daguPort, sidecar: { image: TEST_SIDECAR_IMAGE, metricsPort } } });
  await daguAuth(ns);
  await webhookReady(op, webhook.name);
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: labelledPod("run", "dagu", [daguContainer({ env: [{ name: "DAGU_PORT", value: String(publicPort) }], ports: [{ name: "http", containerPort: publicPort }] })]),
  });
  const [dagu, sidecar] = pod.spec!.containers as [k8s.V1Container, k8s.V1Container];

  // Dagu with the environment the pod gives it (its command is `dagu start-all`).
  const root = await mkdtemp(join(tmpdir(), "dagu-injected-"));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, "dags"));
  await writeFile(join(root, "dags", "hello.yaml"), "steps:\n  - name: say\n    command: echo hi\n");
  const daguEnv = Object.fromEntries((dagu.env ?? []).filter((e) => e.name !== "DAGU_HOME").map((e) => [e.name, e.value!]));
  assert.deepEqual(dagu.command, ["dagu", "start-all"]);
  const daguBin = bin(await ensureComponents(["dagu"]), DAGU_BINARIES.dagu);
  const daguProcess = spawn(daguBin, ["start-all", "--dags", join(root, "dags")], {
    env: { PATH: process.env.PATH ?? "", HOME: root, DAGU_HOME: join(root, "home"), DAGU_TZ: "UTC", DAGU_COORDINATOR_PORT: String(await freePort()), DAGU_SCHEDULER_PORT: String(await freePort()), ...daguEnv },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let daguOut = "";
  daguProcess.stdout!.on("data", (d: Buffer) => (daguOut += d.toString()));
  daguProcess.stderr!.on("data", (d: Buffer) => (daguOut += d.toString()));
  const stopDagu = () => {
    try {
      process.kill(-daguProcess.pid!, "SIGKILL");
    } catch {
      // gone
    }
  };
  t.after(stopDagu);

  // The sidecar with the pod's args, as the pod's ServiceAccount (here loopback only, and a kubeconfig
  // with a TokenRequest token instead of the projected one).
  const kubeconfig = join(root, "sidecar.kubeconfig");
  await writeFile(kubeconfig, (await serviceAccountKubeConfig(ns, pod.spec!.serviceAccountName!)).exportConfig());
  const args = (sidecar.args ?? []).map((a) => a.replace(/^0\.0\.0\.0:/, "127.0.0.1:"));
  assert.deepEqual(sidecar.command, ["dagu-auth", "sidecar"]);
  const sidecarProcess = spawn(process.execPath, [CLI, "sidecar", ...args, "--kubeconfig", kubeconfig], { env: { PATH: process.env.PATH ?? "" }, stdio: ["ignore", "pipe", "pipe"] });
  let sidecarOut = "";
  sidecarProcess.stdout!.on("data", (d: Buffer) => (sidecarOut += d.toString()));
  sidecarProcess.stderr!.on("data", (d: Buffer) => (sidecarOut += d.toString()));
  const logs = () => `sidecar:\n${sidecarOut.slice(-3000)}\nDagu:\n${daguOut.slice(-3000)}`;
  t.after(() => void sidecarProcess.kill("SIGKILL"));

  const base = `http://127.0.0.1:${publicPort}`;
  await eventually("the sidecar is ready (credentials through the API as dagu-sidecar, Dagu detected)", async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => undefined))?.ok, 60_000, 250).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${logs()}`);
  });
  const health = await fetch(`http://127.0.0.1:${metricsPort}/dagu/healthz`);
  assert.equal(health.status, 200, "Dagu's rewritten probe target answers from Dagu");
  // Dagu's own version (asked on 127.0.0.1, where it now listens) decides its API prefix.
  const version = ((await (await fetch(`http://127.0.0.1:${daguPort}/api/v1/health`)).json()) as { version?: string }).version ?? "";
  const api = version.replace(/^v/, "").startsWith("1.") ? "/api/v2" : "/api/v1";
  t.diagnostic(`Dagu ${version} (API ${api})`);
  assert.equal((await fetch(`${base}${api}/dags`)).status, 401, "nothing without credentials");
  const login = await fetch(`${base}${api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "admin-password-1" }) });
  assert.equal(login.status, 200);
  const { token } = (await login.json()) as { token: string };
  assert.equal((await fetch(`${base}${api}/dags`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  // Dagu itself listens on 127.0.0.1 only (DAGU_HOST): another address of this machine does not reach it.
  const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === "IPv4" && !i.internal)?.address;
  if (external) {
    const reached = await new Promise<boolean>((resolve) => {
      const s = connect({ host: external, port: daguPort }, () => (s.destroy(), resolve(true)));
      s.on("error", () => resolve(false));
    });
    assert.equal(reached, false, `Dagu is not reachable on ${external}:${daguPort}`);
  } else t.diagnostic("no non-loopback IPv4 address on this machine: the bind check was not made");
  // Dagu gone: its probe (through the sidecar) says so, while the sidecar itself stays live.
  stopDagu();
  await eventually("/dagu/healthz turns 503", async () => (await fetch(`http://127.0.0.1:${metricsPort}/dagu/healthz`)).status === 503 || undefined);
  assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).status, 200);
});
