// A DaguAuth's children (the DaguUsers, DaguApiKeys and DaguWebhooks whose authRef names it): which have
// not answered for their current generation yet, and what they are handed once a document is written
// (the published result, and a re-queue of those it concerns). Given only the three caches and queues.
import type { KubeObject } from "../common/kube/client.ts";
import { keyOf, type Enqueue, type ObjectCache } from "./context.ts";
import type { Assembly } from "./credentials-assembly.ts";
import type { AuthMaterials, Published } from "./materials.ts";

export interface ChildrenAccess {
  readonly caches: { readonly users: ObjectCache; readonly apiKeys: ObjectCache; readonly webhooks: ObjectCache };
  readonly enqueue: Pick<Enqueue, "user" | "apiKey" | "webhook">;
}

function childrenOf(access: ChildrenAccess, namespace: string, authName: string) {
  const refersTo = (o: KubeObject) => (o.spec as { authRef?: { name?: string } } | undefined)?.authRef?.name === authName && !o.metadata.deletionTimestamp;
  return {
    users: access.caches.users.list(namespace).filter(refersTo),
    apiKeys: access.caches.apiKeys.list(namespace).filter(refersTo),
    webhooks: access.caches.webhooks.list(namespace).filter(refersTo),
  };
}

/** Every child looks again (a new document, a new state, or its DaguAuth gone). */
export function enqueueChildren(access: ChildrenAccess, namespace: string, authName: string): void {
  const c = childrenOf(access, namespace, authName);
  for (const o of c.users) access.enqueue.user(keyOf(o));
  for (const o of c.apiKeys) access.enqueue.apiKey(keyOf(o));
  for (const o of c.webhooks) access.enqueue.webhook(keyOf(o));
}

/**
 * Hands the document in force (`generation`, assembled as `assembly`) to the children: each reads its own
 * entry from it. A new generation or content concerns every child; the same one only the children whose
 * input is newer than what was published.
 */
export function publishToChildren(access: ChildrenAccess, namespace: string, authName: string, materials: AuthMaterials, published: { generation: number; assembly: Assembly; sameContent: boolean }): void {
  const { generation, assembly } = published;
  const previous = materials.published;
  materials.published = {
    generation,
    users: new Map(assembly.document.users.map((u) => [u.id, u])),
    userInputs: assembly.userInputs,
    rejectedUsers: assembly.rejectedUsers,
    apiKeyInputs: assembly.apiKeyInputs,
    webhookInputs: assembly.webhookInputs,
    rejectedWebhooks: assembly.rejectedWebhooks,
  };
  if (!previous || previous.generation !== generation || !published.sameContent) enqueueChildren(access, namespace, authName);
  else enqueueChildrenOnce(access, namespace, authName, materials, previous);
}

/** Same generation: only children whose input is newer than what was published need a look. */
function enqueueChildrenOnce(access: ChildrenAccess, namespace: string, authName: string, materials: AuthMaterials, previous: Published): void {
  const c = childrenOf(access, namespace, authName);
  const newer = <T>(inputs: AuthMaterials["users" | "apiKeys" | "webhooks"], published: Map<string, T>, o: KubeObject) => {
    const input = inputs.get(o.metadata.uid!);
    return input?.ok === true && published.get(o.metadata.uid!) !== input.value;
  };
  for (const o of c.users) if (newer(materials.users, previous.userInputs, o)) access.enqueue.user(keyOf(o));
  for (const o of c.apiKeys) if (newer(materials.apiKeys, previous.apiKeyInputs, o)) access.enqueue.apiKey(keyOf(o));
  for (const o of c.webhooks) if (newer(materials.webhooks, previous.webhookInputs, o)) access.enqueue.webhook(keyOf(o));
}

/** How many children have not answered for their current generation (a document without them would drop them). */
export function unansweredChildren(access: ChildrenAccess, namespace: string, authName: string, materials: AuthMaterials): number {
  const c = childrenOf(access, namespace, authName);
  const answered = (map: Map<string, { generation: number }>, o: KubeObject) => map.get(o.metadata.uid!)?.generation === (o.metadata.generation ?? 0);
  return c.users.filter((o) => !answered(materials.users, o)).length + c.apiKeys.filter((o) => !answered(materials.apiKeys, o)).length + c.webhooks.filter((o) => !answered(materials.webhooks, o)).length;
}
