// dagu_auth_operator_cached_secrets: how many Secret bodies the operator holds, by namespace, counted at
// scrape time (the memory the Secret cache costs; docs/benchmarks.md).
import { Gauge, type Registry } from "prom-client";
import type { KubeObject } from "../../common/kube/client.ts";

export function countCachedSecrets(registry: Registry, cache: { bodies(): KubeObject[] }): void {
  new Gauge({
    name: "dagu_auth_operator_cached_secrets",
    help: "Secret bodies in the operator's cache by namespace: the ones it owns, and the referenced ones it has read.",
    labelNames: ["namespace"] as const,
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const s of cache.bodies()) counts.set(s.metadata.namespace ?? "", (counts.get(s.metadata.namespace ?? "") ?? 0) + 1);
      for (const [namespace, n] of counts) this.set({ namespace }, n);
    },
  });
}
