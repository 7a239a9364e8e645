// The operator's account on the local control plane, as in a cluster: its namespace, its ServiceAccount
// bound to exactly the documented RBAC (src/operator/rbac.ts), and a kubeconfig with a TokenRequest token
// (never the admin certificate), for the tests (test/harness/test-operator.ts) and bench:operator.
import * as k8s from "@kubernetes/client-node";
import { OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACE_RULES } from "../src/operator/rbac.ts";
import { adminKubeConfig, serviceAccountKubeConfig } from "./kube.ts";

export const OPERATOR_NAMESPACE = "dagu-auth-system";
const SA = "dagu-auth-operator";

let prepared: Promise<void> | undefined;

/** Creates the operator's namespace, ServiceAccount and RBAC once per test process. */
function prepare(): Promise<void> {
  prepared ??= (async () => {
    const kc = adminKubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    const ignoreExists = (err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    };
    await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch(ignoreExists);
    await core.createNamespacedServiceAccount({ namespace: OPERATOR_NAMESPACE, body: { metadata: { name: SA } } }).catch(ignoreExists);
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
    const role = { metadata: { name: SA }, rules: OPERATOR_NAMESPACE_RULES };
    await rbac.createNamespacedRole({ namespace: OPERATOR_NAMESPACE, body: role }).catch(async (err: unknown) => {
      ignoreExists(err);
      await rbac.replaceNamespacedRole({ name: SA, namespace: OPERATOR_NAMESPACE, body: role });
    });
    await rbac
      .createNamespacedRoleBinding({
        namespace: OPERATOR_NAMESPACE,
        body: { metadata: { name: SA }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: SA }, subjects: [{ kind: "ServiceAccount", name: SA, namespace: OPERATOR_NAMESPACE }] },
      })
      .catch(ignoreExists);
  })();
  return prepared;
}

/** A KubeConfig that authenticates as the operator's ServiceAccount with a fresh TokenRequest token. */
export async function operatorKubeConfig(): Promise<k8s.KubeConfig> {
  await prepare();
  return serviceAccountKubeConfig(OPERATOR_NAMESPACE, SA);
}
