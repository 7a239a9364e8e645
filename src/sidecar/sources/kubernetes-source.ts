// In Kubernetes: the `<daguauth>-credentials` Secret (and its shards) and the
// `<daguauth>-password-changes` Secret, read through API watches under the
// ServiceAccount the operator creates for the sidecar, so a change is enforced
// within about a second (a mounted volume lags by a minute or more). Its Role
// names each Secret, so every watch selects one Secret by name.
import { EventEmitter } from "node:events";
import type { KubeConfig } from "../../common/kube/config.ts";
import type { Logger } from "pino";
import {
  CREDENTIALS_KEY,
  PASSWORD_CHANGES_KEY,
  SSO_USERS_KEY,
  credentialsSecretName,
  parsePasswordChanges,
  parseSsoUsers,
  passwordChangesSecretName,
  ssoUsersSecretName,
  type Credentials,
  type PasswordChanges,
  type SsoUsers,
} from "../../api/credentials.ts";
import { KubeClient, isConflict, resourcePath, type KubeObject } from "../../common/kube/client.ts";
import { Informer } from "../../common/kube/informer.ts";
import { secretValue as decoded } from "../../common/kube/secret-data.ts";
import { CredentialsReadError, readCredentials } from "../../common/credentials-secret.ts";
import { withSsoUsers } from "../../common/sso-overlay.ts";
import type { CredentialSource, CredentialSourceEvents, SsoUsersChange } from "../credentials/credential-source.ts";
import { applyPasswordChanges } from "../credentials/password-changes.ts";

export interface KubernetesSourceOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** The DaguAuth's name. */
  authName: string;
  logger: Logger;
}

const SECRETS = { group: "", version: "v1", plural: "secrets" };

