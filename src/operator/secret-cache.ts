// The Secrets the operator reads, and only those, selected by the API server:
// - its own (credentials, state, consumer Secrets): a watch with its label selector, bodies cached;
// - the ones its resources reference (passwords, token secrets, TLS Secrets), which carry no label of
//   ours: a metadata-only watch (PartialObjectMetadata: names, labels, resourceVersions, never data)
//   tells which exist and when they change; a body is fetched by name when a reconcile reads it and
//   kept while it is current and referenced.
// Nothing lists Secret bodies across the cluster: thousands of Helm release Secrets (up to ~1 MiB each)
// cost the metadata watch a few hundred bytes apiece, and the operator's heap does not grow with them.
import type { Logger } from "pino";
import type { KubeConfig } from "../common/kube/config.ts";
import { isNotFound, objectKey, type KubeClient, type KubeObject } from "../common/kube/client.ts";
import { Informer } from "../common/kube/informer.ts";
import type { SecretReferences } from "./secret-references.ts";

const SECRETS = { group: "", version: "v1", plural: "secrets" };

export interface SecretCacheOptions {
  kubeConfig: KubeConfig;
  client: KubeClient;
  /** The label selector of the operator's own Secrets (managed-by and instance). */
  ownedSelector: string;
  references: SecretReferences;
  resyncPeriodMs: number;
  /** A namespaced install: only these namespaces (undefined: all). */
  namespaces?: readonly string[];
  /** Longest wait between two failed lists or watches (the informer's default when undefined). */
  maxBackoffMs?: number;
  logger: Logger;
}

export class SecretCache {
  /** Bodies of the operator's own Secrets. */
  readonly owned: Informer;
  /** Metadata of the referenced Secrets (filtered to them as events arrive). */
  readonly referenced: Informer;
  readonly #client: KubeClient;
  readonly #references: SecretReferences;
  /** Bodies of referenced Secrets, fetched on demand: "namespace/name" -> the Secret. */
  readonly #bodies = new Map<string, KubeObject>();
  /** Fetches by API GET (for tests and metrics). */
  fetches = 0;

  constructor(options: SecretCacheOptions) {
    this.#client = options.client;
    this.#references = options.references;
    const where = { ...(options.namespaces ? { namespaces: options.namespaces } : {}), ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}) };
    this.owned = new Informer({ kubeConfig: options.kubeConfig, resource: SECRETS, labelSelector: options.ownedSelector, resyncPeriodMs: options.resyncPeriodMs, logger: options.logger, ...where });
    this.referenced = new Informer({
      ...where,
      kubeConfig: options.kubeConfig,
      resource: SECRETS,
      metadataOnly: true,
      resyncPeriodMs: options.resyncPeriodMs,
      logger: options.logger,
      filter: (s) => options.references.isReferenced(s.metadata.namespace ?? "", s.metadata.name ?? ""),
    });
    // A body is current only for the resourceVersion the metadata watch last saw.
    this.referenced.onUpdate((_old, s) => this.#drop(s, true));
    this.referenced.onDelete((s) => this.#drop(s, false));
  }

  /**
   * The Secret: the operator's own from its cache; a referenced one from the body kept for its current
   * resourceVersion, else read by name; undefined when it does not exist.
   */
  async get(namespace: string, name: string): Promise<KubeObject | undefined> {
    const own = this.owned.get(namespace, name);
    if (own) return own;
    const key = objectKey(namespace, name);
    const meta = this.referenced.get(namespace, name);
    const body = this.#bodies.get(key);
    if (meta && body?.metadata.resourceVersion === meta.metadata.resourceVersion) return body;
    this.fetches++;
    let fetched: KubeObject | undefined;
    try {
      fetched = await this.#client.request<KubeObject>("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // Kept only while referenced. A read is never older than what the watch has delivered; while the watch
    // lags behind it, the resourceVersions differ and the next read asks again.
    if (fetched && this.#references.isReferenced(namespace, name)) {
      this.#bodies.set(key, Object.freeze({ ...fetched, apiVersion: "v1", kind: "Secret" }));
    } else this.#bodies.delete(key);
    return fetched;
  }

  /** Forgets the bodies of Secrets nobody references any more ("namespace/name"). */
  unreferenced(keys: readonly string[]): void {
    for (const key of keys) this.#bodies.delete(key);
  }

  /** What the cache holds in bodies, by namespace: the operator's own and the referenced ones read. */
  bodies(): KubeObject[] {
    return [...this.owned.list(), ...this.#bodies.values()];
  }

  #drop(s: KubeObject, keepIfCurrent: boolean): void {
    const key = objectKey(s.metadata.namespace, s.metadata.name ?? "");
    if (keepIfCurrent && this.#bodies.get(key)?.metadata.resourceVersion === s.metadata.resourceVersion) return;
    this.#bodies.delete(key);
  }
}
