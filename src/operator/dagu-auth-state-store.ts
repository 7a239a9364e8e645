// The DaguAuth reconciler's state store: the operator state Secret `<daguauth>-operator-state` (and its
// buckets past ~1 MiB), which remembers password fingerprints and hashes and the signing keys. An owned
// step of the reconciler, given only what it needs: the Secret cache, a writer for Secrets, the size limit.
// What this operator last wrote is the state while every Secret it wrote keeps the resourceVersion it got
// (the cache may lag our own writes); state is saved only when it changed, and before the credentials (a
// crash between the two re-derives the same document).
import type { KubeObject } from "../common/kube/client.ts";
import { secretData } from "../common/kube/secret-data.ts";
import { deepEqualJson } from "../common/stable-json.ts";
import { isOwnedBy, ownedSecret, type SecretReader, type Writer } from "./context.ts";
import type { AuthMaterials, WrittenSecret } from "./materials.ts";
import { newOperatorState, OPERATOR_STATE_KEY, operatorStateSecretName, type OperatorState } from "./operator-state.ts";
import { readOperatorState, stateBucketSecretName, storeOperatorState } from "./operator-state-secret.ts";
import { ForeignObjectError } from "./owned-objects.ts";

/** What the state store may do: read Secrets (cache first), and get, create and update them in the API. */
export interface StateStoreAccess {
  readonly secrets: SecretReader;
  readonly writer: Pick<Writer, "get" | "create" | "update">;
  /** Above this the state is split into buckets. */
  readonly maxInlineBytes: number;
}

/** Whether Secret `name` still has the resourceVersion our write gave it: the cache, else the API, tells. */
export async function asWritten(access: { readonly secrets: SecretReader; readonly writer: Pick<Writer, "get"> }, namespace: string, name: string, resourceVersion: string | undefined): Promise<{ ours: true } | { ours: false; live: KubeObject | undefined }> {
  if ((await access.secrets.get(namespace, name))?.metadata.resourceVersion === resourceVersion) return { ours: true };
  const live = await access.writer.get("v1", "Secret", namespace, name);
  return live?.metadata.resourceVersion === resourceVersion ? { ours: true } : { ours: false, live };
}

/** Record by record: a state holds ~1,000 records and is compared on every reconcile of a busy DaguAuth. */
function sameState(a: OperatorState, b: OperatorState): boolean {
  const { passwords: pa, ...restA } = a;
  const { passwords: pb, ...restB } = b;
  const ids = Object.keys(pa);
  if (ids.length !== Object.keys(pb).length || !deepEqualJson(restA, restB)) return false;
  return ids.every((id) => pa[id] === pb[id] || (pb[id] !== undefined && deepEqualJson(pa[id], pb[id])));
}

export type OpenedState =
  | { kind: "invalid"; error: Error }
  /** A bucket the main Secret lists is not there yet: look again shortly. */
  | { kind: "incomplete" }
  /** `created`: the state Secret did not exist and was created now (children need its fingerprint key). */
  | { kind: "open"; store: AuthStateStore; created: boolean };

export class AuthStateStore {
  readonly #access: StateStoreAccess;
  readonly #auth: KubeObject;
  readonly #materials: AuthMaterials;
  #state: OperatorState;
  #bucketed: boolean;

  private constructor(access: StateStoreAccess, auth: KubeObject, materials: AuthMaterials, state: OperatorState, bucketed: boolean) {
    this.#access = access;
    this.#auth = auth;
    this.#materials = materials;
    this.#state = state;
    this.#bucketed = bucketed;
  }

