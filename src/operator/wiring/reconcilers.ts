// A work queue and a reconciler per kind, run only while this replica leads: after the caches synced, a
// full pass (nothing was reconciled while another replica led), then workers per kind (DaguUsers get the
// most: a reconcile also waits for the API server, and the hashing slots must never run dry). Each
// reconcile is timed into the metrics; a failed one is retried with backoff by its queue.
import type { Logger } from "pino";
import type { Informer } from "../../common/kube/informer.ts";
import { keyOf, type Enqueue, type OperatorContext } from "../context.ts";
import { reconcileDaguAuth } from "../dagu-auth-reconciler.ts";
import { reconcileDaguUser } from "../dagu-user-reconciler.ts";
import { reconcileDaguApiKey } from "../dagu-api-key-reconciler.ts";
import { reconcileDaguWebhook } from "../dagu-webhook-reconciler.ts";
import type { OperatorMetrics } from "../runtime/metrics.ts";
import { childReconcilerAccess } from "./child-access.ts";
import { WorkQueue, type Result } from "../runtime/work-queue.ts";
import { KIND_OF, type KindName } from "./caches.ts";

export const DEFAULT_USER_WORKERS = 16;
const OTHER_WORKERS = { auths: 2, apiKeys: 4, webhooks: 4 };

export type Queues = Record<KindName, WorkQueue>;

export function workQueues(metrics: Pick<OperatorMetrics, "recordRetry" | "observeQueue">, log: Pick<Logger, "warn">): Queues {
  const queueFor = (kind: string) =>
    new WorkQueue({
      onError: (key, error, retryInMs) => {
        metrics.recordRetry(kind);
        log.warn({ kind, key, retryInMs, err: error instanceof Error ? error.message : String(error) }, "reconcile failed; retrying");
      },
    });
  const queues = { auths: queueFor("DaguAuth"), users: queueFor("DaguUser"), apiKeys: queueFor("DaguApiKey"), webhooks: queueFor("DaguWebhook") };
  for (const [k, q] of Object.entries(queues)) metrics.observeQueue(KIND_OF[k as KindName], q);
  return queues;
}

export function enqueueTo(queues: Queues): Enqueue {
  return {
    auth: (k) => queues.auths.add(k),
    user: (k) => queues.users.add(k),
    apiKey: (k) => queues.apiKeys.add(k),
    webhook: (k) => queues.webhooks.add(k),
  };
}

export interface ReconcilerOptions {
  queues: Queues;
  ctx: OperatorContext;
  kinds: Record<KindName, Informer>;
  /** Every cache that must have synced before the first reconcile. */
  synced: readonly Informer[];
  metrics: Pick<OperatorMetrics, "recordReconcile">;
  log: Logger;
  userWorkers: number;
  /** True once the operator is stopping: a leadership gained meanwhile starts nothing. */
  stopping(): boolean;
}

export interface Reconcilers {
  /** Runs the reconcilers once the caches synced; `signal` (leadership lost) aborts the wait. */
  start(signal?: AbortSignal): Promise<void>;
  /** Stops taking work and waits for the reconciles in flight. */
  stop(): Promise<void>;
  readonly running: boolean;
}

export function reconcilers(options: ReconcilerOptions): Reconcilers {
  const { queues, ctx, kinds, metrics, log } = options;
  const children = childReconcilerAccess(ctx);
  let running = false;
  const timed = (kind: string, fn: (key: string) => Promise<Result | undefined>) => async (key: string): Promise<Result | undefined> => {
    const start = process.hrtime.bigint();
    try {
      const r = await fn(key);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.recordReconcile(kind, r?.requeueAfter !== undefined ? "requeue" : "success", seconds);
      log.debug({ kind, key, ms: Math.round(seconds * 1000), requeueAfterMs: r?.requeueAfter }, "reconciled");
      return r;
    } catch (err) {
      metrics.recordReconcile(kind, "error", Number(process.hrtime.bigint() - start) / 1e9);
      throw err;
    }
  };
  return {
    get running() {
      return running;
    },
    async start(signal?: AbortSignal) {
      // Abortable: a release() waits for this function, and an informer that never started (stop() came
      // before the caches it waits for) would otherwise never sync and hold the stop forever.
      const aborted = new Promise<void>((resolve) => (signal?.aborted ? resolve() : signal?.addEventListener("abort", () => resolve(), { once: true })));
      // hasSynced rejects only for an informer stopped before it synced: the stop is what follows.
      await Promise.race([Promise.all(options.synced.map((i) => i.hasSynced)).catch(() => undefined), aborted]);
      if (signal?.aborted || options.stopping()) return;
      running = true;
      log.info("caches synced; reconciling");
      // A full pass after (re)gaining leadership: nothing happened while we did not lead.
      for (const o of kinds.auths.list()) ctx.enqueue.auth(keyOf(o));
      for (const o of kinds.users.list()) ctx.enqueue.user(keyOf(o));
      for (const o of kinds.apiKeys.list()) ctx.enqueue.apiKey(keyOf(o));
      for (const o of kinds.webhooks.list()) ctx.enqueue.webhook(keyOf(o));
      // The DaguAuth reconcile composes its steps from the whole context; each child only what it names.
      void queues.auths.run(OTHER_WORKERS.auths, timed("DaguAuth", (key) => reconcileDaguAuth(ctx, key)));
      void queues.users.run(options.userWorkers, timed("DaguUser", (key) => reconcileDaguUser(children.users, key)));
      void queues.apiKeys.run(OTHER_WORKERS.apiKeys, timed("DaguApiKey", (key) => reconcileDaguApiKey(children.apiKeys, key)));
      void queues.webhooks.run(OTHER_WORKERS.webhooks, timed("DaguWebhook", (key) => reconcileDaguWebhook(children.webhooks, key)));
    },
    async stop() {
      running = false;
      await Promise.all(Object.values(queues).map((q) => q.shutDown()));
    },
  };
}
