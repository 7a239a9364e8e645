// The webhook answers with a JSON Patch (RFC 6902) from the pod it was sent to the mutated pod. Only
// the fields the mutation may change are compared, each replaced whole when it differs: a patch that
// is short to read in an audit log and that never touches anything else.
import { stableStringify } from "../../common/stable-json.ts";

export type PatchOperation = { op: "add"; path: string; value: unknown } | { op: "remove"; path: string };

/** The fields the injection writes, as JSON Pointer paths. */
export const MUTABLE_PATHS = [
  "/metadata/annotations",
  "/spec/serviceAccountName",
  "/spec/serviceAccount",
  "/spec/automountServiceAccountToken",
  "/spec/volumes",
  "/spec/initContainers",
  "/spec/containers",
] as const;

function at(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const key of path.split("/").slice(1)) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** `add` replaces a member that exists (RFC 6902 4.1), so it serves both new and changed fields. */
export function diffPaths(before: unknown, after: unknown, paths: readonly string[] = MUTABLE_PATHS): PatchOperation[] {
  const ops: PatchOperation[] = [];
  for (const path of paths) {
    const a = at(before, path);
    const b = at(after, path);
    if (stableStringify(a) === stableStringify(b)) continue;
    if (b === undefined) ops.push({ op: "remove", path });
    else ops.push({ op: "add", path, value: b });
  }
  return ops;
}
