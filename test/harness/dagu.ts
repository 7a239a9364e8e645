// A real Dagu for tests: the binary built by scripts/build-components.sh, Dagu v2.15.1 (`/api/v1`) or, for
// the Dagu 1 suite, v1.30.3 (`/api/v2`; docs/adr/0005), run with auth off on a loopback port, a temporary
// DAGU_HOME and a DAGs directory.
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, DAGU_BINARIES, ensureComponents } from "../../dev/components.ts";
import { freePort } from "../../dev/control-plane.ts";

export interface DaguInstance {
  readonly url: string;
  readonly port: number;
  readonly home: string;
  readonly dagsDir: string;
  /** Where its API lives: `/api/v2` (Dagu 1) or `/api/v1` (Dagu 2); with a basePath, below it. */
  readonly api: "/api/v1" | "/api/v2";
  /** Dagu's version as its health endpoint reports it. */
  readonly version: string;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** A DAG whose step echoes the webhook payload it was given. */
export const HELLO_DAG = `params:
  - WEBHOOK_PAYLOAD: "{}"
steps:
  - name: say
    command: echo "payload=\${WEBHOOK_PAYLOAD}"
`;

export async function startDagu(
  options: {
    dags?: Record<string, string>;
    timeoutMs?: number;
    /** Extra environment, e.g. DAGU_AUTH_MODE=builtin for Dagu's own auth (default: auth off). */
    env?: Record<string, string>;
    /**
     * Use the binary with Dagu's web UI (`dagu-ui`: the source's ui/ built with webpack and embedded; the
     * plain `dagu` binary embeds an empty assets folder, so its UI does not load).
     * Its first build takes several minutes (scripts/build-components.sh dagu-ui).
     */
    ui?: boolean;
    /** Dagu's basePath (DAGU_BASE_PATH): its UI and API are then served under it. */
    basePath?: string;
    /** Dagu v1.30.3 (`dagu1`, no UI) instead of v2.15.1: only for the Dagu 1 suite. */
    dagu1?: boolean;
  } = {},
): Promise<DaguInstance> {
  if (options.dagu1 && options.ui) throw new Error("the Dagu 1 build has no UI (docs/adr/0005)");
  const component = options.dagu1 ? "dagu1" : options.ui ? "dagu-ui" : "dagu";
  const api = options.dagu1 ? "/api/v2" : "/api/v1";
  const binDir = await ensureComponents([component]);
  const root = await mkdtemp(join(tmpdir(), "dagu-test-"));
  const home = join(root, "home");
  const dagsDir = join(root, "dags");
  await mkdir(home, { recursive: true });
  await mkdir(dagsDir, { recursive: true });
  for (const [name, yaml] of Object.entries(options.dags ?? { hello: HELLO_DAG })) await writeFile(join(dagsDir, `${name}.yaml`), yaml);
  const port = await freePort();
  // start-all also opens a coordinator (gRPC, default 50055) and a scheduler health port (8090):
  // free ports of their own, so several Dagus (parallel test files) can run at once.
  const coordinatorPort = await freePort();
  const schedulerPort = await freePort();
  const logFile = join(root, "dagu.log");
  const fd = openSync(logFile, "a");
  // Its own process group: the scheduler runs DAGs as child processes, which stop() ends with it.
  const child: ChildProcess = spawn(bin(binDir, DAGU_BINARIES[component]), ["start-all", "--host", "127.0.0.1", "--port", String(port), "--dags", dagsDir], {
    env: {
      ...process.env,
      DAGU_HOME: home,
      DAGU_AUTH_MODE: "none",
      DAGU_TZ: "UTC",
      DAGU_COORDINATOR_PORT: String(coordinatorPort),
      DAGU_SCHEDULER_PORT: String(schedulerPort),
      ...(options.basePath ? { DAGU_BASE_PATH: options.basePath } : {}),
      ...options.env,
    },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
      const killer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5_000);
      await exited;
      clearTimeout(killer);
    }
    await rm(root, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let version = "";
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const response = await fetch(`${url}${options.basePath ?? ""}${api}/health`);
      const health = response.ok ? ((await response.json()) as { version?: string }) : undefined;
      if (health) {
        version = health.version ?? "";
        break;
      }
    } catch {
      // not up yet, or a page instead of JSON
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!version) {
    const tail = await readFile(logFile, "utf8").catch(() => "");
    await stop();
    throw new Error(`Dagu did not become healthy on ${url}:\n${tail.slice(-2000)}`);
  }
  return { url, port, home, dagsDir, api, version, log: () => readFile(logFile, "utf8"), stop };
}
