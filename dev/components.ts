// Locates (and on first use builds) the real components: etcd, kube-apiserver,
// kube-controller-manager, kubectl, Dagu, helm. The build lives in
// scripts/build-components.sh; binaries are cached outside the clone.
import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");

export function cacheDir(): string {
  return process.env.DAGU_AUTH_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "dagu-auth-operator");
}

export type Component = "kube" | "etcd" | "dagu" | "dagu-ui" | "dagu1" | "helm" | "certmanager";

/** Builds what is missing (progress goes to stderr) and returns the bin directory. */
export async function ensureComponents(targets: Component[]): Promise<string> {
  const script = join(repoRoot, "scripts", "build-components.sh");
  const child = spawn("bash", [script, ...targets], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  if (code !== 0) throw new Error(`building components ${targets.join(",")} failed (exit ${code}); see the output above`);
  const lines = out.trim().split("\n");
  return lines[lines.length - 1]!;
}

/**
 * The Dagu binaries by version (scripts/build-components.sh's defaults), never the unversioned links: the
 * cache is shared by every checkout on the machine, and another one may point `dagu` elsewhere.
 */
export const DAGU_BINARIES = { dagu: "dagu-v2.15.1", "dagu-ui": "dagu-ui-v2.15.1", dagu1: "dagu-v1.30.3" } as const;

export function bin(binDir: string, name: string): string {
  return join(binDir, name);
}

/** cert-manager's real CRDs, as scripts/build-components.sh fetched them from the module cache. */
export async function certManagerCrdsDir(): Promise<string> {
  const { readdir } = await import("node:fs/promises");
  const found = (await readdir(cacheDir())).filter((d) => d.startsWith("cert-manager-v")).sort();
  if (found.length === 0) throw new Error("cert-manager CRDs are missing: run scripts/build-components.sh certmanager");
  return join(cacheDir(), found[found.length - 1]!, "crds");
}
