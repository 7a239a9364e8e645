// Starts the operator as a short sequence of wiring steps (src/operator/wiring/): the caches, the queues
// and the reconcilers' context, the event routing, the caches started (a follower is ready to take over
// warm), the servers every replica runs, and the reconcilers, which run only while leading.
import { availableParallelism } from "node:os";
import pino, { type Logger } from "pino";
import { MAX_INLINE_BYTES } from "../api/index.ts";
import { KubeClient } from "../common/kube/client.ts";
import type { KubeConfig } from "../common/kube/config.ts";
import { instanceSelector } from "./context.ts";
import type { InjectionOptions, RunningInjection } from "./injection/index.ts";
import { EventRecorder } from "./runtime/events.ts";
import type { HealthServer } from "./runtime/health.ts";
import { OperatorMetrics } from "./runtime/metrics.ts";
import { countCachedSecrets } from "./wiring/cached-secrets-gauge.ts";
import { openCaches, startCaches } from "./wiring/caches.ts";
import { watchCertificatesWhenServed } from "./wiring/certificate-watch.ts";
import { routeEvents } from "./wiring/event-routing.ts";
import { stopInSteps } from "./wiring/graceful-stop.ts";
import { kubeWriter } from "./wiring/kube-writer.ts";
import { leaderElector, leadWith, type LeaderElectionConfig } from "./wiring/leadership.ts";
import { operatorContext } from "./wiring/operator-context.ts";
import { DEFAULT_USER_WORKERS, enqueueTo, reconcilers, workQueues } from "./wiring/reconcilers.ts";
import { startServing } from "./wiring/serving.ts";

export { DEFAULT_USER_WORKERS };

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  /** host:port of /healthz, /readyz and /metrics; undefined: no server. */
  healthAddress?: string;
  leaderElection?: LeaderElectionConfig;
  /**
   * Workers for DaguUser reconciles (default 16; API keys and webhooks get 4). More than there are
   * hashing slots: a reconcile also waits for the API server, and the hashes must never run dry.
   */
  userConcurrency?: number;
  /**
   * argon2id hashes at once (default: the CPUs, at most 4, libuv's default thread pool). Bounds the CPU
   * and the memory hashing takes (19 MiB each) however many users change at once.
   */
  hashConcurrency?: number;
  resyncPeriodMs?: number;
  /** Shard the credentials document above this many bytes (default MAX_INLINE_BYTES, about 900 KiB). */
  maxInlineBytes?: number;
  /**
   * Act only on resources labelled auth.dagu.dev/instance=<this> (absent: only on resources without that
   * label), so that two installs never act on the same objects.
   */
  instance?: string;
  /** The sidecar injection webhook (served by every replica, leader or not). */
  injection?: InjectionOptions;
  /**
   * A namespaced install (ADR 0014): watch, cache and write only in these namespaces, whose Roles are all
   * the RBAC it has; undefined: the whole cluster.
   */
  namespaces?: readonly string[];
}

export interface RunningOperator {
  health?: HealthServer;
  injection?: RunningInjection;
  metrics: OperatorMetrics;
  readonly isLeader: boolean;
  /** Stops reconciling, releases the lease (so a follower takes over at once), stops the caches. */
  stop(): Promise<void>;
  /** Resolves when leadership was lost (the process should exit, as controller-runtime does). */
  lostLeadership: Promise<void>;
}

export const defaultHashConcurrency = () => Math.min(availableParallelism(), 4);

export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const log = options.logger ?? pino({ name: "dagu-auth-operator" });
  const { kubeConfig } = options;
  const client = new KubeClient(kubeConfig);
  const metrics = new OperatorMetrics({ processMetrics: true });
  const caches = openCaches({ kubeConfig, client, log, resyncPeriodMs: options.resyncPeriodMs ?? 10 * 60_000, instance: instanceSelector(options.instance), namespaces: options.namespaces });
  const queues = workQueues(metrics, log);
  const ctx = operatorContext({
    log,
    caches,
    writer: kubeWriter(client),
    events: new EventRecorder({ kube: client, logger: log }),
    enqueue: enqueueTo(queues),
    metrics,
    hashConcurrency: options.hashConcurrency ?? defaultHashConcurrency(),
    maxInlineBytes: options.maxInlineBytes ?? MAX_INLINE_BYTES,
  });
  routeEvents(caches, ctx);
  countCachedSecrets(metrics.registry, caches.secrets);

  let stopping: Promise<void> | undefined;
  const isStopping = () => stopping !== undefined;
  startCaches(caches, isStopping);
  const certificateWatch = watchCertificatesWhenServed({ client, certificates: caches.certificates, auths: caches.kinds.auths, enqueueAuth: ctx.enqueue.auth, log });
  const elector = leaderElector(options.leaderElection, kubeConfig, log);
  const { injection, health } = await startServing({
    kubeConfig,
    log,
    registry: metrics.registry,
    injection: options.injection,
    healthAddress: options.healthAddress,
    instance: options.instance,
    auths: caches.kinds.auths,
    serviceAccounts: caches.owned[0],
    synced: caches.all,
    elector,
  });
  const running = reconcilers({ queues, ctx, kinds: caches.kinds, synced: caches.all, metrics, log, userWorkers: options.userConcurrency ?? DEFAULT_USER_WORKERS, stopping: isStopping });
  const lostLeadership = leadWith(elector, running, log, isStopping);

  return {
    ...(health ? { health } : {}),
    ...(injection ? { injection } : {}),
    metrics,
    get isLeader() {
      return running.running;
    },
    lostLeadership,
    stop() {
      stopping ??= stopInSteps(
        [
          { what: "reconciles in flight", run: () => running.stop() },
          ...(elector
            ? [
                { what: "releasing the Lease", run: () => elector.release().catch(() => undefined) },
                { what: "leader election", run: () => elector.stop() },
              ]
            : []),
          { what: "the cert-manager poll", run: async () => certificateWatch.stop() },
          { what: "watches", run: () => Promise.all([...caches.all, caches.certificates].map((i) => i.stop())) },
          ...(injection ? [{ what: "injection webhook", run: () => injection.stop() }] : []),
          ...(health ? [{ what: "health server", run: () => health.close() }] : []),
        ],
        log,
      );
      return stopping;
    },
  };
}
