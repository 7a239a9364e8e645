// Leader election (optional: without it this replica always leads): the reconcilers run while this
// replica holds the Lease, and stop when it is lost or released. A lost Lease resolves lostLeadership,
// and the process should exit, as controller-runtime's does.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { KubeConfig } from "../../common/kube/config.ts";
import { LeaderElector } from "../runtime/leader-election.ts";
import type { Reconcilers } from "./reconcilers.ts";

export interface LeaderElectionConfig {
  namespace: string;
  name?: string;
  identity?: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

export function leaderElector(config: LeaderElectionConfig | undefined, kubeConfig: KubeConfig, log: Logger): LeaderElector | undefined {
  if (!config) return undefined;
  return new LeaderElector({
    kubeConfig,
    namespace: config.namespace,
    name: config.name ?? "dagu-auth-operator",
    // Unique per instance: two operators in one process (tests) must not share one.
    identity: config.identity ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
    ...(config.leaseDurationSeconds ? { leaseDurationSeconds: config.leaseDurationSeconds } : {}),
    ...(config.renewDeadlineMs ? { renewDeadlineMs: config.renewDeadlineMs } : {}),
    ...(config.retryPeriodMs ? { retryPeriodMs: config.retryPeriodMs } : {}),
    logger: log,
  });
}

/** Runs the reconcilers while leading (at once without an elector); resolves when leadership was lost or released. */
export function leadWith(elector: LeaderElector | undefined, reconcilers: Reconcilers, log: Pick<Logger, "info" | "warn">, stopping: () => boolean): Promise<void> {
  if (!elector) {
    void reconcilers.start();
    return new Promise<void>(() => undefined);
  }
  return new Promise<void>((resolveLost) => {
    void elector.run({
      onStartedLeading: (signal) => reconcilers.start(signal),
      onStoppedLeading: () => {
        if (stopping()) log.info("released leadership");
        else log.warn("lost leadership; stopping reconcilers");
        void reconcilers.stop().then(resolveLost);
      },
    });
  });
}
