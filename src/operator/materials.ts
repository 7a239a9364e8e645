// What the child reconcilers (DaguUser, DaguApiKey, DaguWebhook) hand to the
// DaguAuth reconciler, and what it hands back once a credentials document is
// written. In memory only: after a restart every child reconciles again, cheaply,
// because the operator state Secret remembers fingerprints and hashes.
import type { CredentialApiKey, CredentialUser, CredentialWebhook, Credentials, PasswordChanges } from "../api/index.ts";
import type { OperatorState, PasswordRecord } from "./operator-state.ts";
import type { ReadyState } from "./conditions.ts";

/** A child's contribution, or why it has none (then it is left out of the credentials). */
export type ChildInput<T> =
  | { ok: true; generation: number; value: T }
  | { ok: false; generation: number; problem: ReadyState };

export interface UserInput {
  id: string;
  objectName: string;
  creationTimestamp: string;
  username: string;
  role: CredentialUser["role"];
  email?: string;
  disabled: boolean;
  allowPasswordChange: boolean;
  /** May sign in through the DaguAuth's OpenID provider (matched by email). */
  sso: boolean;
  /** The source password's record, to be remembered in the operator state; none for an SSO-only user. */
  password?: PasswordRecord;
  passwordSecretName?: string;
}

export interface ApiKeyInput {
  /** One entry, or two during a rotation overlap (same id, different digests). */
  entries: CredentialApiKey[];
  /** Earliest time the entries change by themselves (expiry, end of overlap). */
  nextTransitionMs?: number;
}

export interface WebhookInput {
  objectName: string;
  creationTimestamp: string;
  entry: CredentialWebhook;
}

/** What the last written credentials document was assembled from (inputs by reference). */
export interface Published {
  generation: number;
  users: Map<string, CredentialUser>;
  userInputs: Map<string, UserInput>;
  /** Users left out, with the reason (a duplicate username). */
  rejectedUsers: Map<string, ReadyState>;
  apiKeyInputs: Map<string, ApiKeyInput>;
  webhookInputs: Map<string, WebhookInput>;
  /** Webhooks left out, with the reason (another webhook holds the DAG). */
  rejectedWebhooks: Map<string, ReadyState>;
}

/** A Secret as written (or found already holding `document`). */
export interface WrittenSecret {
  resourceVersion: string | undefined;
  document: string;
}

export interface AuthMaterials {
  users: Map<string, ChildInput<UserInput>>;
  apiKeys: Map<string, ChildInput<ApiKeyInput>>;
  webhooks: Map<string, ChildInput<WebhookInput>>;
  published?: Published;
  /** The self-service password changes last read intact (kept in force when the Secret is damaged). */
  passwordChanges?: PasswordChanges;
  /** The credentials document as this operator last wrote it, and the resourceVersion of that write. */
  writtenCredentials?: { resourceVersion: string | undefined; current: { generation: number; document: Credentials; shardNames: string[]; comparable?: string }; at: number };
  /** The operator state as this operator last wrote it, with the Secrets that hold it. */
  writtenState?: { state: OperatorState; bucketed: boolean; secrets: Map<string, WrittenSecret>; at: number };
  /** When the children's password records were last saved while the DaguAuth waited for others (ms). */
  childRecordsSavedAt?: number;
}

type ChildKind = "users" | "apiKeys" | "webhooks";

/** Materials per DaguAuth, keyed "namespace/name". */
export class Materials {
  private readonly byAuth = new Map<string, AuthMaterials>();
  // A deletion seen as absence from the cache (not as an event) names only the key.
  private readonly uidByKey = new Map<string, string>();

  /**
   * The child at `key` now has `uid`. A different uid there means the object was deleted and created again
   * between two reconciles (`kubectl replace --force`): the old one's contribution goes; returns the
   * DaguAuths to reconcile for that.
   */
  rememberKey(kind: ChildKind, key: string, uid: string): string[] {
    const before = this.uidByKey.get(`${kind}:${key}`);
    this.uidByKey.set(`${kind}:${key}`, uid);
    return before !== undefined && before !== uid ? this.forget(kind, before) : [];
  }

  /** The child at `key` is gone: drop its contribution; returns the DaguAuths to reconcile. */
  forgetKey(kind: ChildKind, key: string): string[] {
    const uid = this.uidByKey.get(`${kind}:${key}`);
    this.uidByKey.delete(`${kind}:${key}`);
    return uid ? this.forget(kind, uid) : [];
  }

  of(authKey: string): AuthMaterials {
    let m = this.byAuth.get(authKey);
    if (!m) {
      m = { users: new Map(), apiKeys: new Map(), webhooks: new Map() };
      this.byAuth.set(authKey, m);
    }
    return m;
  }

  /** Removes a child's contribution from every DaguAuth (it was deleted or moved). */
  forget(kind: ChildKind, uid: string): string[] {
    const touched: string[] = [];
    for (const [authKey, m] of this.byAuth) if (m[kind].delete(uid)) touched.push(authKey);
    return touched;
  }

  dropAuth(authKey: string): void {
    this.byAuth.delete(authKey);
  }
}
