// The first half of every child reconcile (DaguUser, DaguApiKey, DaguWebhook):
// a deleted child withdraws its offer, a child whose spec or DaguAuth is wrong
// says so in status, and otherwise the caller gets what it needs to make and
// offer its contribution.
import type { z } from "zod";
import { deepEqualJson } from "../common/stable-json.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { findAuth, writeStatus, type AuthLookup, type StatusAccess } from "./child-status.ts";
import { pending, readyIsCurrent, type ReadyState } from "./conditions.ts";
import type { Condition } from "../api/index.ts";
import { splitKey, type Enqueue, type ObjectCache } from "./context.ts";
import type { AuthMaterials, ChildInput, Materials } from "./materials.ts";

export type ChildKind = "users" | "apiKeys" | "webhooks";
type InputOf<K extends ChildKind> = AuthMaterials[K] extends Map<string, ChildInput<infer T>> ? T : never;

/**
 * What the first half of a child reconcile touches: its own kind's cache and the DaguAuths', the offers
 * exchanged with the DaguAuths and their queue, and the status subresource (with its Events and clock).
 */
export type ChildAccess<K extends ChildKind> = StatusAccess &
  AuthLookup & {
    readonly caches: Readonly<Record<K, ObjectCache>>;
    readonly materials: Pick<Materials, "rememberKey" | "forgetKey" | "forget" | "of">;
    readonly enqueue: Pick<Enqueue, "auth">;
  };

export interface ChildStart<K extends ChildKind, Spec> {
  obj: KubeObject;
  name: string;
  uid: string;
  generation: number;
  spec: Spec;
  authKey: string;
  materials: AuthMaterials;
  /** Hands the result to the DaguAuth (re-queued only when it differs from the last offer). */
  offer(input: ChildInput<InputOf<K>>): void;
  /** The offer now stored (by reference: compared with what was published). */
  stored(): ChildInput<InputOf<K>> | undefined;
  /** Offers a problem and writes it to status. */
  fail(problem: ReadyState, fields: Record<string, unknown>): Promise<undefined>;
  /**
   * Until the DaguAuth has published this generation, says so once (Ready=Unknown),
   * so GitOps health checks wait instead of calling a new resource done.
   */
  markPending(fields: Record<string, unknown>): Promise<void>;
}

export async function startChild<K extends ChildKind, Spec>(
  ctx: ChildAccess<K>,
  kind: K,
  key: string,
  schema: z.ZodType<{ spec: Spec }>,
  idField: string,
): Promise<ChildStart<K, Spec> | undefined> {
  const { namespace, name } = splitKey(key);
  const obj = ctx.caches[kind].get(namespace, name);
  if (!obj || obj.metadata.deletionTimestamp) {
    // Gone: its DaguAuth drops it (no finalizer needed: the credentials are
    // assembled from the children that exist).
    for (const authKey of ctx.materials.forgetKey(kind, key)) ctx.enqueue.auth(authKey);
    return undefined;
  }
  const uid = obj.metadata.uid!;
  for (const authKey of ctx.materials.rememberKey(kind, key, uid)) ctx.enqueue.auth(authKey);
  const generation = obj.metadata.generation ?? 0;
  const parsed = schema.safeParse(obj);
  if (!parsed.success) {
    const problem: ReadyState = { ready: false, reason: "InvalidSpec", message: parsed.error.issues[0]?.message ?? "invalid spec" };
    // Still an answer for its DaguAuth, which otherwise waits for this child before publishing.
    const authName = (obj.spec as { authRef?: { name?: unknown } } | undefined)?.authRef?.name;
    const found = typeof authName === "string" ? findAuth(ctx, namespace, authName, "builtin") : undefined;
    if (found?.ok) {
      const map = ctx.materials.of(found.key)[kind] as Map<string, ChildInput<InputOf<K>>>;
      const before = map.get(uid);
      if (before?.ok !== false || before.generation !== generation) {
        map.set(uid, { ok: false, generation, problem });
        ctx.enqueue.auth(found.key);
      }
    }
    await writeStatus(ctx, obj, problem, { [idField]: uid });
    return undefined;
  }
  const spec = parsed.data.spec;
  const authName = (spec as { authRef: { name: string } }).authRef.name;
  const found = findAuth(ctx, namespace, authName, "builtin");
  if (!found.ok) {
    for (const authKey of ctx.materials.forget(kind, uid)) ctx.enqueue.auth(authKey);
    await writeStatus(ctx, obj, found.problem, { [idField]: uid });
    return undefined;
  }
  const materials = ctx.materials.of(found.key);
  const map = materials[kind] as Map<string, ChildInput<InputOf<K>>>;
  const offer = (input: ChildInput<InputOf<K>>) => {
    const before = map.get(uid);
    if (!before || !deepEqualJson(before, input)) {
      map.set(uid, input);
      ctx.enqueue.auth(found.key);
    }
  };
  return {
    obj,
    name,
    uid,
    generation,
    spec,
    authKey: found.key,
    materials,
    offer,
    stored: () => map.get(uid),
    markPending: async (fields) => {
      const conditions = (obj.status as { conditions?: Condition[] } | undefined)?.conditions;
      if (!readyIsCurrent(conditions, generation)) await writeStatus(ctx, obj, pending("waiting for the DaguAuth to write the credentials"), { [idField]: uid, ...fields });
    },
    fail: async (problem, fields) => {
      offer({ ok: false, generation, problem });
      await writeStatus(ctx, obj, problem, { [idField]: uid, ...fields });
      return undefined;
    },
  };
}
