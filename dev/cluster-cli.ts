// npm run cluster:up | cluster:down — a local control plane that outlives the
// command. The last line `up` prints is the kubeconfig's path.
import { join } from "node:path";
import { cacheDir, ensureComponents } from "./components.ts";
import { readState, startControlPlane, stopControlPlane } from "./control-plane.ts";

const stateDir = process.env.DAGU_AUTH_CLUSTER_DIR ?? join(cacheDir(), "cluster");
const say = (line: string) => process.stderr.write(`[cluster] ${line}\n`);

async function up(): Promise<void> {
  const existing = await readState(stateDir);
  if (existing) {
    say(`already running (${existing.server}); npm run cluster:down to stop it`);
    process.stdout.write(`${existing.kubeconfig}\n`);
    return;
  }
  const started = Date.now();
  const binDir = await ensureComponents(["etcd", "kube", "certmanager"]);
  const state = await startControlPlane({ binDir, dir: stateDir, detached: true, log: say });
  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s at ${state.server}`);
  say(`kubectl: ${join(binDir, "kubectl")} --kubeconfig ${state.kubeconfig} get --raw /readyz`);
  process.stdout.write(`${state.kubeconfig}\n`);
}

async function down(): Promise<void> {
  const state = await readState(stateDir);
  if (!state) {
    say("not running");
    return;
  }
  await stopControlPlane(state);
  say("stopped and removed");
}

const command = process.argv[2];
if (command === "up") await up();
else if (command === "down") await down();
else {
  process.stderr.write("usage: cluster-cli.ts up|down\n");
  process.exitCode = 2;
}
