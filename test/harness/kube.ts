// Helpers for tests against the real control plane started by global-setup.ts:
// one control plane per test run, a namespace per test.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { KubeConfig } from "../../src/common/kube/config.ts";
import type { TestContext } from "node:test";

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

/** The namespaces testNamespace created that the tests have not deleted yet (a namespaced operator watches them). */
export const liveNamespaces = new Set<string>();

/** Creates a fresh namespace for one test and deletes it when the test ends. */
export async function testNamespace(t: TestContext, prefix = "t"): Promise<string> {
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  const slug = t.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 30).replace(/^-|-$/g, "");
  const name = `${prefix}-${slug}-${randomBytes(3).toString("hex")}`.replace(/-+/g, "-");
  await core.createNamespace({ body: { metadata: { name, labels: { "dagu-auth-test": "true" } } } });
  liveNamespaces.add(name);
  t.after(async () => {
    liveNamespaces.delete(name);
    await core.deleteNamespace({ name }).catch(() => undefined);
  });
  return name;
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ""}`);
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
