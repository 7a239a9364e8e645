// npm run demo: the whole product on this machine. It builds what it needs on the
// first run (saying how far it got), starts a local control plane (etcd,
// kube-apiserver, kube-controller-manager), installs the CRDs, runs the operator,
// applies examples/builtin-setup, starts a real Dagu v2.15.1 with its web UI and
// auth off on 127.0.0.1 and the sidecar in front of it (fed by the operator through the API, under the
// ServiceAccount the operator created), then prints how to use it. Ctrl-C stops
// everything.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { DAGU_BINARIES, ensureComponents, repoRoot } from "../dev/components.ts";
import { freePort, startControlPlane, stopControlPlane } from "../dev/control-plane.ts";
import { run } from "../dev/kube.ts";

const say = (line: string) => process.stdout.write(`[demo] ${line}\n`);
const t0 = Date.now();
const NS = "demo";
const children: ChildProcess[] = [];

say("step 1/6: components (built once into ~/.cache/dagu-auth-operator, later runs reuse them)");
// dagu-ui: Dagu with its web UI built and embedded (the plain `dagu` build serves a page without it).
const binDir = await ensureComponents(["etcd", "kube", "dagu-ui"]);

say("step 2/6: a local control plane");
const dir = await mkdtemp(join(tmpdir(), "dagu-auth-demo-"));
const cp = await startControlPlane({ binDir, dir, log: (l) => say(`  ${l}`) });

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say("stopping the sidecar, Dagu, the operator and the control plane");
    for (const child of children.reverse()) {
      if (child.exitCode === null) child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
    }
    await stopControlPlane(cp);
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));
// An error nobody awaited (a child's stream, say) must not leave the control plane and the operator running.
process.on("uncaughtException", (err) => {
  process.stderr.write(`demo failed: ${err.stack ?? err.message}\n`);
  void stop(1);
});

const kubectl = async (...args: string[]): Promise<string> => {
  const r = await run(join(binDir, "kubectl"), ["--kubeconfig", cp.kubeconfig, ...args]);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
};

/** Starts `dagu-auth <args>` (or another program) with its output in a log file of the demo dir. */
function background(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const fd = openSync(join(dir, `${name}.log`), "a");
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  children.push(child);
  child.once("exit", (code) => {
    if (!stopping) {
      say(`${name} exited (${code}); its log: ${join(dir, `${name}.log`)}`);
      void stop(1);
    }
  });
  return child;
}

