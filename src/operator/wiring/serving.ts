// What every replica serves, leader or not: the sidecar injection webhook (when configured), and
// /healthz, /readyz and /metrics (when an address is given). Ready means: the caches synced, the leader
// election is healthy, the injection webhook can serve.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { KubeConfig } from "../../common/kube/config.ts";
import type { ObjectCache } from "../context.ts";
import { startInjection, type InjectionOptions, type RunningInjection } from "../injection/index.ts";
import { informersSynced, leaderElectionHealthy, startHealthServer, type HealthServer } from "../runtime/health.ts";

export interface ServingOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  registry: Registry;
  injection: InjectionOptions | undefined;
  /** host:port of the health server; undefined: none. */
  healthAddress: string | undefined;
  instance: string | undefined;
  auths: ObjectCache;
  serviceAccounts: ObjectCache;
  /** The caches readiness waits for. */
  synced: readonly { readonly synced: boolean }[];
  elector: { health(): true | string } | undefined;
}

export async function startServing(options: ServingOptions): Promise<{ injection?: RunningInjection; health?: HealthServer }> {
  const { kubeConfig, log, registry } = options;
  const injection = options.injection
    ? await startInjection({ kubeConfig, logger: log, registry, auths: options.auths, serviceAccounts: options.serviceAccounts, options: options.injection, ...(options.instance ? { instance: options.instance } : {}) })
    : undefined;
  const health =
    options.healthAddress !== undefined
      ? await startHealthServer({
          address: options.healthAddress,
          registry,
          readiness: [informersSynced(options.synced), ...(options.elector ? [leaderElectionHealthy(options.elector)] : []), ...(injection ? [injection.readiness] : [])],
        })
      : undefined;
  return { ...(injection ? { injection } : {}), ...(health ? { health } : {}) };
}
