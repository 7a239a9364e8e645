// A real Kubernetes control plane on loopback: etcd, kube-apiserver and
// kube-controller-manager (the last so that owner-reference garbage collection
// and namespace deletion really happen), modelled on controller-runtime's
// envtest: a generated CA, TLS, an admin client certificate in system:masters,
// RBAC authorization and service-account signing keys.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile, rm, readFile } from "node:fs/promises";
import { openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { createCa, issueCert, serviceAccountKeys } from "./pki.ts";
import { bin } from "./components.ts";

export interface ControlPlaneState {
  dir: string;
  server: string;
  kubeconfig: string;
  pids: { etcd: number; apiserver: number; controllerManager: number };
}

export interface StartOptions {
  binDir: string;
  dir: string;
  /** Detached processes outlive this one (npm run cluster:up); otherwise they die with it. */
  detached?: boolean;
  log?: (line: string) => void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function b64(s: string): string {
  return Buffer.from(s).toString("base64");
}

function startProcess(cmd: string, args: string[], logFile: string, detached: boolean): ChildProcess {
  const fd = openSync(logFile, "a");
  const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], detached });
  closeSync(fd);
  if (detached) child.unref();
  return child;
}

async function tail(file: string, lines = 15): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

interface ProbeTls {
  ca: string;
  cert: string;
  key: string;
}

function probe(url: string, tls?: ProbeTls): Promise<number> {
  return new Promise((resolve) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(
      url,
      { method: "GET", timeout: 2000, ...(tls ?? {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function waitUntil(what: string, child: ChildProcess, logFile: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}:\n${await tail(logFile)}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${await tail(logFile)}`);
}

export function kubeconfigYaml(server: string, caPem: string, certPem: string, keyPem: string, user = "admin"): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: local",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(caPem)}`,
    "users:",
    `- name: ${user}`,
    "  user:",
    `    client-certificate-data: ${b64(certPem)}`,
    `    client-key-data: ${b64(keyPem)}`,
    "contexts:",
    "- name: local",
    "  context:",
    "    cluster: local",
    `    user: ${user}`,
    "current-context: local",
    "",
  ].join("\n");
}

export async function startControlPlane(opts: StartOptions): Promise<ControlPlaneState & { processes: ChildProcess[] }> {
  const { dir, binDir } = opts;
  const detached = opts.detached ?? false;
  const log = opts.log ?? (() => undefined);
  await mkdir(join(dir, "pki"), { recursive: true });

  const ca = await createCa("dagu-auth-local-ca");
  const serving = await issueCert(ca, {
    commonName: "kube-apiserver",
    usage: "server",
    ips: ["127.0.0.1", "10.0.0.1"],
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
  });
  const admin = await issueCert(ca, { commonName: "admin", organizations: ["system:masters"], usage: "client" });
  const sa = serviceAccountKeys();
  const pki = (name: string) => join(dir, "pki", name);
  await Promise.all([
    writeFile(pki("ca.crt"), ca.certPem),
    writeFile(pki("apiserver.crt"), serving.certPem),
    writeFile(pki("apiserver.key"), serving.keyPem, { mode: 0o600 }),
    writeFile(pki("admin.crt"), admin.certPem),
    writeFile(pki("admin.key"), admin.keyPem, { mode: 0o600 }),
    writeFile(pki("sa.key"), sa.privatePem, { mode: 0o600 }),
    writeFile(pki("sa.pub"), sa.publicPem),
  ]);

  const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const processes: ChildProcess[] = [];

  log(`starting etcd on 127.0.0.1:${etcdClient}`);
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const etcdLog = join(dir, "etcd.log");
  const etcd = startProcess(
    bin(binDir, "etcd"),
    [
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      // A throwaway test store: durability buys nothing and fsync is slow.
      "--unsafe-no-fsync",
      "--log-level=warn",
    ],
    etcdLog,
    detached,
  );
  processes.push(etcd);
  await waitUntil("etcd", etcd, etcdLog, async () => (await probe(`${etcdUrl}/health`)) === 200);

  log(`starting kube-apiserver on 127.0.0.1:${apiPort}`);
  const apiLog = join(dir, "kube-apiserver.log");
  const apiserver = startProcess(
    bin(binDir, "kube-apiserver"),
    [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=127.0.0.1`,
      `--advertise-address=127.0.0.1`,
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "pki")}`,
      `--tls-cert-file=${pki("apiserver.crt")}`,
      `--tls-private-key-file=${pki("apiserver.key")}`,
      `--client-ca-file=${pki("ca.crt")}`,
      "--authorization-mode=RBAC",
      "--service-cluster-ip-range=10.0.0.0/24",
      `--service-account-issuer=https://kubernetes.default.svc.cluster.local`,
      `--service-account-key-file=${pki("sa.pub")}`,
      `--service-account-signing-key-file=${pki("sa.key")}`,
      "--allow-privileged=true",
      "--profiling=false",
      "--enable-priority-and-fairness=false",
      "--v=1",
    ],
    apiLog,
    detached,
  );
  processes.push(apiserver);
  const tls: ProbeTls = { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem };
  const server = `https://127.0.0.1:${apiPort}`;
  await waitUntil("kube-apiserver", apiserver, apiLog, async () => (await probe(`${server}/readyz`, tls)) === 200);

  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, kubeconfigYaml(server, ca.certPem, admin.certPem, admin.keyPem), { mode: 0o600 });

  log("starting kube-controller-manager");
  const kcmLog = join(dir, "kube-controller-manager.log");
  const kcm = startProcess(
    bin(binDir, "kube-controller-manager"),
    [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${await freePort()}`,
      `--cert-dir=${join(dir, "kcm-certs")}`,
      `--service-account-private-key-file=${pki("sa.key")}`,
      `--root-ca-file=${pki("ca.crt")}`,
      "--leader-elect=false",
      "--use-service-account-credentials=false",
      // Garbage collection, namespaces, service accounts, workloads: what tests of cleanup and the examples need.
      "--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller",
      "--concurrent-gc-syncs=5",
      "--v=1",
    ],
    kcmLog,
    detached,
  );
  processes.push(kcm);
  // The controller-manager is ready once it has created the default namespace's service account.
  await waitUntil("kube-controller-manager", kcm, kcmLog, async () => (await probe(`${server}/api/v1/namespaces/default/serviceaccounts/default`, tls)) === 200);

  const state: ControlPlaneState = {
    dir,
    server,
    kubeconfig,
    pids: { etcd: etcd.pid!, apiserver: apiserver.pid!, controllerManager: kcm.pid! },
  };
  await writeFile(join(dir, "state.json"), JSON.stringify(state, null, 2));
  return { ...state, processes };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops the processes (controller-manager first, etcd last) and removes the state directory. */
export async function stopControlPlane(state: ControlPlaneState): Promise<void> {
  for (const pid of [state.pids.controllerManager, state.pids.apiserver, state.pids.etcd]) {
    if (!isAlive(pid)) continue;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (isAlive(pid)) process.kill(pid, "SIGKILL");
  }
  await rm(state.dir, { recursive: true, force: true });
}

export async function readState(dir: string): Promise<ControlPlaneState | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as ControlPlaneState;
  } catch {
    return undefined;
  }
}
