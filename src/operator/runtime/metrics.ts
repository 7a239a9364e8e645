// Prometheus metrics of the controller runtime, in a registry of their own that the
// operator serves on /metrics (see health.ts). Names follow controller-runtime's where
// one exists, under the operator's prefix.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type ReconcileResult = "success" | "error" | "requeue";

export interface OperatorMetricsOptions {
  registry?: Registry;
  /** Default "dagu_auth_operator_". */
  prefix?: string;
  /** Also collect Node process metrics (CPU, memory, event loop lag). Default false. */
  processMetrics?: boolean;
}

export class OperatorMetrics {
  readonly registry: Registry;
  readonly reconcileTotal: Counter<"kind" | "result">;
  readonly reconcileDuration: Histogram<"kind">;
  readonly queueDepth: Gauge<"kind">;
  readonly retries: Counter<"kind">;
  readonly hashDuration: Histogram<"algorithm">;
  private readonly queues = new Map<string, { readonly depth: number }>();

  constructor(options: OperatorMetricsOptions = {}) {
    const prefix = options.prefix ?? "dagu_auth_operator_";
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    this.reconcileTotal = new Counter({
      name: `${prefix}reconcile_total`,
      help: "Reconciliations by kind and result (success, error, requeue).",
      labelNames: ["kind", "result"] as const,
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: `${prefix}reconcile_duration_seconds`,
      help: "Time spent in one reconciliation, by kind.",
      labelNames: ["kind"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const queues = this.queues;
    this.queueDepth = new Gauge({
      name: `${prefix}workqueue_depth`,
      help: "Keys waiting for a worker, by kind.",
      labelNames: ["kind"] as const,
      registers,
      // Sampled at scrape time from the queues registered with observeQueue.
      collect() {
        for (const [kind, queue] of queues) this.set({ kind }, queue.depth);
      },
    });
    this.retries = new Counter({
      name: `${prefix}workqueue_retries_total`,
      help: "Keys re-queued with backoff after a failed reconciliation, by kind.",
      labelNames: ["kind"] as const,
      registers,
    });
    this.hashDuration = new Histogram({
      name: `${prefix}hash_duration_seconds`,
      help: "Time spent hashing secrets (argon2id passwords, SHA-256 keys), by algorithm.",
      labelNames: ["algorithm"] as const,
      buckets: [0.000_01, 0.000_1, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix });
  }

  /** Reports `queue.depth` as the depth of `kind` at every scrape. */
  observeQueue(kind: string, queue: { readonly depth: number }): void {
    this.queues.set(kind, queue);
  }

  recordReconcile(kind: string, result: ReconcileResult, seconds: number): void {
    this.reconcileTotal.inc({ kind, result });
    this.reconcileDuration.observe({ kind }, seconds);
  }

  recordRetry(kind: string): void {
    this.retries.inc({ kind });
  }

  /** Runs `fn` and records how long it took under `algorithm`, whether it succeeded or not. */
  async timeHash<T>(algorithm: string, fn: () => Promise<T> | T): Promise<T> {
    const end = this.hashDuration.startTimer({ algorithm });
    try {
      return await fn();
    } finally {
      end();
    }
  }
}
