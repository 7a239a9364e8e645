// Holds the last good credentials document and the indexes every request reads. A new invalid document
// keeps the last good one and turns readiness off (the pod leaves the Service's endpoints until someone
// fixes it); when no document was ever loaded, snapshot() is undefined and the server answers 503.
import { EventEmitter } from "node:events";
import type { CredentialApiKey, CredentialUser, CredentialWebhook, Credentials } from "../../api/credentials.ts";
import type { CredentialSource } from "./credential-source.ts";

export interface SigningKeyEntry {
  readonly kid: string;
  readonly secret: Uint8Array;
  /** Epoch ms after which it no longer verifies; undefined for keys without an end. */
  readonly notAfterMs: number | undefined;
}

export interface CredentialSnapshot {
  readonly credentials: Credentials;
  readonly usersByName: ReadonlyMap<string, CredentialUser>;
  readonly usersById: ReadonlyMap<string, CredentialUser>;
  readonly apiKeysByDigest: ReadonlyMap<string, CredentialApiKey>;
  readonly webhooksByDag: ReadonlyMap<string, CredentialWebhook>;
  readonly signingKeys: ReadonlyMap<string, SigningKeyEntry>;
  /** When this document was loaded (epoch ms). */
  readonly loadedAt: number;
}

export interface CredentialStoreEvents {
  /** A new document is in force. */
  loaded: [snapshot: CredentialSnapshot];
  /** A document was refused; the previous one (if any) stays in force. */
  rejected: [error: Error];
}

const msOf = (value: string | undefined): number | undefined => (value === undefined ? undefined : Date.parse(value));

export function indexCredentials(credentials: Credentials, loadedAt = Date.now()): CredentialSnapshot {
  const signingKeys = new Map<string, SigningKeyEntry>();
  for (const key of credentials.token?.keys ?? []) {
    signingKeys.set(key.kid, {
      kid: key.kid,
      secret: new Uint8Array(Buffer.from(key.secret, "base64url")),
      notAfterMs: msOf(key.notAfter),
    });
  }
  return Object.freeze({
    credentials,
    usersByName: new Map(credentials.users.map((u) => [u.username, u])),
    usersById: new Map(credentials.users.map((u) => [u.id, u])),
    apiKeysByDigest: new Map(credentials.apiKeys.map((k) => [k.digest, k])),
    webhooksByDag: new Map(credentials.webhooks.map((w) => [w.dagName, w])),
    signingKeys,
    loadedAt,
  });
}

export class CredentialStore extends EventEmitter<CredentialStoreEvents> {
  #snapshot: CredentialSnapshot | undefined;
  #healthy = false;
  #lastError: string | undefined;
  readonly source: CredentialSource;

  constructor(source: CredentialSource) {
    super();
    this.source = source;
    source.on("change", (credentials) => this.#accept(credentials));
    source.on("invalid", (error) => this.#reject(error));
  }

  async start(): Promise<void> {
    await this.source.start();
    const current = this.source.current();
    if (current && current !== this.#snapshot?.credentials) this.#accept(current);
  }

  stop(): Promise<void> {
    return this.source.stop();
  }

  /** The document in force, or undefined when none was ever loaded (fail closed). */
  snapshot(): CredentialSnapshot | undefined {
    return this.#snapshot;
  }

  /** Ready: a document is in force and the latest one seen was valid. */
  ready(): boolean {
    return this.#snapshot !== undefined && this.#healthy;
  }

  /** Why the store is not ready (no secret material: zod messages name fields, not values). */
  lastError(): string | undefined {
    return this.#lastError;
  }

  #accept(credentials: Credentials): void {
    const previous = this.#snapshot?.credentials;
    if (previous && credentials.generation < previous.generation) {
      // Never go back: an older generation is a stale read or a replay.
      this.#reject(new Error(`credentials generation ${credentials.generation} is older than ${previous.generation} in force`));
      return;
    }
    this.#snapshot = indexCredentials(credentials);
    this.#healthy = true;
    this.#lastError = undefined;
    this.emit("loaded", this.#snapshot);
  }

  #reject(error: Error): void {
    this.#healthy = false;
    this.#lastError = error.message;
    this.emit("rejected", error);
  }
}
