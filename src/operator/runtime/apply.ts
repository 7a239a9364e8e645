// Server-side apply for reconcilers: send the whole desired state under one field manager
// and let the API server merge it, so applying the same object twice changes nothing.
import type { KubeConfig } from "../../common/kube/config.ts";
import { KubeClient, describe, isNotFound, resourcePath, type KubeObject, type OwnerReference } from "../../common/kube/client.ts";

export { KubeApiError, errorCode, isConflict, isGone, isNotFound } from "../../common/kube/client.ts";

/** The field manager of everything the operator writes. */
export const FIELD_MANAGER = "dagu-auth-operator";

export interface ApplyOptions {
  /** Take over fields another manager owns (controllers own what they apply). Default true. */
  force?: boolean;
  fieldManager?: string;
  dryRun?: boolean;
}

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export interface DeleteOptions {
  /** Default "Background": dependents are collected by the garbage collector. */
  propagationPolicy?: "Background" | "Foreground" | "Orphan";
  /** Delete only if the object still has this uid (not a recreated namesake). */
  uid?: string;
}

export class Applier {
  readonly client: KubeClient;

  constructor(kube: KubeClient | KubeConfig) {
    this.client = kube instanceof KubeClient ? kube : new KubeClient(kube);
  }

  /** Applies `obj` (apiVersion, kind, metadata.name and, when namespaced, namespace required). Returns the result. */
  applyObject<T extends KubeObject>(obj: T, options: ApplyOptions = {}): Promise<T> {
    return this.apply(obj, undefined, options);
  }

  /** Applies `obj.status` through the status subresource (only status fields are taken from `obj`). */
  applyStatus<T extends KubeObject>(obj: T, options: ApplyOptions = {}): Promise<T> {
    if (obj.status === undefined) return Promise.reject(new Error(`apply status of ${describe(obj)}: the object has no status`));
    const { apiVersion, kind, metadata, status } = obj;
    const body = { apiVersion, kind, metadata: { name: metadata.name, namespace: metadata.namespace }, status };
    return this.apply(body as KubeObject as T, "status", options);
  }

  /** Deletes the object; returns false when it did not exist. */
  async deleteIfExists(ref: ObjectRef, options: DeleteOptions = {}): Promise<boolean> {
    const path = await this.path(ref, ref.name, ref.namespace);
    const body = {
      apiVersion: "v1",
      kind: "DeleteOptions",
      propagationPolicy: options.propagationPolicy ?? "Background",
      ...(options.uid ? { preconditions: { uid: options.uid } } : {}),
    };
    try {
      await this.client.request("DELETE", path, { body });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async apply<T extends KubeObject>(obj: T, subresource: "status" | undefined, options: ApplyOptions): Promise<T> {
    if (!obj.apiVersion || !obj.kind) throw new Error(`apply ${describe(obj)}: apiVersion and kind are required`);
    if (!obj.metadata.name) throw new Error(`apply ${describe(obj)}: metadata.name is required`);
    const path = await this.path({ apiVersion: obj.apiVersion, kind: obj.kind }, obj.metadata.name, obj.metadata.namespace, subresource);
    // managedFields must be absent from an apply body; it is the server's bookkeeping.
    const metadata = { ...obj.metadata };
    delete metadata.managedFields;
    return this.client.request<T>("PATCH", path, {
      body: { ...obj, metadata },
      contentType: "application/apply-patch+yaml",
      query: { fieldManager: options.fieldManager ?? FIELD_MANAGER, force: options.force ?? true, dryRun: options.dryRun ? "All" : undefined },
    });
  }

  private async path(type: { apiVersion: string; kind: string }, name: string, namespace: string | undefined, subresource?: string): Promise<string> {
    const resource = await this.client.resolve(type.apiVersion, type.kind);
    if (resource.namespaced && !namespace) throw new Error(`${type.kind} ${name}: metadata.namespace is required for a namespaced kind`);
    return resourcePath(resource, { namespace: resource.namespaced ? namespace : undefined, name, subresource });
  }
}

/** An ownerReference to `owner`, by default the controlling one that blocks the owner's foreground deletion. */
export function ownerReference(owner: KubeObject, options: { controller?: boolean; blockOwnerDeletion?: boolean } = {}): OwnerReference {
  const { apiVersion, kind } = owner;
  const { name, uid } = owner.metadata;
  if (!apiVersion || !kind || !name || !uid) {
    throw new Error(`ownerReference to ${describe(owner)}: apiVersion, kind, metadata.name and metadata.uid are required (read the owner from the API server)`);
  }
  return { apiVersion, kind, name, uid, controller: options.controller ?? true, blockOwnerDeletion: options.blockOwnerDeletion ?? true };
}
