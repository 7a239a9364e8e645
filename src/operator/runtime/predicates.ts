// Event filters for controllers, after controller-runtime's GenerationChangedPredicate and
// external-secrets' shouldEnqueueExternalSecretUpdate: a status-only write (our own, mostly)
// must not wake the reconciler that wrote it.
import { createHash } from "node:crypto";
import type { KubeObject, ObjectMeta } from "../../common/kube/client.ts";
import { stableStringify } from "../../common/stable-json.ts";

/**
 * True when an update is worth reconciling:
 * - objects with metadata.generation (CRDs with a status subresource, most built-ins): the
 *   generation changed, which the server bumps on spec changes only;
 * - objects without one (Secrets, ConfigMaps): their content (everything outside metadata and
 *   status) changed, compared by hash; an unchanged resourceVersion short-cuts to false;
 * - in both cases: labels, annotations, finalizers, ownerReferences or deletionTimestamp changed.
 * A resync (old === new) is never a change: see `isResync`.
 */
export function generationOrMetadataChanged(oldObj: KubeObject, newObj: KubeObject): boolean {
  if (oldObj === newObj) return false;
  const before = oldObj.metadata;
  const after = newObj.metadata;
  if (before.resourceVersion !== undefined && before.resourceVersion === after.resourceVersion) return false;
  if (metadataChanged(before, after)) return true;
  if (before.generation !== undefined || after.generation !== undefined) return before.generation !== after.generation;
  return contentHash(oldObj) !== contentHash(newObj);
}

/** A periodic resync delivers the cached object as both old and new. */
export function isResync(oldObj: KubeObject, newObj: KubeObject): boolean {
  return oldObj === newObj;
}

function metadataChanged(a: ObjectMeta, b: ObjectMeta): boolean {
  return (
    stableStringify(a.labels ?? {}) !== stableStringify(b.labels ?? {}) ||
    stableStringify(a.annotations ?? {}) !== stableStringify(b.annotations ?? {}) ||
    stableStringify(a.finalizers ?? []) !== stableStringify(b.finalizers ?? []) ||
    stableStringify(a.ownerReferences ?? []) !== stableStringify(b.ownerReferences ?? []) ||
    (a.deletionTimestamp ?? "") !== (b.deletionTimestamp ?? "")
  );
}

/** SHA-256 of everything but metadata and status: a Secret's data, stringData, type and immutable. */
export function contentHash(obj: KubeObject): string {
  const content: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(obj)) {
    if (field !== "metadata" && field !== "status" && field !== "apiVersion" && field !== "kind") content[field] = value;
  }
  return createHash("sha256").update(stableStringify(content)).digest("hex");
}
