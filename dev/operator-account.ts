// The operator's account on the local control plane, as in a cluster: its namespace, its ServiceAccount
// bound to exactly the documented RBAC (src/operator/rbac.ts), and a kubeconfig with a TokenRequest token
// (never the admin certificate), for the tests (test/harness/test-operator.ts) and bench:operator. With
// DAGU_AUTH_TEST_NAMESPACED=1, a namespaced install (ADR 0014): another ServiceAccount, no ClusterRole, a
// Role in each namespace it is granted (grantNamespace).
import * as k8s from "@kubernetes/client-node";
import { OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACE_RULES, type PolicyRule } from "../src/operator/rbac.ts";
import { adminKubeConfig, serviceAccountKubeConfig } from "./kube.ts";

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

/** A namespaced install: the operator's rules as a Role in `namespace`. */
export function grantNamespace(namespace: string): Promise<void> {
  return grant(namespace, OPERATOR_CLUSTER_RULES);
}

function grantLease(): Promise<void> {
  return grant(OPERATOR_NAMESPACE, OPERATOR_NAMESPACE_RULES);
}

/** A KubeConfig that authenticates as the operator's ServiceAccount with a fresh TokenRequest token. */
export async function operatorKubeConfig(): Promise<k8s.KubeConfig> {
  await prepare();
  return serviceAccountKubeConfig(OPERATOR_NAMESPACE, SA);
}
