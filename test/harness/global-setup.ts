// node --test --test-global-setup: one real control plane for the whole run,
// shared by the test files through environment variables. When
// DAGU_AUTH_TEST_KUBECONFIG is already set (say, to `npm run cluster:up`'s
// kubeconfig), that control plane is reused and left running.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureComponents, repoRoot } from "../../dev/components.ts";
import { startControlPlane, stopControlPlane, type ControlPlaneState } from "../../dev/control-plane.ts";
import { BIN_ENV, KUBECONFIG_ENV, run } from "../../dev/kube.ts";

let started: ControlPlaneState | undefined;

const say = (line: string) => process.stderr.write(`[global-setup] ${line}\n`);

export async function globalSetup(): Promise<void> {
  const t0 = Date.now();
  // Every Dagu the tests run (v2.15.1 with and without its UI, v1.30.3 for the Dagu 1 suite): built here, once,
  // rather than inside a test whose timeout a cold build would exceed.
  const binDir = await ensureComponents(["etcd", "kube", "certmanager", "dagu", "dagu-ui", "dagu1"]);
  process.env[BIN_ENV] = binDir;
  if (!process.env[KUBECONFIG_ENV]) {
    const dir = await mkdtemp(join(tmpdir(), "dagu-auth-cp-"));
    started = await startControlPlane({ binDir, dir, log: say });
    process.env[KUBECONFIG_ENV] = started.kubeconfig;
  }
  // Every test file may rely on our CRDs being installed and Established.
  const kubectl = join(binDir, "kubectl");
  const kc = ["--kubeconfig", process.env[KUBECONFIG_ENV]!];
  for (const args of [
    ["apply", "--server-side", "--force-conflicts", "-f", join(repoRoot, "crds")],
    ["wait", "--for=condition=Established", "--timeout=60s", "-f", join(repoRoot, "crds")],
  ]) {
    const r = await run(kubectl, [...kc, ...args]);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr}`);
  }
  say(`control plane ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export async function globalTeardown(): Promise<void> {
  if (started) await stopControlPlane(started);
}
