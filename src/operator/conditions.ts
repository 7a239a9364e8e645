// The Ready condition, computed the same way for every kind: it keeps its
// lastTransitionTime while its status stays the same (kstatus reads it), and
// carries the generation it was computed from.
import type { Condition } from "../api/index.ts";
import { READY } from "../api/index.ts";

export interface ReadyState {
  ready: boolean;
  /** Not known yet (work in progress): Ready=Unknown, so kstatus, Argo CD and Flux wait. */
  pending?: boolean;
  /** CamelCase, e.g. Materialized, SecretNotFound, DuplicateUsername. */
  reason: string;
  /** A sentence a person understands, without secret material. */
  message: string;
}

export function withReady(previous: readonly Condition[] | undefined, state: ReadyState, generation: number, now: Date = new Date()): Condition[] {
  const status = state.pending ? "Unknown" : state.ready ? "True" : "False";
  const old = previous?.find((c) => c.type === READY);
  const ready: Condition = {
    type: READY,
    status,
    reason: state.reason,
    message: state.message,
    lastTransitionTime: old && old.status === status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z"),
    observedGeneration: generation,
  };
  return [...(previous ?? []).filter((c) => c.type !== READY), ready];
}

export function readyOf(conditions: readonly Condition[] | undefined): Condition | undefined {
  return conditions?.find((c) => c.type === READY);
}

/** Ready=Unknown while the work for this generation is not finished. */
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
