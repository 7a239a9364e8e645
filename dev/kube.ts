// Access to the local control plane (dev/control-plane.ts) for whatever runs against it: the tests (one
// control plane per run, started by test/harness/global-setup.ts), the benches and the demo. Its kubeconfig
// comes from DAGU_AUTH_TEST_KUBECONFIG, its binaries from DAGU_AUTH_TEST_BIN.
import { spawn } from "node:child_process";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { KubeConfig } from "../src/common/kube/config.ts";

export const KUBECONFIG_ENV = "DAGU_AUTH_TEST_KUBECONFIG";
export const BIN_ENV = "DAGU_AUTH_TEST_BIN";

export function testKubeconfigPath(): string {
  const path = process.env[KUBECONFIG_ENV];
  if (!path) throw new Error(`${KUBECONFIG_ENV} is not set: run integration tests through npm test (its global setup starts the control plane)`);
  return path;
}

export function binDir(): string {
  const dir = process.env[BIN_ENV];
  if (!dir) throw new Error(`${BIN_ENV} is not set: run integration tests through npm test`);
  return dir;
}

export function adminKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(testKubeconfigPath());
  return kc;
}

/** The admin credentials as the product's own KubeConfig (src/common/kube/config.ts). */
export function adminAccess(): KubeConfig {
  return KubeConfig.fromFile(testKubeconfigPath());
}

/** A client-node KubeConfig (the tests' own API calls use client-node) as the product's KubeConfig. */
export function toKubeConfig(kc: k8s.KubeConfig): KubeConfig {
  return KubeConfig.fromText(kc.exportConfig(), { source: "test kubeconfig" });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: string[], input?: string, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: env ?? process.env });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  // A command may exit before reading its input (EPIPE): its exit code tells what happened.
  child.stdin.on("error", () => undefined);
  if (input === undefined) child.stdin.end();
  else child.stdin.end(input);
  const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? -1)));
  return { code, stdout, stderr };
}

/** Runs the real kubectl against the test control plane. */
export function kubectl(args: string[], input?: string, kubeconfig = testKubeconfigPath()): Promise<RunResult> {
  return run(join(binDir(), "kubectl"), ["--kubeconfig", kubeconfig, ...args], input);
}

/** A KubeConfig that authenticates as a ServiceAccount with a fresh TokenRequest token (never the admin cert). */
export async function serviceAccountKubeConfig(namespace: string, serviceAccount: string): Promise<k8s.KubeConfig> {
  const admin = adminKubeConfig();
  const tr = await admin.makeApiClient(k8s.CoreV1Api).createNamespacedServiceAccountToken({ name: serviceAccount, namespace, body: { spec: { expirationSeconds: 3600, audiences: [] } } });
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: serviceAccount, token: tr.status!.token }],
    contexts: [{ name: "local", cluster: "local", user: serviceAccount }],
    currentContext: "local",
  });
  return kc;
}
