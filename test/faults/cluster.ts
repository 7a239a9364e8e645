// A control plane of the fault suite's own (one per test file, never the shared one of `npm test`): its
// etcd and kube-apiserver can be killed and started again with the same flags, etcd compacted, and the
// operator or the sidecars cut off from the API server by a TCP proxy (a network partition). The
// operator runs as a child process (`src/cli.ts operator`) so that it can be SIGKILLed.
import type { Failpoint } from "../../src/operator/runtime/failpoint.ts";
import { after, before } from "node:test";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { ensureComponents, repoRoot } from "../../dev/components.ts";
import { freePort, startControlPlane, stopControlPlane, type ControlPlaneState } from "../../dev/control-plane.ts";
import { BIN_ENV, KUBECONFIG_ENV, kubectl } from "../../dev/kube.ts";
import { CLI } from "../harness/sidecar.ts";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** mulberry32: a small seeded generator, so a failing schedule can be replayed from the printed seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Member = "etcd" | "apiserver";

interface Restartable {
  cmd: string;
  args: string[];
  log: string;
  child: ChildProcess;
}

export interface FaultCluster {
  readonly dir: string;
  readonly kubeconfig: string;
  /** https://127.0.0.1:port of the kube-apiserver. */
  readonly server: string;
  readonly etcdUrl: string;
  /** SIGKILLs a member (it stays down until start()). */
  kill(member: Member): Promise<void>;
  /** Starts it again with the same flags and waits until it answers (etcd /health, apiserver /readyz). */
  start(member: Member): Promise<number>;
  /** etcd's current revision (every write anywhere in the cluster moves it). */
  revision(): Promise<number>;
  /** Every key of the Kubernetes store written after `revision` (each once, however often), with its revision. */
  writtenSince(revision: number): Promise<{ key: string; modRevision: number }[]>;
  /** Compacts etcd at its current revision: watches from older resourceVersions get 410 Gone. */
  compact(): Promise<number>;
  close(): Promise<void>;
}

function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/**
 * Starts the control plane, installs the CRDs and points the shared test helpers (dev/kube.ts)
 * at it through their environment variables: call before anything reads them.
 */
