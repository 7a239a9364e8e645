// What each child reconciler (DaguUser, DaguApiKey, DaguWebhook) is handed: only the members of the
// context its access interface names (ADR 0019), so a child reconcile cannot reach the owned-object
// caches, apply or delete anything, or read another kind's cache, even by a cast. The DaguAuth reconcile
// is the composition root of its steps and keeps the whole context.
import type { ChildAccess, ChildKind } from "../child-reconcile.ts";
import type { ConsumerSecretAccess } from "../consumer-secret.ts";
import type { OperatorContext } from "../context.ts";
import type { DaguApiKeyAccess } from "../dagu-api-key-reconciler.ts";
import type { DaguUserAccess } from "../dagu-user-reconciler.ts";
import type { DaguWebhookAccess } from "../dagu-webhook-reconciler.ts";

export interface ChildReconcilerAccess {
  users: DaguUserAccess;
  apiKeys: DaguApiKeyAccess;
  webhooks: DaguWebhookAccess;
}

export function childReconcilerAccess(ctx: OperatorContext): ChildReconcilerAccess {
  const writer: (ChildAccess<ChildKind> & ConsumerSecretAccess)["writer"] = {
    applyStatus: (obj) => ctx.writer.applyStatus(obj),
    create: (obj) => ctx.writer.create(obj),
    update: (obj) => ctx.writer.update(obj),
  };
  const access = <K extends ChildKind>(kind: K): ChildAccess<K> & ConsumerSecretAccess => ({
    caches: { auths: ctx.caches.auths, [kind]: ctx.caches[kind] } as ChildAccess<K>["caches"],
    materials: ctx.materials,
    enqueue: { auth: (key) => ctx.enqueue.auth(key) },
    secrets: ctx.secrets,
    events: ctx.events,
    writer,
    now: () => ctx.now(),
  });
  return {
    users: { ...access("users"), hashPassword: (password) => ctx.hashPassword(password) },
    apiKeys: access("apiKeys"),
    webhooks: access("webhooks"),
  };
}
