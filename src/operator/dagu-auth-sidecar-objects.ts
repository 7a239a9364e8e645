// The DaguAuth reconciler's sidecar objects: the sidecar's ServiceAccount, Role and RoleBinding, the
// cert-manager Certificate, and the Secrets the sidecar writes (password changes, login throttle, SSO
// users), created empty once. An owned step of the reconciler, given only what it needs: what this
// process applied, get/apply/create/delete in the API, the Secret cache, the owned-object caches and an
// Event for what it prunes. Each object is written only when it differs from what was applied.
//
// A name someone else's object holds is skipped (and reported as a conflict), and so is a RoleBinding
// that would bind someone else's ServiceAccount or Role: that would grant the credentials to whoever runs
// as it. Nothing is pruned meanwhile, so a sidecar running under the previous name keeps working.
import { createHash } from "node:crypto";
import type { DaguAuthSpec } from "../api/index.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { stableStringify } from "../common/stable-json.ts";
import type { ReadyState } from "./conditions.ts";
import { isOwnedBy, type AppliedObject, type EventSink, type SecretReader, type Writer } from "./context.ts";
import { certificate, loginThrottleSecret, passwordChangesSecret, sidecarObjects, sidecarRoleName, sidecarServiceAccountName, ssoUsersSecret } from "./auth-resources.ts";
import { appliedId, carries, ForeignObjectError, foreignObjects, kindAndName, ownedObjectConflict, pruneOwned } from "./owned-objects.ts";

export const APPLIED_HASH_ANNOTATION = "auth.dagu.dev/applied-hash";

/** What the sidecar objects step may do. */
export interface SidecarObjectsAccess {
  /** What this process applied, by appliedId (the owned-object informers forget what changed). */
  readonly applied: Map<string, AppliedObject>;
  readonly writer: Pick<Writer, "get" | "apply" | "create" | "delete">;
  readonly secrets: SecretReader;
  /** The owned-object caches (ServiceAccounts, Roles, RoleBindings, Certificates with our label) of a namespace. */
  ownedObjects(namespace: string): KubeObject[];
  readonly events: Pick<EventSink, "normal">;
}

export class SidecarObjects {
  readonly #access: SidecarObjectsAccess;
  readonly #auth: KubeObject;
  readonly #spec: DaguAuthSpec;
  readonly #remoteNodeSecrets: readonly string[];
  readonly #certificate: KubeObject | undefined;
  /** "Kind/name" of what is not written: someone else's, or a RoleBinding to someone else's subject. */
  readonly #taken: ReadonlySet<string>;
  /** Someone else's objects under names this DaguAuth would use; undefined when there are none. */
  readonly conflict: ReadyState | undefined;

  private constructor(access: SidecarObjectsAccess, auth: KubeObject, spec: DaguAuthSpec, remoteNodeSecrets: readonly string[], cert: KubeObject | undefined, taken: ReadonlySet<string>, conflict: ReadyState | undefined) {
    this.#access = access;
    this.#auth = auth;
    this.#spec = spec;
    this.#remoteNodeSecrets = remoteNodeSecrets;
    this.#certificate = cert;
    this.#taken = taken;
    this.conflict = conflict;
  }

  /** Finds which of the objects' names someone else's objects hold; `remoteNodeSecrets`: the keys the sidecar may read. */
  static async check(access: SidecarObjectsAccess, auth: KubeObject, spec: DaguAuthSpec, remoteNodeSecrets: readonly string[]): Promise<SidecarObjects> {
    const cert = certificate(auth, spec);
    const foreign = await foreignObjects(access, auth, [...sidecarObjects(auth, spec, []), ...(cert ? [cert] : [])]);
    const taken = new Set(foreign.map(kindAndName));
    if (taken.has(`ServiceAccount/${sidecarServiceAccountName(auth, spec)}`) || taken.has(`Role/${sidecarRoleName(auth)}`)) taken.add(`RoleBinding/${sidecarRoleName(auth)}`);
    let conflict: ReadyState | undefined;
    if (foreign.length > 0) {
      const fields: Record<string, string> = {};
      if (spec.sidecar?.serviceAccountName) fields[`ServiceAccount/${spec.sidecar.serviceAccountName}`] = "spec.sidecar.serviceAccountName";
      if (cert) fields[kindAndName(cert)] = "spec.tls.issuerRef";
      conflict = ownedObjectConflict(auth, foreign, fields);
    }
    return new SidecarObjects(access, auth, spec, remoteNodeSecrets, cert, taken, conflict);
  }

  /** The Role (with its ServiceAccount and RoleBinding) naming these credentials shards, applied at once. */
  readonly allowShards = (shardNames: readonly string[]): Promise<unknown> =>
    Promise.all(this.#allowed(sidecarObjects(this.#auth, this.#spec, shardNames, this.#remoteNodeSecrets)).map((o) => this.#applyIfChanged(o)));

  /**
   * Applies everything for the credentials shards in use, deletes what this DaguAuth owned before and no
   * longer wants (only without a conflict) and creates the sidecar's Secrets that are missing.
   */
  async apply(shardNames: readonly string[]): Promise<{ certManagerMissing: boolean }> {
    const auth = this.#auth;
    const cert = this.#certificate;
    let certManagerMissing = false;
    const supporting = sidecarObjects(auth, this.#spec, shardNames, this.#remoteNodeSecrets);
    for (const obj of this.#allowed(supporting)) await this.#applyIfChanged(obj);
    if (cert && this.#allowed([cert]).length > 0) {
      await this.#applyIfChanged(cert).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 404) throw err;
        certManagerMissing = true;
      });
    }
    if (this.conflict === undefined) {
      const pruned = await pruneOwned(this.#access, auth, new Set([...supporting, ...(cert ? [cert] : [])].map(appliedId)));
      for (const what of pruned) this.#access.events.normal(auth, "Pruned", `deleted ${what}, which this DaguAuth no longer uses`);
    }
    for (const created of [passwordChangesSecret(auth), loginThrottleSecret(auth), ssoUsersSecret(auth)]) {
      if (await this.#access.secrets.get(auth.metadata.namespace!, created.metadata.name!)) continue;
      await this.#access.writer.create(created).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
    }
    return { certManagerMissing };
  }

  #allowed(objects: KubeObject[]): KubeObject[] {
    return objects.filter((o) => !this.#taken.has(kindAndName(o)));
  }

  async #applyIfChanged(obj: KubeObject): Promise<void> {
    const { applied, writer } = this.#access;
    const digest = createHash("sha256").update(stableStringify(obj)).digest("hex").slice(0, 32);
    const id = appliedId(obj);
    if (applied.get(id)?.digest === digest) return;
    const desired = { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, [APPLIED_HASH_ANNOTATION]: digest } } };
    // After a restart, or after its informer saw it deleted or edited, the live object tells.
    const live = await writer.get(obj.apiVersion!, obj.kind!, obj.metadata.namespace!, obj.metadata.name!).catch(() => undefined);
    if (live && !isOwnedBy(live, this.#auth)) throw new ForeignObjectError([live]);
    // Remembered before the write: the watch event of our own apply must find it (owned-objects.ts).
    applied.set(id, { digest, object: desired });
    if (live && carries(live, desired)) return;
    try {
      await writer.apply(desired);
    } catch (err) {
      applied.delete(id);
      throw err;
    }
  }
}
