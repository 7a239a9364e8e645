// npm run demo: the main job on a local, embedded control plane. It builds what
// it needs on the first run (saying how far it got), starts etcd,
// kube-apiserver and kube-controller-manager, installs the CRDs, applies the
// builtin example, shows what the API server now holds, and stops everything
// cleanly on Ctrl-C.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureComponents, repoRoot } from "../test/harness/components.ts";
import { startControlPlane, stopControlPlane } from "../test/harness/control-plane.ts";
import { run } from "../test/harness/kube.ts";

const say = (line: string) => process.stdout.write(`[demo] ${line}\n`);
const t0 = Date.now();

say("step 1/4: components (built once into ~/.cache/dagu-auth-operator, then reused)");
const binDir = await ensureComponents(["etcd", "kube"]);

say("step 2/4: starting a local control plane");
const dir = await mkdtemp(join(tmpdir(), "dagu-auth-demo-"));
const cp = await startControlPlane({ binDir, dir, log: (l) => say(`  ${l}`) });

let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    say("stopping the control plane");
    await stopControlPlane(cp);
  }
  process.exit(code);
}
process.on("SIGINT", () => void stop(0));
process.on("SIGTERM", () => void stop(0));

const kubectl = async (...args: string[]): Promise<string> => {
  const r = await run(join(binDir, "kubectl"), ["--kubeconfig", cp.kubeconfig, ...args]);
  if (r.code !== 0) {
    process.stderr.write(r.stderr);
    await stop(1);
  }
  return r.stdout;
};

try {
  say("step 3/4: installing the CRDs");
  await kubectl("apply", "--server-side", "-f", join(repoRoot, "crds"));
  await kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", join(repoRoot, "crds"));

  say("step 4/4: applying examples/builtin-setup into namespace demo");
  await kubectl("create", "namespace", "demo");
  process.stdout.write(await kubectl("apply", "-n", "demo", "-f", join(repoRoot, "examples", "builtin-setup")));
  process.stdout.write(await kubectl("get", "dagu", "-n", "demo"));

  say("an invalid resource is refused at admission, naming the field:");
  const bad = await run(join(binDir, "kubectl"), ["--kubeconfig", cp.kubeconfig, "apply", "-n", "demo", "-f", "-"], [
    "apiVersion: auth.dagu.dev/v1alpha1",
    "kind: DaguUser",
    "metadata: {name: bad}",
    "spec: {authRef: {name: dagu}, username: bob, role: root, password: {generate: {secretName: bob-password}}}",
  ].join("\n"));
  process.stdout.write(`  ${bad.stderr.trim()}\n`);

  say(`ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  say(`kubectl --kubeconfig ${cp.kubeconfig} get dagu -n demo   (kubectl is ${join(binDir, "kubectl")})`);
  say("press Ctrl-C to stop");
  if (process.env.DAGU_AUTH_DEMO_EXIT === "1") await stop(0);
} catch (err) {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await stop(1);
}
