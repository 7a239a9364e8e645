// One AdmissionReview in, one out: which DaguAuth the pod names (label, or annotation for charts that
// cannot label their pods), whether it exists and has its sidecar ServiceAccount, then the mutation as
// a JSON Patch. Every refusal says why, and nothing is admitted unprotected: a pod that opted in is
// either mutated, refused, or (Dagu's scheduler, worker, coordinator) serves nothing to protect.
import { z } from "zod";
import { DaguAuthSpec } from "../../api/index.ts";
import type { KubeObject } from "../../common/kube/client.ts";
import { sidecarServiceAccountName, tlsSecretName } from "../auth-resources.ts";
import { AUTH_LABEL, INSTANCE_LABEL } from "../context.ts";
import type { InjectionConfig } from "./config.ts";
import { diffPaths } from "./json-patch.ts";
import { INJECT_LABEL, injectPod } from "./mutate.ts";
import { Pod } from "./pod.ts";

export const AdmissionRequest = z.looseObject({
  uid: z.string().min(1).max(128),
  kind: z.looseObject({ group: z.string(), version: z.string(), kind: z.string() }),
  namespace: z.string().optional(),
  operation: z.string(),
  dryRun: z.boolean().optional(),
  object: z.unknown(),
});
export const AdmissionReview = z.looseObject({
  apiVersion: z.literal("admission.k8s.io/v1"),
  kind: z.literal("AdmissionReview"),
  request: AdmissionRequest,
});
export type AdmissionReview = z.infer<typeof AdmissionReview>;

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string };
  patchType?: "JSONPatch";
  patch?: string;
  warnings?: string[];
}

/** What the webhook looks up: the caches first, the API when they do not have it (just created). */
export interface InjectionLookups {
  daguAuth(namespace: string, name: string): Promise<KubeObject | undefined>;
  serviceAccount(namespace: string, name: string): Promise<KubeObject | undefined>;
}

export type Outcome = "mutated" | "unchanged" | "skipped" | "refused";

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export async function review(request: AdmissionReview["request"], lookups: InjectionLookups, config: InjectionConfig, instance?: string): Promise<{ response: AdmissionResponse; outcome: Outcome }> {
  const refused = (message: string, code = 403) => ({ response: { uid: request.uid, allowed: false, status: { code, message } }, outcome: "refused" as const });
  if (request.kind.group !== "" || request.kind.kind !== "Pod" || request.operation !== "CREATE") {
    return refused(`dagu-auth injection handles the creation of pods, not ${request.operation} of ${request.kind.kind}`, 400);
  }
  const parsed = Pod.safeParse(request.object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return refused(`the pod cannot be read: ${issue.path.join(".")}: ${issue.message}`, 400);
  }
  const pod = parsed.data;
  const namespace = request.namespace ?? "";
  const label = pod.metadata.labels?.[INJECT_LABEL];
  const annotation = pod.metadata.annotations?.[INJECT_LABEL];
  if (label !== undefined && annotation !== undefined && label !== annotation) {
    return refused(`the label ${INJECT_LABEL}=${label} and the annotation ${INJECT_LABEL}=${annotation} name different DaguAuths`);
  }
  const authName = label ?? annotation;
  if (authName === undefined) return refused(`the pod has neither the label nor the annotation ${INJECT_LABEL}`, 400);
  if (!NAME.test(authName) || authName.length > 253) return refused(`${INJECT_LABEL} must name a DaguAuth in namespace ${namespace}, got ${JSON.stringify(authName)}`);

  const auth = await lookups.daguAuth(namespace, authName);
  if (!auth || auth.metadata.deletionTimestamp) {
    return refused(`DaguAuth ${authName} (named by ${INJECT_LABEL}) ${auth ? "is being deleted" : "does not exist"} in namespace ${namespace}: the pod is not admitted without the auth sidecar; create the DaguAuth first`);
  }
  const authInstance = auth.metadata.labels?.[INSTANCE_LABEL];
  if (authInstance !== instance) {
    return refused(`DaguAuth ${authName} belongs to ${authInstance ? `operator instance ${authInstance}` : "the operator without an instance"}, not this one (${instance ?? "no instance"}): label the pod ${INSTANCE_LABEL}${authInstance ? `=${authInstance}` : " not at all"}`);
  }
  const spec = DaguAuthSpec.safeParse(auth.spec ?? {});
  if (!spec.success) return refused(`DaguAuth ${authName} has an invalid spec (see its Ready condition); the pod is not admitted without the auth sidecar`);
  const serviceAccountName = sidecarServiceAccountName(auth, spec.data);
  const sa = await lookups.serviceAccount(namespace, serviceAccountName);
  if (!sa || sa.metadata.labels?.[AUTH_LABEL] !== authName) {
    return refused(`ServiceAccount ${serviceAccountName} of DaguAuth ${authName} is not there yet (the operator creates it when it reconciles the DaguAuth); the pod's controller retries`);
  }
  const tls = spec.data.tls ? tlsSecretName(auth, spec.data) : undefined;
  const basePath = spec.data.basePath;
  const result = injectPod(pod, { namespace, authName, serviceAccountName, ...(tls ? { tlsSecretName: tls } : {}), ...(basePath ? { basePath } : {}) }, config);
  if (result.kind === "refuse") return refused(`dagu-auth cannot protect this pod: ${result.reason}`);
  if (result.kind === "skip") return { response: { uid: request.uid, allowed: true, warnings: result.warnings }, outcome: "skipped" };
  const ops = diffPaths(request.object, result.pod);
  const response: AdmissionResponse = { uid: request.uid, allowed: true, ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}) };
  if (ops.length === 0) return { response, outcome: "unchanged" };
  return { response: { ...response, patchType: "JSONPatch", patch: Buffer.from(JSON.stringify(ops)).toString("base64") }, outcome: "mutated" };
}
