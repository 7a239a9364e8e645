// Which reconciles a cache event asks for (controller-runtime's Watches and Owns): a custom resource's own
// key (status-only updates skipped, a resync re-delivers everything), a DaguAuth's children when it
// changes, the DaguAuths whose remote nodes use a changed API key, the owners and referrers of a changed
// Secret, and the DaguAuth of an owned object someone else deleted or edited (owned-objects.ts).
import type { KubeObject } from "../../common/kube/client.ts";
import type { Informer } from "../../common/kube/informer.ts";
import { AUTH_LABEL, keyOf, type AppliedObject, type Enqueue } from "../context.ts";
import { ownedObjectChanged } from "../owned-objects.ts";
import { authsUsingApiKey } from "../remote-nodes.ts";
import { generationOrMetadataChanged, isResync } from "../runtime/predicates.ts";
import type { OperatorCaches } from "./caches.ts";

/** What routing needs besides the caches: the queues, and what this process applied (to tell our own writes). */
export interface RoutingAccess {
  readonly enqueue: Enqueue;
  readonly applied: Map<string, AppliedObject>;
}

export function routeEvents(caches: OperatorCaches, access: RoutingAccess): void {
  const { kinds } = caches;
  const { enqueue } = access;
  const childrenOfAuth = (auth: KubeObject) => {
    for (const kind of ["users", "apiKeys", "webhooks"] as const) {
      for (const child of kinds[kind].list(auth.metadata.namespace)) {
        if ((child.spec as { authRef?: { name?: string } })?.authRef?.name === auth.metadata.name) enqueue[kind === "users" ? "user" : kind === "apiKeys" ? "apiKey" : "webhook"](keyOf(child));
      }
    }
  };
  route(kinds.auths, enqueue.auth, childrenOfAuth);
  route(kinds.users, enqueue.user);
  route(kinds.apiKeys, enqueue.apiKey);
  // A DaguAuth whose remote nodes use an API key learns where its key is (and that it exists) from it.
  const authsOfKey = (k: KubeObject) => {
    for (const a of authsUsingApiKey(kinds.auths, k.metadata.namespace ?? "", k.metadata.name ?? "")) enqueue.auth(keyOf(a));
  };
  kinds.apiKeys.onAdd(authsOfKey);
  kinds.apiKeys.onUpdate((a, b) => a.metadata.generation !== b.metadata.generation && authsOfKey(b));
  kinds.apiKeys.onDelete(authsOfKey);
  route(kinds.webhooks, enqueue.webhook);

  const onSecret = (s: KubeObject) => {
    for (const key of secretInterest(s, caches.references)) enqueue[key.kind](key.key);
  };
  for (const secrets of [caches.secrets.owned, caches.secrets.referenced]) {
    secrets.onAdd(onSecret);
    secrets.onUpdate((_a, b) => onSecret(b));
    secrets.onDelete(onSecret);
  }

  // Owns(): one deleted or edited by someone else is applied again by its DaguAuth.
  for (const informer of [...caches.owned, caches.certificates]) {
    informer.onAdd((o) => ownedObjectChanged(access, o, false));
    informer.onUpdate((_old, o) => ownedObjectChanged(access, o, false));
    informer.onDelete((o) => ownedObjectChanged(access, o, true));
  }
}

function route(informer: Informer, enqueue: (key: string) => void, also?: (obj: KubeObject) => void): void {
  informer.onAdd((o) => (enqueue(keyOf(o)), also?.(o)));
  informer.onUpdate((a, b) => {
    if (isResync(a, b) || generationOrMetadataChanged(a, b)) {
      enqueue(keyOf(b));
      also?.(b);
    }
  });
  informer.onDelete((o) => (enqueue(keyOf(o)), also?.(o)));
}

/** The reconciles a Secret's change concerns: the DaguAuth it is labelled for, its owners, the resources that reference it. */
export function secretInterest(s: KubeObject, references: { referrers(kind: "users" | "auths", namespace: string, name: string): Iterable<string> }): { kind: keyof Enqueue; key: string }[] {
  const ns = s.metadata.namespace ?? "";
  const name = s.metadata.name ?? "";
  const out: { kind: keyof Enqueue; key: string }[] = [];
  const authName = s.metadata.labels?.[AUTH_LABEL];
  if (authName) out.push({ kind: "auth", key: `${ns}/${authName}` });
  for (const ref of s.metadata.ownerReferences ?? []) {
    if (ref.kind === "DaguUser") out.push({ kind: "user", key: `${ns}/${ref.name}` });
    if (ref.kind === "DaguApiKey") out.push({ kind: "apiKey", key: `${ns}/${ref.name}` });
    if (ref.kind === "DaguWebhook") out.push({ kind: "webhook", key: `${ns}/${ref.name}` });
  }
  for (const key of references.referrers("users", ns, name)) out.push({ kind: "user", key });
  for (const key of references.referrers("auths", ns, name)) out.push({ kind: "auth", key });
  return out;
}