export async function startFaultCluster(log: (line: string) => void = () => undefined): Promise<FaultCluster> {
  const binDir = await ensureComponents(["etcd", "kube", "dagu"]);
  process.env[BIN_ENV] = binDir;
  const dir = await mkdtemp(join(tmpdir(), "dagu-auth-faults-"));
  const cp = await startControlPlane({ binDir, dir, log });
  process.env[KUBECONFIG_ENV] = cp.kubeconfig;
  const state: ControlPlaneState = { dir: cp.dir, server: cp.server, kubeconfig: cp.kubeconfig, pids: { ...cp.pids } };
  const [etcdChild, apiChild] = cp.processes as [ChildProcess, ChildProcess, ChildProcess];
  const members: Record<Member, Restartable> = {
    etcd: { cmd: cmdline(etcdChild.pid!)[0]!, args: cmdline(etcdChild.pid!).slice(1), log: join(dir, "etcd.log"), child: etcdChild },
    apiserver: { cmd: cmdline(apiChild.pid!)[0]!, args: cmdline(apiChild.pid!).slice(1), log: join(dir, "kube-apiserver.log"), child: apiChild },
  };
  const etcdUrl = members.etcd.args.find((a) => a.startsWith("--listen-client-urls="))!.split("=")[1]!;
  const pki = (name: string) => readFileSync(join(dir, "pki", name), "utf8");
  const tls = { ca: pki("ca.crt"), cert: pki("admin.crt"), key: pki("admin.key") };

  const etcdPost = async (path: string, body: unknown): Promise<Record<string, unknown>> => {
    const r = await fetch(`${etcdUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`etcd ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as Record<string, unknown>;
  };
  const revision = async () => Number(((await etcdPost("/v3/kv/range", { key: Buffer.from("\0").toString("base64") })).header as { revision: string }).revision);
  const ready = (member: Member): Promise<boolean> =>
    member === "etcd"
      ? fetch(`${etcdUrl}/health`).then(
          (r) => r.ok,
          () => false,
        )
      : new Promise((resolve) => {
          const req = httpsRequest(`${cp.server}/readyz`, { timeout: 2000, ...tls }, (res) => {
            res.resume();
            resolve(res.statusCode === 200);
          });
          req.on("error", () => resolve(false));
          req.on("timeout", () => req.destroy());
          req.end();
        });

  for (const args of [
    ["apply", "--server-side", "--force-conflicts", "-f", join(repoRoot, "crds")],
    ["wait", "--for=condition=Established", "--timeout=60s", "-f", join(repoRoot, "crds")],
  ]) {
    const r = await kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${r.stderr}`);
  }

  return {
    dir,
    kubeconfig: cp.kubeconfig,
    server: cp.server,
    etcdUrl,
    async kill(member) {
      const m = members[member];
      m.child.kill("SIGKILL");
      await exited(m.child);
    },
    async start(member) {
      const t0 = Date.now();
      const m = members[member];
      const fd = openSync(m.log, "a");
      m.child = spawn(m.cmd, m.args, { stdio: ["ignore", fd, fd] });
      closeSync(fd);
      state.pids[member] = m.child.pid!;
      const deadline = Date.now() + 90_000;
      while (Date.now() < deadline) {
        if (m.child.exitCode !== null) throw new Error(`${member} exited with ${m.child.exitCode} after a restart; see ${m.log}`);
        if (await ready(member)) return Date.now() - t0;
        await sleep(50);
      }
      throw new Error(`${member} not ready 90 s after a restart; see ${m.log}`);
    },
    revision,
    async writtenSince(since) {
      const b64 = (s: string) => Buffer.from(s).toString("base64");
      const r = await etcdPost("/v3/kv/range", { key: b64("/registry/"), range_end: b64("/registry0"), keys_only: true, min_mod_revision: String(since + 1) });
      return ((r.kvs ?? []) as { key: string; mod_revision: string }[]).map((kv) => ({ key: Buffer.from(kv.key, "base64").toString("utf8"), modRevision: Number(kv.mod_revision) }));
    },
    async compact() {
      const rev = await revision();
      await etcdPost("/v3/kv/compaction", { revision: String(rev), physical: true });
      return rev;
    },
    async close() {
      await stopControlPlane(state);
    },
  };
}

/** A TCP forwarder to the API server whose link can be cut (every connection reset, new ones dropped). */
export interface Partition {
  readonly port: number;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startPartition(server: string): Promise<Partition> {
  const target = new URL(server);
  const sockets = new Set<Socket>();
  let isCut = false;
  const proxy: Server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, "127.0.0.1", resolve));
  return {
    port,
    cut() {
      isCut = true;
      for (const s of sockets) s.destroy();
    },
    heal() {
      isCut = false;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => proxy.close(() => resolve()));
    },
  };
}

/** The same kubeconfig with its server replaced (to go through a Partition), written to a file. */
export async function kubeconfigFile(kc: k8s.KubeConfig, dir: string, name: string, viaPort?: number): Promise<string> {
  const copy = new k8s.KubeConfig();
  copy.loadFromString(kc.exportConfig());
  if (viaPort !== undefined) {
    const cluster = copy.getCurrentCluster()!;
    copy.clusters = copy.clusters.map((c) => (c.name === cluster.name ? { ...c, server: `https://127.0.0.1:${viaPort}` } : c));
  }
  const file = join(dir, `${name}.kubeconfig`);
  await writeFile(file, copy.exportConfig(), { mode: 0o600 });
  return file;
}

export interface OperatorProcess {
  readonly pid: number;
  readonly healthUrl: string;
  readonly child: ChildProcess;
  /** The pino lines it wrote so far. */
  lines(): Record<string, unknown>[];
  exited: Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** A metric's value summed over its series (undefined before the health server answers). */
  metric(name: string): Promise<number | undefined>;
}

/** `dagu-auth operator` as a child process under the operator's ServiceAccount kubeconfig. */
export async function spawnOperator(options: { kubeconfig: string; lease?: { namespace: string; name: string }; failpoint?: Failpoint }): Promise<OperatorProcess> {
  const port = await freePort();
  const args = [CLI, "operator", "--kubeconfig", options.kubeconfig, "--health-address", `127.0.0.1:${port}`, "--log-level", "debug"];
  if (options.lease) args.push("--leader-election-namespace", options.lease.namespace, "--lease-name", options.lease.name);
  else args.push("--no-leader-elect");
  const env = { PATH: process.env.PATH ?? "", ...(options.failpoint ? { DAGU_AUTH_OPERATOR_FAILPOINT: options.failpoint } : {}) };
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const done = exited(child);
  const healthUrl = `http://127.0.0.1:${port}`;
  return {
    pid: child.pid!,
    healthUrl,
    child,
    lines: () =>
      out
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    exited: done,
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await done;
    },
    async metric(name) {
      try {
        const text = await (await fetch(`${healthUrl}/metrics`)).text();
        return text
          .split("\n")
          .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
          .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
      } catch {
        return undefined;
      }
    },
  };
}

/** The harness modules a fault test uses, loaded once the environment names its cluster (they read it on import). */
export interface FaultEnv {
  readonly cluster: FaultCluster;
  readonly R: typeof import("../harness/resources.ts");
  readonly K: typeof import("../../dev/kube.ts") & typeof import("../harness/per-test.ts");
  readonly O: typeof import("../../dev/operator-account.ts");
}

/** Starts this file's own control plane, then loads the harness against it. */
export async function openFaultEnv(): Promise<FaultEnv> {
  const started = await startFaultCluster();
  const [resources, kube, perTest, operatorAccount] = await Promise.all([import("../harness/resources.ts"), import("../../dev/kube.ts"), import("../harness/per-test.ts"), import("../../dev/operator-account.ts")]);
  return { cluster: started, R: resources, K: { ...kube, ...perTest }, O: operatorAccount };
}

// This file's fault environment while its tests run (live bindings: an importer sees them once
// useFaultEnv's hook has run; they are undefined before).
export let cluster: FaultCluster;
export let R: FaultEnv["R"];
export let K: FaultEnv["K"];
export let O: FaultEnv["O"];

/**
 * Opens this test file's own control plane before its first test and closes it after its last; call once
 * at the top of a fault file, then use `cluster`, `R`, `K` and `O` from this module in its tests.
 */
export function useFaultEnv(): void {
  before(async () => {
    ({ cluster, R, K, O } = await openFaultEnv());
  });
  after(async () => cluster?.close());
}
