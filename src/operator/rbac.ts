// The operator's own permissions, the single source for the Helm chart's RBAC and
// for the tests (which run the operator under exactly these). Why each rule:
// - our kinds: read them, write their status;
// - secrets: read the ones referenced (passwords, token secrets) and own the ones it
//   generates (credentials, shards, state, consumer Secrets). Bodies are listed and
//   watched only by the operator's label; referenced Secrets carry no label of ours, so
//   they are followed by a metadata-only watch (no data is sent) and read by name. RBAC
//   cannot tell a metadata-only list from a full one, nor name Secrets the operator
//   learns of at run time: list/watch/get stay cluster-wide;
// - serviceaccounts, roles, rolebindings: the sidecar's identity per DaguAuth. The
//   Role grants only what this operator holds itself, so no escalate or bind verbs.
//   list/watch so that one deleted or edited is put back at once; RBAC cannot limit
//   them by label, but the watch selects only the operator's own (managed-by label);
//   delete for the ones a DaguAuth stops using (a renamed ServiceAccount): only objects
//   with our label and the DaguAuth as controller are ever deleted, and nothing that exists without
//   that reference is ever written (OwnedObjectConflict);
// - certificates: the sidecar's serving certificate from cert-manager (watched, and
//   deleted when the issuer is removed, the same way);
// - events: what happened, for kubectl describe;
// - leases (namespaced Role): leader election;
// - mutatingwebhookconfigurations (injection with self-managed certificates): its own configuration
//   only, by name (the chart adds resourceNames), to publish the caBundle and own the certificate Secret.
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

export const OPERATOR_CLUSTER_RULES: PolicyRule[] = [
  { apiGroups: ["auth.dagu.dev"], resources: ["daguauths", "daguusers", "daguapikeys", "daguwebhooks"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["auth.dagu.dev"], resources: ["daguauths/status", "daguusers/status", "daguapikeys/status", "daguwebhooks/status"], verbs: ["patch"] },
  { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
  { apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  { apiGroups: ["rbac.authorization.k8s.io"], resources: ["roles", "rolebindings"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  { apiGroups: ["cert-manager.io"], resources: ["certificates"], verbs: ["get", "list", "watch", "create", "patch", "delete"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
];

/** In the operator's own namespace only. */
export const OPERATOR_NAMESPACE_RULES: PolicyRule[] = [
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];

/**
 * Sidecar injection with self-managed certificates: read and patch (the caBundle) of one
 * MutatingWebhookConfiguration. Without resourceNames here: the chart adds its configuration's name.
 */
export const INJECTION_CLUSTER_RULES: PolicyRule[] = [
  { apiGroups: ["admissionregistration.k8s.io"], resources: ["mutatingwebhookconfigurations"], verbs: ["get", "list", "watch", "patch"] },
];

/** INJECTION_CLUSTER_RULES limited to one configuration. */
export function injectionClusterRules(configurationName: string): PolicyRule[] {
  return INJECTION_CLUSTER_RULES.map((r) => ({ ...r, resourceNames: [configurationName] }));
}
