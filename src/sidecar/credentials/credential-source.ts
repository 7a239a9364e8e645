// Where the sidecar's credentials come from. Standalone: a credentials file or Dagu's own `auth:` config;
// in Kubernetes: the `<daguauth>-credentials` Secret through a watch (added separately). The store
// (credential-store.ts) listens to a source and keeps the last good document.
import { EventEmitter } from "node:events";
import type { Credentials, SsoUsers } from "../../api/credentials.ts";
import type { StandaloneManagement } from "../answers/management.ts";

export interface CredentialSourceEvents {
  /** A new valid document (password changes already applied). */
  change: [credentials: Credentials];
  /** A new document that is not valid; the message names the fields, never a value. */
  invalid: [error: Error];
}

export interface CredentialSource extends EventEmitter<CredentialSourceEvents> {
  /** For logs and metrics, e.g. `file:/etc/dagu/credentials.json`. */
  readonly description: string;
  /**
   * Loads the first document and starts watching. Resolves once the first attempt is over, whether it
   * produced a document (`change`) or not (`invalid`): a missing document must not stop the server,
   * which then fails closed with 503.
   */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The latest valid document, undefined when none was ever loaded. */
  current(): Credentials | undefined;
  /**
   * Records a self-service password change (argon2id hash, RFC 3339 time with nanoseconds) where this
   * source keeps it, and emits `change` with it applied before resolving, so the next request already
   * sees it. Rejects when the change cannot be kept.
   */
  recordPasswordChange(userId: string, passwordHash: string, changedAt: string): Promise<void>;
  /**
   * Users, API keys and webhooks changed through Dagu's API and first-run setup: only a standalone source
   * in builtin mode has it (Dagu's own auth: configuration); everywhere else they are declared.
   */
  management?(): StandaloneManagement | undefined;
  /**
   * When the source lost contact with where the credentials live (epoch ms), while it has: the document in
   * force may be stale. Undefined when in contact, or for sources that cannot lose it (files).
   */
  staleSince?(): number | undefined;
  /** Users created by single sign-on, as last read (already laid over `current()`). */
  ssoUsers(): SsoUsers;
  /**
   * Read-modify-write of the SSO users where this source keeps them: `change` runs on the latest records
   * (again after a concurrent write) and returns them changed, or undefined for no change. `change` is
   * emitted with the result in force before this resolves, so the next request already sees it.
   */
  updateSsoUsers<T>(change: SsoUsersChange<T>): Promise<T>;
}

export type SsoUsersChange<T> = (users: SsoUsers) => { users: SsoUsers | undefined; result: T };
