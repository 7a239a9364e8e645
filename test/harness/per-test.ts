// What each integration test gets from the shared control plane (dev/kube.ts): a namespace of its own,
// deleted when the test ends, and a way to wait until the cluster has got where the test expects.
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig } from "../../dev/kube.ts";

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
