// The injection webhook on the real control plane: a MutatingWebhookConfiguration (the product's own,
// src/operator/injection/webhook-configuration.ts) that calls https://127.0.0.1:<port>/inject, limited
// to one test namespace so that test files never see each other's webhooks; the operator under its
// ServiceAccount with the chart's injection RBAC for that configuration; helpers to create pods.
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { injectionClusterRules } from "../../src/operator/rbac.ts";
import { InjectionConfig, type InjectionConfigInput } from "../../src/operator/injection/config.ts";
import type { CertificatePolicy } from "../../src/operator/injection/certificate-plan.ts";
import { INJECT_PATH, webhookConfiguration } from "../../src/operator/injection/webhook-configuration.ts";
import { freePort } from "../../dev/control-plane.ts";
import { adminKubeConfig } from "../../dev/kube.ts";
import { OPERATOR_NAMESPACE } from "../../dev/operator-account.ts";
import { startTestOperator, type TestOperator } from "./test-operator.ts";

const kc = adminKubeConfig();
const admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);

export interface RegisteredWebhook {
  name: string;
  port: number;
  secretName: string;
}

/** Registers the webhook for one namespace on a free port (nothing listens yet) and grants the operator its RBAC. */
export async function registerWebhook(t: TestContext, namespace: string): Promise<RegisteredWebhook> {
  const name = `dagu-auth-test-${randomBytes(4).toString("hex")}`;
  const port = await freePort();
  const body = webhookConfiguration({
    name,
    clientConfig: { url: `https://127.0.0.1:${port}${INJECT_PATH}` },
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
  }) as k8s.V1MutatingWebhookConfiguration;
  await admission.createMutatingWebhookConfiguration({ body });
  await rbac.createClusterRole({ body: { metadata: { name }, rules: injectionClusterRules(name) } });
  await rbac.createClusterRoleBinding({
    body: { metadata: { name }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name }, subjects: [{ kind: "ServiceAccount", name: "dagu-auth-operator", namespace: OPERATOR_NAMESPACE }] },
  });
  t.after(async () => {
    // Deleting the configuration first: no pod of a later test can reach a webhook that is gone.
    await admission.deleteMutatingWebhookConfiguration({ name }).catch(() => undefined);
    await rbac.deleteClusterRoleBinding({ name }).catch(() => undefined);
    await rbac.deleteClusterRole({ name }).catch(() => undefined);
  });
  return { name, port, secretName: `${name}-tls` };
}

export const TEST_SIDECAR_IMAGE = "registry.example.com/dagu-auth:test";

/** The operator with injection on, serving `webhook` on 127.0.0.1, its certificates self-managed. */
export async function startInjectingOperator(
  t: TestContext,
  webhook: RegisteredWebhook,
  options: { name?: string; port?: number; policy?: Partial<Omit<CertificatePolicy, "hosts">>; config?: Partial<InjectionConfigInput>; leaderElection?: boolean } = {},
): Promise<TestOperator> {
  const config = InjectionConfig.parse({ sidecar: { image: TEST_SIDECAR_IMAGE, ...options.config?.sidecar }, ...(options.config?.daguPort ? { daguPort: options.config.daguPort } : {}) });
  const op = await startTestOperator({
    ...(options.name ? { name: options.name } : {}),
    injection: {
      address: `127.0.0.1:${options.port ?? webhook.port}`,
      config,
      certificateSecret: { namespace: OPERATOR_NAMESPACE, name: webhook.secretName },
      selfManaged: { configurationName: webhook.name, hosts: ["127.0.0.1"], ...(options.policy ? { policy: options.policy } : {}) },
    },
  });
  t.after(() => op.stop());
  return op;
}

/** A Dagu server container as people write it (the shape of examples/dagu-with-sidecar.yaml before injection). */
export function daguContainer(overrides: Partial<k8s.V1Container> = {}): k8s.V1Container {
  return {
    name: "dagu",
    image: "ghcr.io/dagucloud/dagu:2.15.1",
    command: ["dagu", "start-all"],
    env: [{ name: "DAGU_HOME", value: "/var/lib/dagu" }, { name: "DAGU_PORT", value: "8080" }],
    ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
    livenessProbe: { httpGet: { path: "/api/v1/health", port: "http" }, periodSeconds: 15 },
    readinessProbe: { httpGet: { path: "/api/v1/health", port: "http" }, periodSeconds: 5 },
    ...overrides,
  };
}

export function labelledPod(name: string, authName: string, containers: k8s.V1Container[] = [daguContainer()]): k8s.V1Pod {
  return { metadata: { name, labels: { app: "dagu", "auth.dagu.dev/inject": authName } }, spec: { containers } };
}
