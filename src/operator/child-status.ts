// Shared by the DaguUser, DaguApiKey and DaguWebhook reconcilers: finding the
// DaguAuth a child belongs to, and writing status only when it changed (with an
// Event when readiness changes).
import { DAGU_AUTH_NAME_MAX_LENGTH, DaguAuthSpec, type Condition } from "../api/index.ts";
import { deepEqualJson } from "../common/stable-json.ts";
import { readyOf, withConditions, withOthers, type OtherCondition, type ReadyState } from "./conditions.ts";
import type { ObjectCache, OperatorContext, Writer } from "./context.ts";
import type { KubeObject } from "../common/kube/client.ts";

export type FoundAuth = { ok: true; auth: KubeObject; spec: DaguAuthSpec; key: string } | { ok: false; problem: ReadyState };

/** What finding a child's DaguAuth reads: the DaguAuth cache. */
export interface AuthLookup {
  readonly caches: { readonly auths: ObjectCache };
}

export function findAuth(ctx: AuthLookup, namespace: string, authName: string, needs: "builtin" | "any"): FoundAuth {
  const auth = ctx.caches.auths.get(namespace, authName);
  if (!auth || auth.metadata.deletionTimestamp) {
    return { ok: false, problem: { ready: false, reason: "DaguAuthNotFound", message: `DaguAuth ${authName} does not exist in namespace ${namespace}` } };
  }
  const parsed = DaguAuthSpec.safeParse(auth.spec ?? {});
  if (!parsed.success || authName.length > DAGU_AUTH_NAME_MAX_LENGTH) {
    return { ok: false, problem: { ready: false, reason: "DaguAuthInvalid", message: `DaguAuth ${authName} has an invalid spec` } };
  }
  if (needs === "builtin" && parsed.data.mode !== "builtin") {
    return { ok: false, problem: { ready: false, reason: "DaguAuthNotBuiltin", message: `DaguAuth ${authName} is in ${parsed.data.mode} mode; users, API keys and webhooks need builtin mode` } };
  }
  return { ok: true, auth, spec: parsed.data, key: `${namespace}/${authName}` };
}

/** What a status write needs: the clock, the status subresource and Events. */
export type StatusAccess = Pick<OperatorContext, "now" | "events"> & { readonly writer: Pick<Writer, "applyStatus"> };

/**
 * Writes `status` (plus observedGeneration and the Ready, Reconciling and Stalled conditions) when it differs
 * from what the object carries. Returns whether it wrote.
 */
export async function writeStatus(ctx: StatusAccess, obj: KubeObject, ready: ReadyState, fields: Record<string, unknown>, others: Readonly<Record<string, OtherCondition | undefined>> = {}): Promise<boolean> {
  const current = (obj.status ?? {}) as { conditions?: Condition[] } & Record<string, unknown>;
  const generation = obj.metadata.generation ?? 0;
  const conditions = withOthers(withConditions(current.conditions, ready, generation, ctx.now()), others, generation, ctx.now());
  const status = { ...fields, observedGeneration: generation, conditions };
  const comparable = (s: Record<string, unknown>) => JSON.parse(JSON.stringify(s)) as unknown;
  if (deepEqualJson(comparable(current), comparable(status))) return false;
  await ctx.writer.applyStatus({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
    status,
  });
  const before = readyOf(current.conditions);
  const after = readyOf(conditions);
  // Waiting for the DaguAuth (Ready=Unknown) is how every new object starts, not news: no Event, and
  // certainly not a Warning (it would also double the Events a bulk apply writes).
  if (!ready.pending && (before?.status !== after?.status || before?.reason !== after?.reason)) {
    if (ready.ready) ctx.events.normal(obj, ready.reason, ready.message);
    else ctx.events.warning(obj, ready.reason, ready.message);
  }
  return true;
}
