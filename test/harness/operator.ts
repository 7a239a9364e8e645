// Runs the operator in tests as it runs in a cluster: under its own
// ServiceAccount, bound to exactly the documented RBAC (src/operator/rbac.ts),
// authenticated with a TokenRequest token, never with the admin certificate. With
// DAGU_AUTH_TEST_NAMESPACED=1 it runs as a namespaced install (ADR 0014): another ServiceAccount, no
// ClusterRole, a Role in each namespace the test created, and those namespaces only.
import { randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import pino, { type Logger } from "pino";
import { OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACE_RULES, type PolicyRule } from "../../src/operator/rbac.ts";
import { startOperator, type OperatorOptions, type RunningOperator } from "../../src/operator/operator.ts";
import { adminKubeConfig, liveNamespaces, serviceAccountKubeConfig, toKubeConfig } from "./kube.ts";

export const OPERATOR_NAMESPACE = "dagu-auth-system";
export const NAMESPACED = process.env.DAGU_AUTH_TEST_NAMESPACED === "1";
// Its own ServiceAccount: a ClusterRoleBinding of the cluster-wide one must not lend it anything.
const SA = NAMESPACED ? "dagu-auth-operator-namespaced" : "dagu-auth-operator";

let prepared: Promise<void> | undefined;

/** Creates the operator's namespace, ServiceAccount and RBAC once per test process. */
function prepare(): Promise<void> {
  prepared ??= (async () => {
    const kc = adminKubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch(ignoreExists);
    await core.createNamespacedServiceAccount({ namespace: OPERATOR_NAMESPACE, body: { metadata: { name: SA } } }).catch(ignoreExists);
    if (NAMESPACED) return grantLease();
    // Replaced when it exists: a reused control plane may hold the rules of an older rbac.ts.
    const clusterRole = { metadata: { name: SA }, rules: OPERATOR_CLUSTER_RULES };
    await rbac.createClusterRole({ body: clusterRole }).catch(async (err: unknown) => {
      ignoreExists(err);
      await rbac.replaceClusterRole({ name: SA, body: clusterRole });
    });
    await rbac
      .createClusterRoleBinding({
        body: { metadata: { name: SA }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: SA }, subjects: [{ kind: "ServiceAccount", name: SA, namespace: OPERATOR_NAMESPACE }] },
      })
      .catch(ignoreExists);
    await grantLease();
  })();
  return prepared;
}

const ignoreExists = (err: unknown) => {
  if ((err as { code?: number }).code !== 409) throw err;
};

/** A Role and RoleBinding for the ServiceAccount in `namespace` (replaced when they exist). */
async function grant(namespace: string, rules: PolicyRule[]): Promise<void> {
  const rbac = adminKubeConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
  const role = { metadata: { name: SA }, rules };
  await rbac.createNamespacedRole({ namespace, body: role }).catch(async (err: unknown) => {
    ignoreExists(err);
    await rbac.replaceNamespacedRole({ name: SA, namespace, body: role });
  });
  await rbac
    .createNamespacedRoleBinding({
      namespace,
      body: { metadata: { name: SA }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: SA }, subjects: [{ kind: "ServiceAccount", name: SA, namespace: OPERATOR_NAMESPACE }] },
    })
    .catch(ignoreExists);
}

function grantLease(): Promise<void> {
  return grant(OPERATOR_NAMESPACE, OPERATOR_NAMESPACE_RULES);
}

/** A KubeConfig that authenticates as the operator's ServiceAccount with a fresh TokenRequest token. */
export async function operatorKubeConfig(): Promise<k8s.KubeConfig> {
  await prepare();
  return serviceAccountKubeConfig(OPERATOR_NAMESPACE, SA);
}

export interface TestOperator extends RunningOperator {
  logs: string[];
}

/** Starts the operator in this process under its ServiceAccount; its JSON logs are kept for scanning. */
export async function startTestOperator(options: Partial<OperatorOptions> & { name?: string } = {}): Promise<TestOperator> {
  const logs: string[] = [];
  const logger: Logger = pino({ level: "debug", base: { instance: options.name ?? "op" } }, { write: (line: string) => void logs.push(line) });
  const namespaces = options.namespaces ?? (NAMESPACED ? [...liveNamespaces] : undefined);
  if (NAMESPACED) for (const namespace of namespaces ?? []) await grant(namespace, OPERATOR_CLUSTER_RULES);
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
