// In Kubernetes: the `<daguauth>-credentials` Secret (and its shards) and the
// `<daguauth>-password-changes` Secret, read through API watches under the
// ServiceAccount the operator creates for the sidecar, so a change is enforced
// within about a second (a mounted volume lags by a minute or more). Its Role
// names each Secret, so every watch selects one Secret by name.
import { EventEmitter } from "node:events";
import type { KubeConfig } from "../../common/kube/config.ts";
import type { Logger } from "pino";
import { z } from "zod";
import {
  CREDENTIALS_KEY,
  CredentialsShard,
  PASSWORD_CHANGES_KEY,
  credentialsSecretName,
  joinShards,
  parseCredentials,
  parseCredentialsEntry,
  parsePasswordChanges,
  passwordChangesSecretName,
  type Credentials,
  type PasswordChanges,
} from "../../api/credentials.ts";
import { KubeClient, isConflict, resourcePath, type KubeObject } from "../../common/kube/client.ts";
import { Informer } from "../../common/kube/informer.ts";
import type { CredentialSource, CredentialSourceEvents } from "../credential-source.ts";
import { applyPasswordChanges } from "../password-changes.ts";

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The DaguAuth's name. */
  authName: string;
  logger: Logger;
}

const SECRETS = { group: "", version: "v1", plural: "secrets" };

function decoded(secret: KubeObject | undefined, key: string): string | undefined {
  const value = (secret?.data as Record<string, string> | undefined)?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

export class KubernetesCredentialSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description: string;
  readonly #opts: KubernetesSourceOptions;
  readonly #client: KubeClient;
  readonly #credentials: Informer;
  readonly #changesInformer: Informer;
  #raw: Credentials | undefined;
  #changes: PasswordChanges = {};
  #current: Credentials | undefined;
  #loading: Promise<void> = Promise.resolve();

  constructor(options: KubernetesSourceOptions) {
    super();
    this.#opts = options;
    this.#client = new KubeClient(options.kubeConfig);
    this.description = `kubernetes:${options.namespace}/${credentialsSecretName(options.authName)}`;
    const watchOne = (name: string) =>
      new Informer({ kubeConfig: options.kubeConfig, resource: SECRETS, namespace: options.namespace, fieldSelector: `metadata.name=${name}`, resyncPeriodMs: 0, logger: options.logger });
    this.#credentials = watchOne(credentialsSecretName(options.authName));
    this.#changesInformer = watchOne(passwordChangesSecretName(options.authName));
    const reload = () => {
      this.#loading = this.#loading
        .then(() => this.#load())
        .catch((err: unknown) => {
          this.emit("invalid", err instanceof Error ? err : new Error(String(err)));
        });
    };
    for (const informer of [this.#credentials, this.#changesInformer]) {
      informer.onAdd(reload);
      informer.onUpdate(reload);
      informer.onDelete(reload);
    }
  }

  async start(): Promise<void> {
    this.#credentials.start();
    this.#changesInformer.start();
    await Promise.all([this.#credentials.hasSynced, this.#changesInformer.hasSynced]);
    await this.#loading;
    if (!this.#raw) this.emit("invalid", new Error(`${this.description}: no credentials yet`));
  }

  async stop(): Promise<void> {
    await Promise.all([this.#credentials.stop(), this.#changesInformer.stop()]);
  }

  current(): Credentials | undefined {
    return this.#current;
  }

  async #load(): Promise<void> {
    const { namespace, authName } = this.#opts;
    const changesText = decoded(this.#changesInformer.get(namespace, passwordChangesSecretName(authName)), PASSWORD_CHANGES_KEY);
    if (changesText) {
      const parsed = parsePasswordChanges(changesText);
      if (parsed.success) this.#changes = parsed.data;
      else this.#opts.logger.warn({ source: this.description }, "password-changes Secret is not valid; ignoring it");
    }
    const text = decoded(this.#credentials.get(namespace, credentialsSecretName(authName)), CREDENTIALS_KEY);
    if (text !== undefined) {
      const doc = await this.#parse(text);
      // Never step back to an older generation (a stale read, a replayed event).
      if (doc && (!this.#raw || doc.generation >= this.#raw.generation)) this.#raw = doc;
    }
    if (!this.#raw) return;
    this.#current = applyPasswordChanges(this.#raw, this.#changes);
    this.emit("change", this.#current);
  }

  /** The document, or the shards an index names (each fetched by name; shards never change). */
  async #parse(text: string): Promise<Credentials | undefined> {
    const entry = parseCredentialsEntry(text);
    if (!entry.success) {
      this.emit("invalid", new Error(`${this.description} is not valid: ${z.prettifyError(entry.error)}`));
      return undefined;
    }
    if (entry.data.kind === "document") return entry.data.credentials;
    const index = entry.data.index;
    if (this.#raw && this.#raw.generation === index.generation) return this.#raw;
    try {
      const shards = await Promise.all(
        index.shards.map(async (ref) => {
          const secret = await this.#client.request<KubeObject>("GET", resourcePath(SECRETS, { namespace: this.#opts.namespace, name: ref.secretName }));
          return CredentialsShard.parse(JSON.parse(decoded(secret, ref.key) ?? "null"));
        }),
      );
      const parsed = parseCredentials(joinShards(index, shards));
      if (parsed.success) return parsed.data;
      this.emit("invalid", new Error(`${this.description} (sharded) is not valid: ${z.prettifyError(parsed.error)}`));
    } catch (err) {
      // A half-written generation: keep the last good document until the index moves on.
      this.emit("invalid", new Error(`${this.description}: shards of generation ${index.generation} unreadable: ${err instanceof Error ? err.message : String(err)}`));
    }
    return undefined;
  }

  /**
   * Adds the change to the password-changes Secret with its resourceVersion as a
   * precondition (another replica may write at the same time), retrying on conflict.
   */
  async recordPasswordChange(userId: string, passwordHash: string, changedAt: string): Promise<void> {
    const { namespace, authName } = this.#opts;
    const name = passwordChangesSecretName(authName);
    const path = resourcePath(SECRETS, { namespace, name });
    for (let attempt = 0; attempt < 5; attempt++) {
      const live = await this.#client.request<KubeObject>("GET", path);
      const text = decoded(live, PASSWORD_CHANGES_KEY);
      const parsed = text ? parsePasswordChanges(text) : undefined;
      const changes: PasswordChanges = { ...(parsed?.success ? parsed.data : {}), [userId]: { passwordHash, changedAt } };
      try {
        await this.#client.request("PATCH", path, {
          contentType: "application/merge-patch+json",
          body: { metadata: { resourceVersion: live.metadata.resourceVersion }, data: { [PASSWORD_CHANGES_KEY]: Buffer.from(JSON.stringify(changes)).toString("base64") } },
        });
      } catch (err) {
        if (isConflict(err)) continue;
        throw new Error(`recording a password change in Secret ${namespace}/${name} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      this.#changes = changes;
      if (this.#raw) {
        this.#current = applyPasswordChanges(this.#raw, this.#changes);
        this.emit("change", this.#current);
      }
      return;
    }
    throw new Error(`recording a password change in Secret ${namespace}/${name}: too many concurrent writers`);
  }
}
