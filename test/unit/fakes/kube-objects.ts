// An in-memory stand-in for the API server's objects and the operator's cache of them, for unit tests of
// the reconciler's steps (pure logic: the integration tests run them against a real kube-apiserver). It
// counts every write, gives each a new resourceVersion, and can let the cache lag the API as a watch does.
import { KubeApiError, type KubeObject } from "../../../src/common/kube/client.ts";
import type { SecretReader, Writer } from "../../../src/operator/context.ts";

const idOf = (apiVersion: string, kind: string, namespace: string | undefined, name: string) => `${apiVersion}/${kind}/${namespace ?? ""}/${name}`;
const objectId = (o: KubeObject) => idOf(o.apiVersion!, o.kind!, o.metadata.namespace, o.metadata.name!);
const copy = <T>(value: T): T => structuredClone(value);

export class FakeKube {
  /** The API server's objects. */
  readonly api = new Map<string, KubeObject>();
  /** The cache's Secrets ("namespace/name"): the API's, unless `lagging`. */
  readonly cache = new Map<string, KubeObject>();
  /** While true, writes reach the API but not the cache (the watch has not delivered them yet). */
  lagging = false;
  /** Every write, as "verb Kind/name". */
  readonly writes: string[] = [];
  /** Status subresource writes, as sent. */
  readonly statuses: KubeObject[] = [];
  /** Kinds the API does not serve (a 404 for any write or read of them). */
  readonly unserved = new Set<string>();
  #version = 0;
  #uid = 0;

  /** Puts an object in as someone (or an earlier write) left it, cache included. */
  seed(obj: KubeObject): KubeObject {
    const stored = this.#store(copy(obj));
    this.#cacheIt(stored, true);
    return stored;
  }

  /** Lets the cache catch up with the API. */
  sync(): void {
    this.cache.clear();
    for (const o of this.api.values()) this.#cacheIt(o, true);
  }

  readonly secrets: SecretReader = {
    get: async (namespace, name) => this.cache.get(`${namespace}/${name}`),
  };

  readonly writer: Writer = {
    apply: async (obj) => {
      this.#served(obj.kind!);
      this.writes.push(`apply ${obj.kind}/${obj.metadata.name}`);
      const live = this.api.get(objectId(obj));
      return this.#write({ ...copy(obj), metadata: { ...copy(obj.metadata), uid: live?.metadata.uid } });
    },
    applyStatus: async (obj) => {
      this.statuses.push(copy(obj));
    },
    create: async (obj) => {
      this.#served(obj.kind!);
      if (this.api.has(objectId(obj))) throw new KubeApiError("POST", obj.metadata.name!, 409, undefined);
      this.writes.push(`create ${obj.kind}/${obj.metadata.name}`);
      return this.#write(copy(obj));
    },
    update: async (obj) => {
      const live = this.api.get(objectId(obj));
      if (!live) throw new KubeApiError("PUT", obj.metadata.name!, 404, undefined);
      if (live.metadata.resourceVersion !== obj.metadata.resourceVersion) throw new KubeApiError("PUT", obj.metadata.name!, 409, undefined);
      this.writes.push(`update ${obj.kind}/${obj.metadata.name}`);
      return this.#write({ ...copy(obj), metadata: { ...copy(obj.metadata), uid: live.metadata.uid } });
    },
    get: async (apiVersion, kind, namespace, name) => {
      this.#served(kind);
      const o = this.api.get(idOf(apiVersion, kind, namespace, name));
      return o ? copy(o) : undefined;
    },
    delete: async (apiVersion, kind, namespace, name, options) => {
      const id = idOf(apiVersion, kind, namespace, name);
      const live = this.api.get(id);
      if (!live) return;
      if (options?.uid && options.uid !== live.metadata.uid) throw new KubeApiError("DELETE", name, 409, undefined);
      this.writes.push(`delete ${kind}/${name}`);
      this.api.delete(id);
      if (!this.lagging && kind === "Secret") this.cache.delete(`${namespace}/${name}`);
    },
  };

  /** The objects of these kinds in a namespace (the owned-object caches). */
  list(namespace: string, kinds: readonly string[]): KubeObject[] {
    return [...this.api.values()].filter((o) => o.metadata.namespace === namespace && kinds.includes(o.kind!)).map(copy);
  }

  secret(namespace: string, name: string): KubeObject | undefined {
    return this.api.get(idOf("v1", "Secret", namespace, name));
  }

  #served(kind: string): void {
    if (this.unserved.has(kind)) throw new KubeApiError("GET", kind, 404, undefined);
  }

  #write(obj: KubeObject): KubeObject {
    const stored = this.#store(obj);
    this.#cacheIt(stored, !this.lagging);
    return copy(stored);
  }

  #store(obj: KubeObject): KubeObject {
    obj.metadata.uid ??= `uid-${++this.#uid}`;
    obj.metadata.resourceVersion = String(++this.#version);
    // The cache hands out frozen objects, the same one until it changes.
    const stored = Object.freeze(obj);
    this.api.set(objectId(stored), stored);
    return stored;
  }

  #cacheIt(obj: KubeObject, now: boolean): void {
    if (now && obj.kind === "Secret") this.cache.set(`${obj.metadata.namespace}/${obj.metadata.name}`, obj);
  }
}
