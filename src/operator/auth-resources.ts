// The objects a DaguAuth owns besides its credentials: the sidecar's
// ServiceAccount, Role and RoleBinding (least privilege: the credentials Secrets by
// name, the password-changes Secret to patch, the TLS Secret), the
// password-changes Secret itself, and a cert-manager Certificate when an issuer is
// named. Pure builders; the sidecar objects step (dagu-auth-sidecar-objects.ts) applies them.
import { credentialsSecretName, loginThrottleSecretName, passwordChangesSecretName, ssoUsersSecretName, type DaguAuthSpec } from "../api/index.ts";
import { ownedLabels } from "./context.ts";
import { ownerReference } from "./runtime/apply.ts";
import { operatorStateSecretName } from "./operator-state.ts";
import type { KubeObject } from "../common/kube/client.ts";

export const sidecarServiceAccountName = (auth: KubeObject, spec: DaguAuthSpec) => spec.sidecar?.serviceAccountName ?? `${auth.metadata.name}-sidecar`;
export const sidecarRoleName = (auth: KubeObject) => `${auth.metadata.name}-sidecar`;
export const tlsSecretName = (auth: KubeObject, spec: DaguAuthSpec) => (spec.tls ? (spec.tls.secretName ?? `${auth.metadata.name}-tls`) : undefined);

function meta(auth: KubeObject, name: string): KubeObject["metadata"] {
  return {
    name,
    namespace: auth.metadata.namespace,
    labels: ownedLabels(auth, auth.metadata.name ?? ""),
    ownerReferences: [ownerReference(auth)],
  };
}

/**
 * Names of the credentials Secrets the sidecar may read. Shards are named by
 * generation, so the Role lists the ones in use and is updated with them.
 */
export function sidecarObjects(auth: KubeObject, spec: DaguAuthSpec, shardNames: readonly string[], remoteNodeSecrets: readonly string[] = []): KubeObject[] {
  const name = auth.metadata.name!;
  const sa = sidecarServiceAccountName(auth, spec);
  const role = sidecarRoleName(auth);
  const tls = spec.tls ? tlsSecretName(auth, spec) : undefined;
  const rules: Record<string, unknown>[] = [
    // list and watch cannot be limited by name in RBAC unless the request names it
    // (a fieldSelector on metadata.name), which is how the sidecar watches.
    { apiGroups: [""], resources: ["secrets"], resourceNames: [credentialsSecretName(name), ...shardNames], verbs: ["get", "list", "watch"] },
    // The Secrets the sidecar writes: self-service password changes and the users SSO creates.
    { apiGroups: [""], resources: ["secrets"], resourceNames: [passwordChangesSecretName(name), ssoUsersSecretName(name)], verbs: ["get", "list", "watch", "patch"] },
    // Login throttling shared by the sidecar replicas: each writes its own key of this Secret.
    { apiGroups: [""], resources: ["secrets"], resourceNames: [loginThrottleSecretName(name)], verbs: ["get", "list", "watch", "patch"] },
  ];
  if (tls) rules.push({ apiGroups: [""], resources: ["secrets"], resourceNames: [tls], verbs: ["get", "list", "watch"] });
  // The keys (and CAs) of the remote nodes, which the sidecar sends (remote-nodes.ts).
  if (remoteNodeSecrets.length > 0) rules.push({ apiGroups: [""], resources: ["secrets"], resourceNames: [...remoteNodeSecrets], verbs: ["get", "list", "watch"] });
  return [
    // No automatic token: a pod that runs as it (by mistake, or Dagu's other components) gets none;
    // the injected pod and the example project one into the sidecar container alone (ADR 0011).
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(auth, sa), automountServiceAccountToken: false },
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: meta(auth, role), rules },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(auth, role),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role },
      subjects: [{ kind: "ServiceAccount", name: sa, namespace: auth.metadata.namespace }],
    },
  ];
}

/** Created empty once; afterwards its data belongs to the sidecar (the operator only reads it). */
export function passwordChangesSecret(auth: KubeObject): KubeObject {
  return { apiVersion: "v1", kind: "Secret", metadata: meta(auth, passwordChangesSecretName(auth.metadata.name!)), type: "Opaque", data: {} };
}

/**
 * Created empty once; its data belongs to the sidecar replicas (each writes its own key, several times a
 * second during an attack). Without the auth label: its changes are none of the DaguAuth's reconciles.
 */
export function loginThrottleSecret(auth: KubeObject): KubeObject {
  const metadata = meta(auth, loginThrottleSecretName(auth.metadata.name!));
  return { apiVersion: "v1", kind: "Secret", metadata: { ...metadata, labels: ownedLabels(auth) }, type: "Opaque", data: {} };
}

/** Created empty once; the sidecar adds the users single sign-on creates (the operator reports them). */
export function ssoUsersSecret(auth: KubeObject): KubeObject {
  return { apiVersion: "v1", kind: "Secret", metadata: meta(auth, ssoUsersSecretName(auth.metadata.name!)), type: "Opaque", data: {} };
}

export function certificate(auth: KubeObject, spec: DaguAuthSpec): KubeObject | undefined {
  const issuer = spec.tls?.issuerRef;
  if (!issuer) return undefined;
  return {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: meta(auth, `${auth.metadata.name}-tls`),
    spec: {
      secretName: tlsSecretName(auth, spec),
      dnsNames: spec.tls?.dnsNames ?? [],
      issuerRef: { name: issuer.name, kind: issuer.kind, group: issuer.group },
      usages: ["server auth", "digital signature", "key encipherment"],
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
    },
  };
}

export const OWNED_SECRET_NAMES = (authName: string) => [credentialsSecretName(authName), passwordChangesSecretName(authName), loginThrottleSecretName(authName), ssoUsersSecretName(authName), operatorStateSecretName(authName)];
