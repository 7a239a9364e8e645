// The operator for scripts/bench-operator.ts, in a process of its own so that its
// memory and CPU are measured alone (not the benchmark's lists and creates). It runs
// as in the tests (its own ServiceAccount, RBAC, TokenRequest token: the parent writes
// that kubeconfig), but loads only the product's modules (no test harness, no
// client-node), logs JSON to the file named by argv[2], and reports its state to the
// parent every 200 ms over IPC.
import { readdirSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pino from "pino";
import { KubeConfig } from "../src/common/kube/config.ts";
import { startOperator } from "../src/operator/operator.ts";

export interface ChildReport {
  leader: boolean;
  /** Kernel high-water mark of the resident set (getrusage), in bytes: no peak falls between samples. */
  maxRss: number;
  heapUsed: number;
  /** V8's heap as reserved (live objects and garbage not yet collected), and memory outside it. */
  heapTotal: number;
  external: number;
  /** Open file descriptors, nearly all sockets to the API server: a connection pool shows here. */
  openFds: number;
  /** CPU milliseconds (user + system) so far: a reconcile in flight shows here before it is counted. */
  cpuMs: number;
  reconciles: number;
  /** Per kind: finished reconciles and the seconds spent in them. */
  byKind: Record<string, { count: number; seconds: number }>;
  retries: number;
  hashes: number;
  queueDepth: number;
  /** Longest event-loop stall since the previous report, in ms: reconciles, leases and probes all wait. */
  loopDelayMaxMs: number;
}

const [logFile, name, kubeconfigFile, leaseNamespace] = process.argv.slice(2);
if (!logFile || !name || !kubeconfigFile || !leaseNamespace || !process.send) {
  throw new Error("usage: forked by scripts/bench-operator.ts with: log file, name, kubeconfig file, lease namespace");
}
// Info, as in a cluster: debug lines for 2,400 objects would cost the operator time we measure.
const logger = pino({ level: "info", base: { instance: name } }, pino.destination({ dest: logFile, sync: false }));
const op = await startOperator({
  kubeConfig: KubeConfig.fromFile(kubeconfigFile),
  logger,
  healthAddress: "127.0.0.1:0",
  // A fresh Lease per operator: the restart measures the operator, not a lease wait.
  leaderElection: { namespace: leaseNamespace, name: `bench-${name}-${process.pid}` },
  resyncPeriodMs: 0,
});
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

type Values = { values: { value: number; labels: Record<string, string | number | undefined>; metricName?: string }[] };
const sum = async (metric: { get(): Promise<Values> }, suffix = "") =>
  (await metric.get()).values.filter((v) => !suffix || v.metricName?.endsWith(suffix)).reduce((a, v) => a + v.value, 0);
const report = async (): Promise<ChildReport> => {
  const byKind: ChildReport["byKind"] = {};
  for (const v of (await op.metrics.reconcileDuration.get()).values) {
    const k = (byKind[String(v.labels.kind)] ??= { count: 0, seconds: 0 });
    if (v.metricName?.endsWith("_count")) k.count += v.value;
    if (v.metricName?.endsWith("_sum")) k.seconds += v.value;
  }
  return {
    leader: op.isLeader,
    maxRss: process.resourceUsage().maxRSS * 1024,
    ...(({ heapUsed, heapTotal, external }) => ({ heapUsed, heapTotal, external }))(process.memoryUsage()),
    openFds: readdirSync("/proc/self/fd").length,
    cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
    reconciles: await sum(op.metrics.reconcileTotal),
    byKind,
    retries: await sum(op.metrics.retries),
    hashes: await sum(op.metrics.hashDuration, "_count"),
    queueDepth: await sum(op.metrics.queueDepth),
    loopDelayMaxMs: loopDelay.max / 1e6,
  };
};
const timer = setInterval(() => void report().then((r) => (process.send?.(r), loopDelay.reset())), 200);

process.on("message", (message) => {
  if (message !== "stop") return;
  clearInterval(timer);
  // Graceful, as on SIGTERM in a pod: queues drained, lease released, caches stopped.
  void op.stop().then(async () => {
    // Started with --expose-gc: after a full collection heapUsed is what the operator really keeps.
    (globalThis as { gc?: () => void }).gc?.();
    const last = await report();
    process.send?.(last, undefined, undefined, () => logger.flush(() => process.exit(0)));
  });
});
