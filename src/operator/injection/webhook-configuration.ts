// The MutatingWebhookConfiguration of the injection, the one source of its rules: the chart renders the
// same (test/integration/injection-chart.test.ts compares), the integration tests register it with
// the real API server. Two webhooks, both on pod creation only:
// - by label: objectSelector `auth.dagu.dev/inject` exists. The API server sends no other pod, so a
//   webhook that is down blocks nothing but the pods that asked for it.
// - by annotation, for charts that can annotate their pods but not label them (Dagu's own chart has
//   podAnnotations and no podLabels): objectSelector "no such label" (no pod is sent twice) and a
//   matchCondition, which the API server evaluates itself, on the annotation. Same guarantee.
// With an operator instance (--instance, chart operator.instance), each install's webhook takes only the
// pods of its instance (label, or annotation, auth.dagu.dev/instance), so a pod meets one webhook.
// failurePolicy Fail: a pod that asked for the sidecar is never admitted without it. sideEffects
// None: the webhook writes nothing, so server-side dry runs call it too. reinvocationPolicy
// IfNeeded: when a later webhook changes the pod, the mutation runs again (it is idempotent) and
// refuses what it must (a token mounted into Dagu's container).
import type { KubeObject } from "../../common/kube/client.ts";
import { INSTANCE_LABEL } from "../context.ts";
import { INJECT_LABEL } from "./mutate.ts";
import { INJECT_PATH } from "./webhook-server.ts";

export const LABEL_WEBHOOK = "inject.auth.dagu.dev";
export const ANNOTATION_WEBHOOK = "inject-annotated.auth.dagu.dev";
export const TIMEOUT_SECONDS = 5;

export type ClientConfig = { url: string; caBundle?: string } | { service: { name: string; namespace: string; port: number; path: string }; caBundle?: string };

export interface WebhookConfigurationOptions {
  name: string;
  /** Where the API server calls (path INJECT_PATH is added to a service reference by the caller). */
  clientConfig: ClientConfig;
  /** Only pods of these namespaces (the tests keep to their own); absent: every namespace. */
  namespaceSelector?: Record<string, unknown>;
  labels?: Record<string, string>;
  /** The operator's instance (absent: the install without one). */
  instance?: string;
}

export const ANNOTATION_CONDITION = `has(object.metadata.annotations) && '${INJECT_LABEL}' in object.metadata.annotations`;

/** The pods of one install: its instance's label or annotation, or none of either for the install without one. */
function instanceSelection(instance: string | undefined) {
  return {
    label: instance ? { key: INSTANCE_LABEL, operator: "In", values: [instance] } : { key: INSTANCE_LABEL, operator: "DoesNotExist" },
    annotation: instance
      ? `object.metadata.annotations['${INSTANCE_LABEL}'] == '${instance}'`
      : `!('${INSTANCE_LABEL}' in object.metadata.annotations)`,
  };
}

export function webhookRules(): Record<string, unknown> {
  return {
    rules: [{ apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"], scope: "Namespaced" }],
    failurePolicy: "Fail",
    matchPolicy: "Equivalent",
    sideEffects: "None",
    timeoutSeconds: TIMEOUT_SECONDS,
    admissionReviewVersions: ["v1"],
    reinvocationPolicy: "IfNeeded",
  };
}

export function webhookConfiguration(o: WebhookConfigurationOptions): KubeObject {
  const common = { clientConfig: o.clientConfig, ...webhookRules(), namespaceSelector: o.namespaceSelector ?? {} };
  const instance = instanceSelection(o.instance);
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: { name: o.name, ...(o.labels ? { labels: o.labels } : {}) },
    webhooks: [
      { name: LABEL_WEBHOOK, ...common, objectSelector: { matchExpressions: [{ key: INJECT_LABEL, operator: "Exists" }, instance.label] } },
      {
        name: ANNOTATION_WEBHOOK,
        ...common,
        objectSelector: { matchExpressions: [{ key: INJECT_LABEL, operator: "DoesNotExist" }] },
        matchConditions: [
          { name: "annotated", expression: ANNOTATION_CONDITION },
          { name: "instance", expression: `has(object.metadata.annotations) && ${instance.annotation}` },
        ],
      },
    ],
  };
}

export { INJECT_PATH };