  /** Loads the state (what this operator last wrote, else the cache, else the API), creating it when absent. */
  static async open(access: StateStoreAccess, auth: KubeObject, materials: AuthMaterials): Promise<OpenedState> {
    const namespace = auth.metadata.namespace!;
    const authName = auth.metadata.name!;
    const stateName = operatorStateSecretName(authName);
    const loaded = await load(access, materials, namespace, authName);
    if (loaded.kind === "invalid") return { kind: "invalid", error: loaded.error };
    if (loaded.kind === "incomplete") return { kind: "incomplete" };
    if (loaded.kind === "loaded") return { kind: "open", store: new AuthStateStore(access, auth, materials, loaded.state, loaded.bucketed), created: false };
    const state = newOperatorState();
    const document = JSON.stringify(state);
    const created = await access.writer.create(ownedSecret(auth, stateName, { [OPERATOR_STATE_KEY]: document }, { authName }));
    materials.writtenState = { state, bucketed: false, secrets: new Map([[stateName, { resourceVersion: created.metadata.resourceVersion, document }]]), at: Date.now() };
    return { kind: "open", store: new AuthStateStore(access, auth, materials, state, false), created: true };
  }

  get state(): OperatorState {
    return this.#state;
  }

  /** Writes `next` when it differs: buckets before the main Secret that lists them, each only when it changed. */
  async save(next: OperatorState): Promise<void> {
    if (sameState(next, this.#state)) return;
    const authName = this.#auth.metadata.name!;
    const stored = storeOperatorState(next, { bucketed: this.#bucketed, maxInlineBytes: this.#access.maxInlineBytes });
    const secrets = new Map<string, WrittenSecret>();
    for (const [bucket, document] of stored.buckets) {
      const secretName = stateBucketSecretName(authName, bucket);
      secrets.set(secretName, await this.#write(secretName, document));
    }
    const stateName = operatorStateSecretName(authName);
    secrets.set(stateName, await this.#write(stateName, stored.main));
    this.#state = next;
    this.#bucketed = stored.buckets.size > 0 || this.#bucketed;
    this.#materials.writtenState = { state: next, bucketed: this.#bucketed, secrets, at: Date.now() };
  }

  async #write(secretName: string, document: string): Promise<WrittenSecret> {
    const auth = this.#auth;
    const namespace = auth.metadata.namespace!;
    // What this operator last wrote (checked current when the state was loaded) or else the cache answers
    // for unchanged Secrets (most buckets); a read from the API gives the resourceVersion a write is
    // conditioned on.
    const known = this.#materials.writtenState?.secrets.get(secretName);
    if (known?.document === document) return known;
    const cached = known ? undefined : await this.#access.secrets.get(namespace, secretName);
    if (cached && isOwnedBy(cached, auth) && secretData(cached)[OPERATOR_STATE_KEY] === document) return { resourceVersion: cached.metadata.resourceVersion, document };
    const desired = ownedSecret(auth, secretName, { [OPERATOR_STATE_KEY]: document }, { authName: auth.metadata.name! });
    const live = await this.#access.writer.get("v1", "Secret", namespace, secretName);
    if (live && !isOwnedBy(live, auth)) throw new ForeignObjectError([live]);
    let written = live;
    if (!live) written = await this.#access.writer.create(desired);
    else if (secretData(live)[OPERATOR_STATE_KEY] !== document) {
      desired.metadata.resourceVersion = live.metadata.resourceVersion;
      written = await this.#access.writer.update(desired);
    }
    return { resourceVersion: written?.metadata.resourceVersion, document };
  }
}

/**
 * The operator state. What this operator last wrote is the state while every Secret it wrote still has
 * the resourceVersion it got: the cache may lag our own writes (the next reconcile can start before the
 * watch delivers them), and a state read from it would lose records and hash again. When someone else
 * changed one of them, the API is read, not the cache.
 */
async function load(access: Pick<StateStoreAccess, "secrets" | "writer">, materials: AuthMaterials, namespace: string, authName: string) {
  const stateName = operatorStateSecretName(authName);
  const written = materials.writtenState;
  if (!written) return readOperatorState(await access.secrets.get(namespace, stateName), authName, (n) => access.secrets.get(namespace, n));
  for (const [secretName, { resourceVersion }] of written.secrets) {
    if ((await asWritten(access, namespace, secretName, resourceVersion)).ours) continue;
    materials.writtenState = undefined;
    const fromApi = (n: string) => access.writer.get("v1", "Secret", namespace, n);
    return readOperatorState(await fromApi(stateName), authName, fromApi);
  }
  return { kind: "loaded" as const, state: written.state, bucketed: written.bucketed };
}
