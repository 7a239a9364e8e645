// What every reconciler is given: caches, writers, the materials exchange and the
// queues of the other controllers. Assembled in wiring/operator-context.ts; an interface so that the
// reconcilers read as plain functions of (context, key). Each step of a reconcile takes only the members
// it needs (a Pick or an access interface of its own: ADR 0019).
import type { Logger } from "pino";
import type { KubeObject } from "../common/kube/client.ts";
import { ownerReference } from "./runtime/apply.ts";
import type { Materials } from "./materials.ts";

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "dagu-auth-operator";
/** The DaguAuth an owned object belongs to (its name), for selection and for humans. */
export const AUTH_LABEL = "auth.dagu.dev/auth";
/**
 * Which operator install acts on a resource (`--instance`): each install selects only the resources
 * with its value, the default install those without the label. What it creates carries its owner's value.
 */
export const INSTANCE_LABEL = "auth.dagu.dev/instance";

/** The label selector of an install's resources and owned objects. */
export function instanceSelector(instance: string | undefined): string {
  return instance ? `${INSTANCE_LABEL}=${instance}` : `!${INSTANCE_LABEL}`;
}

/** The labels every object the operator creates for `owner` carries: ours, and the owner's instance. */
export function ownedLabels(owner: KubeObject, authName?: string): Record<string, string> {
  const instance = owner.metadata.labels?.[INSTANCE_LABEL];
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, ...(authName !== undefined ? { [AUTH_LABEL]: authName } : {}), ...(instance ? { [INSTANCE_LABEL]: instance } : {}) };
}

/** What the operator last applied to one object (owned-objects.ts): its digest and the object as sent. */
export interface AppliedObject {
  digest: string;
  object: KubeObject;
}

export interface ObjectCache<T extends KubeObject = KubeObject> {
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
}

export interface SecretReader {
  /** The Secret from the cache, or from the API when the cache does not hold it; undefined if absent. */
  get(namespace: string, name: string): Promise<KubeObject | undefined>;
}

export interface Writer {
  /** Server-side apply under our field manager (force: this operator owns what it applies). */
  apply(obj: KubeObject): Promise<KubeObject>;
  /** Server-side apply of the status subresource. */
  applyStatus(obj: KubeObject): Promise<void>;
  /** Create; throws a 409 error when it exists (callers re-read and decide). */
  create(obj: KubeObject): Promise<KubeObject>;
  /** Replace with the object's resourceVersion as a precondition. */
  update(obj: KubeObject): Promise<KubeObject>;
  /** Get directly from the API (not the cache). */
  get(apiVersion: string, kind: string, namespace: string, name: string): Promise<KubeObject | undefined>;
  /** Deletes; with `uid`, only that object (not a namesake created since). A missing object is no error. */
  delete(apiVersion: string, kind: string, namespace: string, name: string, options?: { uid?: string }): Promise<void>;
}

export interface EventSink {
  normal(regarding: KubeObject, reason: string, message: string): void;
  warning(regarding: KubeObject, reason: string, message: string): void;
}

export interface Enqueue {
  auth(key: string): void;
  user(key: string): void;
  apiKey(key: string): void;
  webhook(key: string): void;
}

export interface OperatorContext {
  log: Logger;
  caches: {
    auths: ObjectCache;
    users: ObjectCache;
    apiKeys: ObjectCache;
    webhooks: ObjectCache;
  };
  secrets: SecretReader;
  writer: Writer;
  events: EventSink;
  enqueue: Enqueue;
  materials: Materials;
  /** argon2id (src/common/password-hash.ts), timed into the hashing metric. */
  hashPassword(password: string): Promise<string>;
  now(): Date;
  /**
   * What this operator applied (by appliedId), so an identical apply is skipped. The
   * owned-object informers drop an entry when its object is deleted or edited.
   */
  applied: Map<string, AppliedObject>;
  /** The owned-object caches (ServiceAccounts, Roles, RoleBindings, Certificates with our label) of a namespace. */
  ownedObjects(namespace: string): KubeObject[];
  /** Above this the credentials document is sharded (MAX_INLINE_BYTES; lowered in tests). */
  maxInlineBytes: number;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf("/");
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export function keyOf(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ""}/${obj.metadata.name ?? ""}`;
}

/**
 * Whether `owner` is the controller of `obj`: what the operator created carries that reference, and only
 * such objects are ever written or deleted (nothing of anyone else's is adopted).
 */
export function isOwnedBy(obj: KubeObject | undefined, owner: KubeObject): boolean {
  return obj?.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid && r.controller === true) ?? false;
}

/** A Secret owned by `owner`, labelled as ours, with string values (encoded here). */
export function ownedSecret(owner: KubeObject, name: string, values: Record<string, string>, extra: { labels?: Record<string, string>; annotations?: Record<string, string>; authName?: string } = {}): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name,
      namespace: owner.metadata.namespace,
      labels: { ...ownedLabels(owner, extra.authName), ...extra.labels },
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      ownerReferences: [ownerReference(owner)],
    },
    type: "Opaque",
    data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v, "utf8").toString("base64")])),
  };
}
