// The objects the DaguAuth reconciler applies besides Secrets (the sidecar's
// ServiceAccount, Role and RoleBinding, the cert-manager Certificate), as
// controller-runtime's Owns() treats them: the operator watches them (only its own,
// by label) so that one deleted or edited by someone else is put back at once.
//
// What "edited" means: the live object no longer carries what the operator last
// applied. Fields others add (server defaults, status, their own labels, another
// owner reference) do not count; a removed or changed field of ours does. This is
// robust where the alternatives are not: resourceVersions and managedFields change
// with every status write of cert-manager, and the applied-hash annotation survives
// an edit of the rules it describes.
import { isConflict, isNotFound, type KubeObject } from "../common/kube/client.ts";
import type { ReadyState } from "./conditions.ts";
import { AUTH_LABEL, isOwnedBy, type OperatorContext, type Writer } from "./context.ts";

export function appliedId(obj: Pick<KubeObject, "apiVersion" | "kind" | "metadata">): string {
  return `${obj.apiVersion}/${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
}

/** True when `live` still holds every field of `desired`, the object the operator applied. */
export function carries(live: KubeObject, desired: KubeObject): boolean {
  const l = live.metadata;
  const d = desired.metadata;
  if (!contains(l.labels, d.labels) || !contains(l.annotations, d.annotations)) return false;
  // Owner references are merged by uid: another owner beside ours is not a change.
  for (const ref of d.ownerReferences ?? []) {
    if (!contains(l.ownerReferences?.find((r) => r.uid === ref.uid), ref)) return false;
  }
  for (const [field, value] of Object.entries(desired)) {
    if (field === "metadata" || field === "status" || field === "apiVersion" || field === "kind") continue;
    if (!contains(live[field], value)) return false;
  }
  return true;
}

/**
 * Objects: every key of `desired` is carried (extra keys of `live` are fine). Lists:
 * same length, element by element, because the lists we apply (rules, subjects,
 * dnsNames) are atomic and an apply replaces them whole. An empty list or object is
 * carried by an absent one, as the API server omits them.
 */
function contains(live: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) {
    if (live === undefined) return desired.length === 0;
    return Array.isArray(live) && live.length === desired.length && desired.every((d: unknown, i) => contains(live[i], d));
  }
  if (typeof desired === "object" && desired !== null) {
    if (live === undefined) return Object.keys(desired).length === 0;
    if (typeof live !== "object" || live === null || Array.isArray(live)) return false;
    return Object.entries(desired).every(([k, v]) => contains((live as Record<string, unknown>)[k], v));
  }
  return live === desired;
}

/** The DaguAuth (namespace/name) an owned object belongs to: its label, else its owner reference. */
export function ownerAuthKey(obj: KubeObject): string | undefined {
  const name = obj.metadata.labels?.[AUTH_LABEL] ?? obj.metadata.ownerReferences?.find((r) => r.kind === "DaguAuth")?.name;
  return name ? `${obj.metadata.namespace ?? ""}/${name}` : undefined;
}

/**
 * An informer event for an owned object. Deleted, or no longer carrying what was
 * applied (or never applied by this process): forget the digest, so the next
 * reconcile compares with the live object, and reconcile its DaguAuth. Our own
 * writes and others' additions (cert-manager's status) end here without a reconcile.
 */
export function ownedObjectChanged(ctx: Pick<OperatorContext, "applied" | "enqueue">, obj: KubeObject, deleted: boolean): void {
  const id = appliedId(obj);
  const applied = ctx.applied.get(id);
  if (!deleted && applied && carries(obj, applied.object)) return;
  ctx.applied.delete(id);
  const auth = ownerAuthKey(obj);
  if (auth) ctx.enqueue.auth(auth);
}

export const kindAndName = (obj: Pick<KubeObject, "kind" | "metadata">) => `${obj.kind}/${obj.metadata.name}`;

/** Thrown where a write would take over someone else's object (a name taken between the check and the write). */
export class ForeignObjectError extends Error {
  readonly objects: KubeObject[];
  constructor(objects: KubeObject[]) {
    super(`not owned by this DaguAuth: ${objects.map(kindAndName).join(", ")}`);
    this.name = "ForeignObjectError";
    this.objects = objects;
  }
}

/**
 * Objects the DaguAuth would write that exist without it as their controller (someone else's, or left by
 * an earlier DaguAuth of the same name that the garbage collector has not removed yet). The operator
 * neither adopts nor deletes them: the caller skips them and reports `OwnedObjectConflict`. What this
 * process applied, and no informer has seen changed since, is ours without a read.
 */
export async function foreignObjects(ctx: Pick<OperatorContext, "applied"> & { writer: Pick<Writer, "get"> }, auth: KubeObject, objects: readonly KubeObject[]): Promise<KubeObject[]> {
  const foreign: KubeObject[] = [];
  for (const obj of objects) {
    if (ctx.applied.has(appliedId(obj))) continue;
    const live = await ctx.writer.get(obj.apiVersion!, obj.kind!, obj.metadata.namespace!, obj.metadata.name!).catch((err: unknown) => {
      // A kind the API does not serve (cert-manager missing) holds nothing of anyone's.
      if (isNotFound(err) || /serves no kind/.test(String(err))) return undefined;
      throw err;
    });
    if (live && !isOwnedBy(live, auth)) foreign.push(live);
  }
  return foreign;
}

/** The Ready state of a DaguAuth whose objects' names are taken; `fields` names where a name comes from. */
export function ownedObjectConflict(auth: KubeObject, foreign: readonly KubeObject[], fields: Record<string, string> = {}): ReadyState {
  const what = foreign.map((o) => `${o.kind} ${o.metadata.name}${fields[kindAndName(o)] ? ` (${fields[kindAndName(o)]})` : ""}`);
  return {
    ready: false,
    reason: "OwnedObjectConflict",
    message: `${what.join(", ")} ${what.length === 1 ? "exists and is" : "exist and are"} not owned by DaguAuth ${auth.metadata.name}: the operator neither adopts nor deletes ${what.length === 1 ? "it" : "them"}; choose another name, or delete ${what.length === 1 ? "it" : "them"} if unused`,
  };
}

/** Deletes the object only while `owner` is its controller; returns whether it deleted. */
export async function deleteIfOwned(ctx: { writer: Pick<Writer, "get" | "delete"> }, owner: KubeObject, apiVersion: string, kind: string, namespace: string, name: string): Promise<boolean> {
  const live = await ctx.writer.get(apiVersion, kind, namespace, name);
  if (!live || !isOwnedBy(live, owner)) return false;
  try {
    // The uid precondition: a namesake created since the read is not ours to delete.
    await ctx.writer.delete(apiVersion, kind, namespace, name, { uid: live.metadata.uid! });
    return true;
  } catch (err) {
    if (isNotFound(err) || isConflict(err)) return false;
    throw err;
  }
}

/**
 * Deletes what a DaguAuth owns and no longer wants (a renamed sidecar ServiceAccount, the
 * Certificate of a removed issuer): its label and the DaguAuth as controller, but not in `keep`
 * (appliedIds of what it applies now). Owner references alone would keep them until the
 * DaguAuth itself is deleted. Returns what was deleted, as "Kind/name".
 */
export async function pruneOwned(ctx: Pick<OperatorContext, "ownedObjects" | "applied"> & { writer: Pick<Writer, "delete"> }, auth: KubeObject, keep: ReadonlySet<string>): Promise<string[]> {
  const deleted: string[] = [];
  for (const obj of ctx.ownedObjects(auth.metadata.namespace ?? "")) {
    if (obj.metadata.labels?.[AUTH_LABEL] !== auth.metadata.name || !isOwnedBy(obj, auth)) continue;
    const id = appliedId(obj);
    if (keep.has(id)) continue;
    await ctx.writer.delete(obj.apiVersion!, obj.kind!, obj.metadata.namespace!, obj.metadata.name!, { uid: obj.metadata.uid! }).catch((err: unknown) => {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    });
    ctx.applied.delete(id);
    deleted.push(`${obj.kind}/${obj.metadata.name}`);
  }
  return deleted;
}
