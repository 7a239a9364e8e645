// The conditions of every kind, computed one way: `Ready` (kubectl wait, Argo CD) and kstatus'
// abnormal-true pair (Flux, kpt, cli-utils): `Reconciling=True` while the operator works on the
// resource or waits for something that appears by itself, `Stalled=True` when it will not progress
// without a change by someone. Each keeps its lastTransitionTime while its status stays the same and
// carries the generation it was computed from; Reconciling and Stalled are absent when not True.
import type { Condition } from "../api/index.ts";
import { READY } from "../api/index.ts";

export const RECONCILING = "Reconciling";
export const STALLED = "Stalled";

export interface ReadyState {
  ready: boolean;
  /** Not known yet (work in progress): Ready=Unknown and Reconciling=True, so kstatus, Argo CD and Flux wait. */
  pending?: boolean;
  /** CamelCase, e.g. Materialized, SecretNotFound, DuplicateUsername. */
  reason: string;
  /** A sentence a person understands, without secret material. */
  message: string;
}

/**
 * Reasons that heal without a change to anything the resource's owner must fix: what is missing is
 * expected to appear (a Secret an ExternalSecret or a SealedSecret is about to write, a DaguAuth applied
 * in the same sync). Reconciling=True, so GitOps tools wait until their timeout. Every other Ready=False
 * reason is Stalled: a field, a Secret's content or someone else's object must change first.
 */
const WAITING_REASONS: ReadonlySet<string> = new Set(["SecretNotFound", "SecretKeyNotFound", "DaguAuthNotFound", "RemoteNodeKeyNotFound", "RemoteNodeSecretNotFound"]);

/** Which of Reconciling and Stalled a state sets to True, if either. */
export function kstatusCondition(state: ReadyState): typeof RECONCILING | typeof STALLED | undefined {
  if (state.pending) return RECONCILING;
  if (state.ready) return undefined;
  return WAITING_REASONS.has(state.reason) ? RECONCILING : STALLED;
}

/** `previous` with Ready, Reconciling and Stalled set for `state` (other types are kept as they are). */
export function withConditions(previous: readonly Condition[] | undefined, state: ReadyState, generation: number, now: Date = new Date()): Condition[] {
  const at = now.toISOString().replace(/\.\d{3}Z$/, "Z");
  const make = (type: string, status: Condition["status"]): Condition => {
    const old = previous?.find((c) => c.type === type);
    return { type, status, reason: state.reason, message: state.message, lastTransitionTime: old && old.status === status ? old.lastTransitionTime : at, observedGeneration: generation };
  };
  const abnormal = kstatusCondition(state);
  const ours = [make(READY, state.pending ? "Unknown" : state.ready ? "True" : "False"), ...(abnormal ? [make(abnormal, "True")] : [])];
  return [...(previous ?? []).filter((c) => c.type !== READY && c.type !== RECONCILING && c.type !== STALLED), ...ours];
}

export function readyOf(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((c) => c.type === READY);
}

/** Ready=Unknown (and Reconciling=True) while the work for this generation is not finished. */
export function pending(message: string): ReadyState {
  return { ready: false, pending: true, reason: "Pending", message };
}

/** Whether the Ready condition already speaks of this generation. */
export function readyIsCurrent(conditions: readonly Condition[] | undefined, generation: number): boolean {
  return readyOf(conditions)?.observedGeneration === generation;
}

/** A condition besides Ready (e.g. OIDCProviderReachable); undefined removes it. */
export interface OtherCondition {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

/** Sets (or, for undefined, removes) conditions other than Ready, keeping lastTransitionTime while a status stays. */
export function withOthers(previous: readonly Condition[], others: Readonly<Record<string, OtherCondition | undefined>>, generation: number, now: Date = new Date()): Condition[] {
  let out = [...previous];
  for (const [type, state] of Object.entries(others)) {
    const old = out.find((c) => c.type === type);
    out = out.filter((c) => c.type !== type);
    if (!state) continue;
    const at = old && old.status === state.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z");
    out.push({ type, ...state, lastTransitionTime: at, observedGeneration: generation });
  }
  return out;
}
