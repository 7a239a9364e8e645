// A graceful stop in steps, each bounded: a reconcile or a request that never ends must not keep the
// Lease held and the process alive (the kubelet would kill it after its grace period anyway, without
// releasing the Lease). A step that overruns is logged and the next one starts.
import type { Logger } from "pino";

/** How long each step of a graceful stop may take before the next one starts anyway. */
export const STOP_STEP_MS = 10_000;

export interface StopStep {
  what: string;
  run(): Promise<unknown>;
}

export async function stopInSteps(steps: readonly StopStep[], log: Pick<Logger, "warn">, stepMs = STOP_STEP_MS): Promise<void> {
  for (const step of steps) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), stepMs)));
    if ((await Promise.race([step.run().then(() => "done" as const), late])) === "late") log.warn({ step: step.what, waitedMs: stepMs }, "graceful stop: a step did not finish in time; going on");
    clearTimeout(timer);
  }
}