async function waitHttp(url: string, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready at ${url}`);
}

try {
  say("step 3/6: the CRDs and the operator");
  await kubectl("apply", "--server-side", "-f", join(repoRoot, "crds"));
  await kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", join(repoRoot, "crds"));
  const cli = join(repoRoot, "src", "cli.ts");
  const operatorHealth = await freePort();
  background("operator", process.execPath, [cli, "operator", "--kubeconfig", cp.kubeconfig, "--no-leader-elect", "--health-address", `127.0.0.1:${operatorHealth}`]);
  await waitHttp(`http://127.0.0.1:${operatorHealth}/readyz`, "the operator");

  say(`step 4/6: examples/builtin-setup into namespace ${NS}`);
  await kubectl("create", "namespace", NS);
  await kubectl("apply", "-n", NS, "-f", join(repoRoot, "examples", "builtin-setup"));
  await kubectl("wait", "-n", NS, "--for=condition=Ready", "--timeout=120s", "daguauth/dagu", "daguuser/alice", "daguuser/bob", "daguapikey/runner", "daguwebhook/hello");
  process.stdout.write(await kubectl("get", "dagu", "-n", NS));

  say("step 5/6: a real Dagu v2.15.1 with its web UI, auth off, on 127.0.0.1");
  const daguHome = join(dir, "dagu");
  const dags = join(dir, "dags");
  await run("mkdir", ["-p", daguHome, dags]);
  await writeFile(join(dags, "hello.yaml"), 'params:\n  - WEBHOOK_PAYLOAD: "{}"\nsteps:\n  - name: say\n    command: echo "hello ${WEBHOOK_PAYLOAD}"\n');
  const daguPort = await freePort();
  background("dagu", join(binDir, DAGU_BINARIES["dagu-ui"]), ["start-all", "--host", "127.0.0.1", "--port", String(daguPort), "--dags", dags], {
    ...process.env,
    DAGU_HOME: daguHome,
    DAGU_AUTH_MODE: "none",
    DAGU_COORDINATOR_PORT: String(await freePort()),
    DAGU_SCHEDULER_PORT: String(await freePort()),
  });
  await waitHttp(`http://127.0.0.1:${daguPort}/api/v1/health`, "Dagu");

  say("step 6/6: the sidecar in front of Dagu, under the ServiceAccount the operator created");
  const core = (() => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfig);
    return { kc, api: kc.makeApiClient(k8s.CoreV1Api) };
  })();
  const tr = await core.api.createNamespacedServiceAccountToken({ name: "dagu-sidecar", namespace: NS, body: { spec: { expirationSeconds: 86400, audiences: [] } } });
  const cluster = core.kc.getCurrentCluster()!;
  const sidecarKc = new k8s.KubeConfig();
  sidecarKc.loadFromOptions({
    clusters: [{ name: "local", server: cluster.server, caData: cluster.caData }],
    users: [{ name: "dagu-sidecar", token: tr.status!.token }],
    contexts: [{ name: "local", cluster: "local", user: "dagu-sidecar" }],
    currentContext: "local",
  });
  const sidecarKubeconfig = join(dir, "sidecar.kubeconfig");
  await writeFile(sidecarKubeconfig, sidecarKc.exportConfig(), { mode: 0o600 });
  const port = Number(process.env.DAGU_AUTH_DEMO_PORT ?? (await freePort()));
  background("sidecar", process.execPath, [cli, "sidecar", "--kubernetes", "--namespace", NS, "--auth", "dagu", "--kubeconfig", sidecarKubeconfig, "--upstream", `http://127.0.0.1:${daguPort}`, "--listen", `127.0.0.1:${port}`]);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/readyz`, "the sidecar");

  const secret = async (name: string, key: string) => Buffer.from((await core.api.readNamespacedSecret({ name, namespace: NS })).data![key]!, "base64").toString("utf8");
  const apiKey = await secret("runner-api-key", "apiKey");
  const webhookToken = await secret("hello-webhook", "token");
  const adminPassword = await secret("dagu-initial-admin", "password");
  const bobPassword = await secret("bob-password", "password");

  say(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.stdout.write(
    [
      `  Dagu, protected:   ${url}/   (open it in a browser)`,
      `  log in:            admin / ${adminPassword}     (or alice / demo-alice-password-change-me, bob / ${bobPassword} as a viewer)`,
      `  API key (operator role), from Secret runner-api-key:`,
      `                     curl -H "Authorization: Bearer ${apiKey}" ${url}/api/v1/dags`,
      `  log in with curl:  curl -s -X POST ${url}/api/v1/auth/login -H 'content-type: application/json' -d '{"username":"admin","password":"${adminPassword}"}'`,
      `  fire the webhook:  curl -X POST ${url}/api/v1/webhooks/hello -H "Authorization: Bearer ${webhookToken}" -H 'content-type: application/json' -d '{"payload":{"from":"demo"}}'`,
      `  the cluster:       ${join(binDir, "kubectl")} --kubeconfig ${cp.kubeconfig} get dagu -n ${NS}`,
      `  change a password: ... patch secret alice-password -n ${NS} -p '{"stringData":{"password":"a-new-password"}}'  (enforced within a second)`,
      `  logs:              ${dir}/{operator,sidecar,dagu}.log`,
      "",
      "  Press Ctrl-C to stop everything.",
      "",
    ].join("\n"),
  );
  if (process.env.DAGU_AUTH_DEMO_EXIT === "1") await stop(0);
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stop(1);
}
