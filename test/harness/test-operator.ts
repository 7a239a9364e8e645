// Runs the operator in this test process as it runs in a cluster: under its own ServiceAccount with exactly
// the documented RBAC (dev/operator-account.ts), authenticated with a TokenRequest token, never with the
// admin certificate; its JSON logs are kept for the test to scan. With DAGU_AUTH_TEST_NAMESPACED=1, as a
// namespaced install (ADR 0014) watching the namespaces the running test created.
import { randomBytes } from "node:crypto";
import pino, { type Logger } from "pino";
import { startOperator, type OperatorOptions, type RunningOperator } from "../../src/operator/operator.ts";
import { toKubeConfig } from "../../dev/kube.ts";
import { grantNamespace, NAMESPACED, OPERATOR_NAMESPACE, operatorKubeConfig } from "../../dev/operator-account.ts";
import { liveNamespaces } from "./per-test.ts";

export interface TestOperator extends RunningOperator {
  logs: string[];
}

/** Starts the operator in this process under its ServiceAccount; its JSON logs are kept for scanning. */
export async function startTestOperator(options: Partial<OperatorOptions> & { name?: string } = {}): Promise<TestOperator> {
  const logs: string[] = [];
  const logger: Logger = pino({ level: "debug", base: { instance: options.name ?? "op" } }, { write: (line: string) => void logs.push(line) });
  const namespaces = options.namespaces ?? (NAMESPACED ? [...liveNamespaces] : undefined);
  if (NAMESPACED) for (const namespace of namespaces ?? []) await grantNamespace(namespace);
  const running = await startOperator({
    ...(namespaces ? { namespaces } : {}),
    kubeConfig: toKubeConfig(await operatorKubeConfig()),
    logger,
    healthAddress: "127.0.0.1:0",
    leaderElection: { namespace: OPERATOR_NAMESPACE, name: `test-${randomBytes(3).toString("hex")}`, leaseDurationSeconds: 4, renewDeadlineMs: 3000, retryPeriodMs: 500 },
    resyncPeriodMs: 0,
    ...options,
  });
  return Object.assign(running, { logs });
}