export class KubernetesCredentialSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description: string;
  readonly #opts: KubernetesSourceOptions;
  readonly #client: KubeClient;
  readonly #credentials: Informer;
  readonly #changesInformer: Informer;
  readonly #ssoInformer: Informer;
  #raw: Credentials | undefined;
  #changes: PasswordChanges = {};
  #current: Credentials | undefined;
  #loading: Promise<void> = Promise.resolve();
  #rawVersion: string | undefined;
  #changesText: string | undefined;
  /** The password changes in the last `change` event (by reference). */
  #announcedChanges: PasswordChanges | undefined;
  #sso: SsoUsers = {};
  #ssoText: string | undefined;
  #announcedSso: SsoUsers | undefined;
  #retryDelayMs = 0;
  #retry: NodeJS.Timeout | undefined;
  /** Why the last load failed, until one succeeds (readiness is off meanwhile). */
  #broken: Error | undefined;
  #stopped = false;
  /** When contact with the API server was lost (epoch ms); undefined while in contact. */
  #lostContactAt: number | undefined;
  /** Both informers have listed: before that, an absent Secret may just not be listed yet. */
  #synced = false;
  readonly #reload = (): void => {
    if (this.#stopped || !this.#synced) return;
    this.#loading = this.#loading.then(() => this.#load()).catch((err: unknown) => this.#invalid(err instanceof Error ? err : new Error(String(err))));
  };

  constructor(options: KubernetesSourceOptions) {
    super();
    this.#opts = options;
    this.#client = new KubeClient(options.kubeConfig);
    this.description = `kubernetes:${options.namespace}/${credentialsSecretName(options.authName)}`;
    const watchOne = (name: string) =>
      new Informer({
        kubeConfig: options.kubeConfig,
        resource: SECRETS,
        namespace: options.namespace,
        fieldSelector: `metadata.name=${name}`,
        resyncPeriodMs: 0,
        // A revocation made while the API server was away must be in force within a second of its return.
        maxBackoffMs: 500,
        logger: options.logger,
      });
    this.#credentials = watchOne(credentialsSecretName(options.authName));
    this.#changesInformer = watchOne(passwordChangesSecretName(options.authName));
    this.#ssoInformer = watchOne(ssoUsersSecretName(options.authName));
    for (const informer of [this.#credentials, this.#changesInformer, this.#ssoInformer]) {
      informer.onAdd(this.#reload);
      informer.onUpdate(this.#reload);
      informer.onDelete(this.#reload);
      informer.onContact(() => this.#contactChanged());
    }
  }

  /** While the API server is out of reach the last good credentials stay in force: said in a log line, in
   * /readyz's body and in a metric (staleSince), never by turning readiness off, which would take every
   * Dagu offline for as long as the control plane is. */
  #contactChanged(): void {
    const connected = [this.#credentials, this.#changesInformer, this.#ssoInformer].every((i) => i.connected);
    if (!connected && this.#lostContactAt === undefined && this.#synced) {
      this.#lostContactAt = Date.now();
      this.#opts.logger.warn({ source: this.description, generation: this.#raw?.generation ?? null }, "lost contact with the API server; enforcing the last good credentials until it is back");
    } else if (connected && this.#lostContactAt !== undefined) {
      this.#opts.logger.info({ source: this.description, outageMs: Date.now() - this.#lostContactAt }, "back in contact with the API server");
      this.#lostContactAt = undefined;
    }
  }

  staleSince(): number | undefined {
    return this.#lostContactAt;
  }

  async start(): Promise<void> {
    this.#credentials.start();
    this.#changesInformer.start();
    this.#ssoInformer.start();
    await Promise.all([this.#credentials.hasSynced, this.#changesInformer.hasSynced, this.#ssoInformer.hasSynced]);
    this.#synced = true;
    this.#reload();
    await this.#loading;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    await Promise.all([this.#credentials.stop(), this.#changesInformer.stop(), this.#ssoInformer.stop()]);
  }

  current(): Credentials | undefined {
    return this.#current;
  }

  /**
   * Recomputes the document in force from both Secrets. `change` only when it differs from what was last
   * announced, or after an `invalid` (readiness comes back); a missing or invalid credentials Secret is
   * `invalid` (the store keeps the last good document and turns readiness off).
   */
  async #load(): Promise<void> {
    const { namespace, authName } = this.#opts;
    const changesText = decoded(this.#changesInformer.get(namespace, passwordChangesSecretName(authName)), PASSWORD_CHANGES_KEY);
    if (changesText !== this.#changesText) {
      this.#changesText = changesText;
      const parsed = changesText ? parsePasswordChanges(changesText) : undefined;
      // An unreadable document keeps the changes last read in force: dropping them would bring back
      // passwords that users changed (perhaps because they leaked).
      if (parsed && !parsed.success) this.#opts.logger.warn({ source: this.description }, "password-changes Secret is not valid; keeping the changes read before");
      else this.#changes = parsed?.data ?? {};
    }
    const ssoText = decoded(this.#ssoInformer.get(namespace, ssoUsersSecretName(authName)), SSO_USERS_KEY);
    if (ssoText !== this.#ssoText) {
      this.#ssoText = ssoText;
      const parsed = ssoText ? parseSsoUsers(ssoText) : undefined;
      // Unreadable: the users read before stay (dropping them would only lock people out until a fix).
      if (parsed && !parsed.success) this.#opts.logger.warn({ source: this.description }, "sso-users Secret is not valid; keeping the users read before");
      else this.#sso = parsed?.data ?? {};
    }
    const secret = this.#credentials.get(namespace, credentialsSecretName(authName));
    const text = decoded(secret, CREDENTIALS_KEY);
    if (text === undefined) {
      this.#invalid(new Error(`${this.description} ${secret ? `has no key ${CREDENTIALS_KEY}` : "does not exist"}`));
      return;
    }
    const version = secret!.metadata.resourceVersion;
    let doc = this.#raw;
    if (!doc || version !== this.#rawVersion) {
      doc = await this.#parse(text);
      if (!doc) return; // #parse said why
      // Never step back to an older generation (a stale read, a replayed event).
      if (this.#raw && doc.generation < this.#raw.generation) return;
    }
    if (doc === this.#raw && this.#changes === this.#announcedChanges && this.#sso === this.#announcedSso && !this.#broken) return;
    this.#raw = doc;
    this.#rawVersion = version;
    this.#broken = undefined;
    this.#retryDelayMs = 0;
    this.#announce();
  }

  /** The document in force: the credentials with password changes and SSO users laid over them. */
  #announce(): void {
    this.#announcedChanges = this.#changes;
    this.#announcedSso = this.#sso;
    this.#current = withSsoUsers(applyPasswordChanges(this.#raw!, this.#changes), this.#sso);
    this.emit("change", this.#current);
  }

  #invalid(error: Error): void {
    this.#broken = error;
    this.emit("invalid", error);
  }

  /** The document, or the shards an index names (each fetched by name; shards never change). */
  async #parse(text: string): Promise<Credentials | undefined> {
    try {
      const raw = this.#raw;
      const read = await readCredentials(text, (ref) => this.#readShard(ref.secretName, ref.key), (generation) => (raw && raw.generation === generation ? raw : undefined));
      return read.credentials;
    } catch (err) {
      if (err instanceof CredentialsReadError && err.stage === "entry") {
        this.#invalid(new Error(`${this.description} is not valid: ${err.message}`));
      } else if (err instanceof CredentialsReadError && err.stage === "document") {
        this.#invalid(new Error(`${this.description} (sharded) is not valid: ${err.message}`));
      } else {
        // A half-written generation, or a Role that does not name the shards yet: keep the last good
        // document and look again (a shard's own events are not watched).
        const generation = err instanceof CredentialsReadError ? err.generation : undefined;
        this.#invalid(new Error(`${this.description}: shards of generation ${generation} unreadable: ${err instanceof Error ? err.message : String(err)}`));
        // One retry pending at a time, whatever number of events fail meanwhile.
        if (!this.#retry && !this.#stopped) {
          this.#retryDelayMs = Math.min(Math.max(this.#retryDelayMs * 2, 500), 30_000);
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.#reload();
          }, this.#retryDelayMs);
          this.#retry.unref();
        }
      }
    }
    return undefined;
  }

  /** One shard's text; an error names the Secret (the codec checks the content). */
  async #readShard(secretName: string, key: string): Promise<string | undefined> {
    const secret = await this.#client.request<KubeObject>("GET", resourcePath(SECRETS, { namespace: this.#opts.namespace, name: secretName }));
    return decoded(secret, key);
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
      this.#announceWrite();
      return;
    }
    throw new Error(`recording a password change in Secret ${namespace}/${name}: too many concurrent writers`);
  }

  /** Our own write is in force at once; with the credentials Secret broken, readiness stays off. */
  #announceWrite(): void {
    if (!this.#raw) return;
    this.#announce();
    if (this.#broken) this.emit("invalid", this.#broken);
  }

  ssoUsers(): SsoUsers {
    return this.#sso;
  }

  /** Like recordPasswordChange: the live Secret, changed, patched with its resourceVersion; again on a conflict. */
  async updateSsoUsers<T>(change: SsoUsersChange<T>): Promise<T> {
    const { namespace, authName } = this.#opts;
    const name = ssoUsersSecretName(authName);
    const path = resourcePath(SECRETS, { namespace, name });
    for (let attempt = 0; attempt < 5; attempt++) {
      const live = await this.#client.request<KubeObject>("GET", path);
      const text = decoded(live, SSO_USERS_KEY);
      const parsed = text ? parseSsoUsers(text) : undefined;
      if (parsed && !parsed.success) throw new Error(`Secret ${namespace}/${name} is not valid; fix or empty it before SSO users can be added`);
      const next = change(parsed?.data ?? {});
      if (!next.users) return next.result;
      try {
        await this.#client.request("PATCH", path, {
          contentType: "application/merge-patch+json",
          body: { metadata: { resourceVersion: live.metadata.resourceVersion }, data: { [SSO_USERS_KEY]: Buffer.from(JSON.stringify(next.users)).toString("base64") } },
        });
      } catch (err) {
        if (isConflict(err)) continue;
        throw new Error(`recording an SSO user in Secret ${namespace}/${name} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      this.#sso = next.users;
      this.#announceWrite();
      return next.result;
    }
    throw new Error(`recording an SSO user in Secret ${namespace}/${name}: too many concurrent writers`);
  }
}
