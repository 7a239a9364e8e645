// Users, API keys and webhooks of a standalone sidecar, changed through Dagu's own API as Dagu's builtin
// mode changes them (first-run setup, users, API keys, webhooks), kept in --state-dir. The same formats
// as the Kubernetes mode: argon2id hashes (computed within the process-wide bound on hashing), `dagu_`
// keys and `dagu_wh_` tokens of 256 random bits stored as SHA-256 digests and shown once, HMAC secrets of
// 256 bits. Every change is one atomic write of the state file; a refusal is an HttpError in Dagu's words.
import { randomUUID } from "node:crypto";
import { USERNAME_PATTERN, type Role } from "../../api/common.ts";
import type { API_KEY_ATTRIBUTIONS, API_KEY_SURFACES } from "../../api/credentials.ts";
import { DAG_NAME_PATTERN } from "../../api/dagu-webhook.ts";
import { boundedVerification, hashPassword, MIN_PASSWORD_LENGTH, VERIFY_BUSY_RETRY_SECONDS } from "../../common/password-hash.ts";
import { generateApiKey, generateSecret, generateWebhookToken, keyPrefix, sha256Hex } from "../../common/tokens.ts";
import { HttpError } from "./http-io.ts";
import { changeTimestamp } from "../credentials/password-changes.ts";
import type { SidecarState, StateDir } from "../sources/state-dir.ts";
import type { StoredApiKey, StoredUser, StoredWebhook } from "../sources/standalone-records.ts";

/** Who asks for a change: the principal's id (Dagu's createdBy) and, for a logged-in user, the user id. */
export interface Actor {
  readonly id: string;
  readonly userId?: string;
}

/** A user declared in the configuration (auth.builtin.initial_admin): it cannot be changed through the API. */
export interface DeclaredUser {
  readonly id: string;
  readonly username: string;
}

export interface ManagementOptions {
  /** Undefined without --state-dir: everything can be read, nothing changed. */
  readonly state: StateDir | undefined;
  readonly declared: () => DeclaredUser | undefined;
  /** Called after every change, to put it in force (the source publishes a new document). */
  readonly changed: () => void;
}

export interface NewUser {
  username: string;
  password: string;
  role: Role;
}

export interface UserPatch {
  username?: string;
  role?: Role;
  disabled?: boolean;
}

export interface ApiKeyFields {
  name: string;
  description?: string;
  role: Role;
  allowedSurfaces: (typeof API_KEY_SURFACES)[number][];
  attributionClass: (typeof API_KEY_ATTRIBUTIONS)[number];
  ownerUserId?: string;
  serviceAccountName?: string;
}

export type WebhookHmacMode = "tokenAndHmac" | "hmac";

const NO_STATE =
  "users, API keys and webhooks are kept in --state-dir: start the sidecar with --state-dir DIR to create, change or delete them";

export class StandaloneManagement {
  readonly #options: ManagementOptions;
  /** Setups one at a time: only the first may create the admin, and only one hash is spent meanwhile. */
  #setups: Promise<unknown> = Promise.resolve();

  constructor(options: ManagementOptions) {
    this.#options = options;
  }

  /** Why nothing can be changed (no --state-dir); undefined when changes are kept. */
  get unavailable(): string | undefined {
    return this.#options.state ? undefined : NO_STATE;
  }

  records(): Pick<SidecarState, "users" | "apiKeys" | "webhooks"> {
    const s = this.#options.state?.current();
    return { users: s?.users ?? {}, apiKeys: s?.apiKeys ?? {}, webhooks: s?.webhooks ?? {} };
  }

  /**
   * Dagu's first-run condition: no user at all (a configured initial admin counts, and so does a user
   * single sign-on created, as in Dagu's user count). SSO cannot create the first user: while this holds,
   * the SSO routes send the browser to the setup page, as Dagu v2.15.1 does (docs/adr/0017).
   */
  setupRequired(): boolean {
    const s = this.#options.state?.current();
    return this.#options.declared() === undefined && Object.keys(s?.users ?? {}).length === 0 && Object.keys(s?.ssoUsers ?? {}).length === 0;
  }

  // --- users --------------------------------------------------------------------------------------

  /** Dagu's /auth/setup: the first admin, while there is no user; 403 afterwards. */
  setup(username: string, password: string): Promise<StoredUser> {
    const run = this.#setups.then(() => this.#setupOnce(username, password));
    this.#setups = run.catch(() => undefined);
    return run;
  }

  async #setupOnce(username: string, password: string): Promise<StoredUser> {
    const done = () => new HttpError(403, "forbidden", "Setup has already been completed");
    if (!this.setupRequired()) throw done();
    const state = this.#state();
    checkUsername(username);
    const { user } = await this.#hash(password, username, "admin");
    return this.#change(state, (s) => {
      if (this.#options.declared() !== undefined || Object.keys(s.users).length > 0 || Object.keys(s.ssoUsers).length > 0) throw done();
      return { ...s, users: { [user.id]: user } };
    }, () => user);
  }

  async createUser(input: NewUser): Promise<StoredUser> {
    const state = this.#state();
    checkUsername(input.username);
    this.#checkUsernameFree(this.records(), input.username, undefined);
    const { user } = await this.#hash(input.password, input.username, input.role);
    return this.#change(state, (s) => {
      this.#checkUsernameFree(s, input.username, undefined);
      return { ...s, users: { ...s.users, [user.id]: user } };
    }, () => user);
  }

  async updateUser(id: string, patch: UserPatch, actor: Actor): Promise<StoredUser> {
    const state = this.#state();
    this.#notDeclared(id);
    if (patch.username !== undefined) checkUsername(patch.username);
    if (patch.disabled === true && actor.userId === id) throw new HttpError(403, "forbidden", "Cannot disable your own account");
    let updated: StoredUser | undefined;
    return this.#change(state, (s) => {
      const user = userOf(s, id);
      if (patch.username !== undefined && patch.username !== user.username) this.#checkUsernameFree(s, patch.username, id);
      updated = {
        ...user,
        ...(patch.username !== undefined ? { username: patch.username } : {}),
        ...(patch.role !== undefined ? { role: patch.role } : {}),
        ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
        updatedAt: new Date().toISOString(),
      };
      return { ...s, users: { ...s.users, [id]: updated } };
    }, () => updated!);
  }

  async deleteUser(id: string, actor: Actor): Promise<void> {
    const state = this.#state();
    this.#notDeclared(id);
    if (actor.userId === id) throw new HttpError(403, "forbidden", "Cannot delete your own account");
    await this.#change(state, (s) => {
      userOf(s, id);
      return { ...s, users: omit(s.users, id) };
    }, () => undefined);
  }

  /** An admin sets a new password; tokens issued before it are refused. */
  async resetPassword(id: string, newPassword: string): Promise<void> {
    const state = this.#state();
    this.#notDeclared(id);
    userOf(state.current(), id);
    const passwordHash = await this.#hashOnly(newPassword);
    await this.#change(state, (s) => {
      const user = userOf(s, id);
      const at = changeTimestamp(user.passwordChangedAt);
      return { ...s, users: { ...s.users, [id]: { ...user, passwordHash, passwordChangedAt: at, updatedAt: at } } };
    }, () => undefined);
  }

  /** A stored user's own change of password (change-password); false when the id is not a stored user. */
  async changeOwnPassword(id: string, passwordHash: string, changedAt: string): Promise<boolean> {
    const state = this.#options.state;
    if (!state || !Object.hasOwn(state.current().users, id)) return false;
    await this.#change(state, (s) => {
      const user = userOf(s, id);
      return { ...s, users: { ...s.users, [id]: { ...user, passwordHash, passwordChangedAt: changedAt, updatedAt: changedAt } } };
    }, () => undefined);
    return true;
  }

  // --- API keys -----------------------------------------------------------------------------------

  async createApiKey(fields: ApiKeyFields, actor: Actor): Promise<{ record: StoredApiKey; key: string }> {
    const state = this.#state();
    const key = generateApiKey();
    const now = new Date().toISOString();
    let record: StoredApiKey | undefined;
    await this.#change(state, (s) => {
      if (Object.values(s.apiKeys).some((k) => k.name === fields.name)) throw new HttpError(409, "already_exists", "API key with this name already exists");
      record = attributed(s, this.#options.declared(), { id: randomUUID(), ...fields, digest: sha256Hex(key), prefix: keyPrefix(key), createdBy: actor.id, createdAt: now, updatedAt: now });
      return { ...s, apiKeys: { ...s.apiKeys, [record.id]: record } };
    }, () => undefined);
    return { record: record!, key };
  }

  async updateApiKey(id: string, patch: Partial<ApiKeyFields>): Promise<StoredApiKey> {
    const state = this.#state();
    let record: StoredApiKey | undefined;
    return this.#change(state, (s) => {
      const current = Object.hasOwn(s.apiKeys, id) ? s.apiKeys[id] : undefined;
      if (!current) throw new HttpError(404, "not_found", "API key not found");
      if (patch.name !== undefined && patch.name !== current.name && Object.values(s.apiKeys).some((k) => k.name === patch.name)) {
        throw new HttpError(409, "already_exists", "API key with this name already exists");
      }
      const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
      record = attributed(s, this.#options.declared(), { ...current, ...defined, updatedAt: new Date().toISOString() });
      return { ...s, apiKeys: { ...s.apiKeys, [id]: record } };
    }, () => record!);
  }

  async deleteApiKey(id: string): Promise<void> {
    await this.#change(this.#state(), (s) => {
      if (!Object.hasOwn(s.apiKeys, id)) throw new HttpError(404, "not_found", "API key not found");
      return { ...s, apiKeys: omit(s.apiKeys, id) };
    }, () => undefined);
  }

  // --- webhooks (one per DAG, as in Dagu) ---------------------------------------------------------

  async createWebhook(dagName: string, actor: Actor): Promise<{ record: StoredWebhook; token: string }> {
    const state = this.#state();
    if (!DAG_NAME_PATTERN.test(dagName) || dagName === "." || dagName === "..") throw new HttpError(400, "bad_request", `invalid DAG name ${JSON.stringify(dagName)}`);
    const token = generateWebhookToken();
    const now = new Date().toISOString();
    let record: StoredWebhook | undefined;
    await this.#change(state, (s) => {
      if (webhookOf(s, dagName, false)) throw new HttpError(409, "already_exists", `webhook already exists for DAG ${dagName}`);
      record = { id: randomUUID(), dagName, enabled: true, mode: "token", hmacEnforcement: "strict", tokenDigest: sha256Hex(token), tokenPrefix: keyPrefix(token), createdBy: actor.id, createdAt: now, updatedAt: now };
      return { ...s, webhooks: { ...s.webhooks, [record.id]: record } };
    }, () => undefined);
    return { record: record!, token };
  }

  async deleteWebhook(dagName: string): Promise<void> {
    await this.#change(this.#state(), (s) => {
      const w = webhookOf(s, dagName, true)!;
      return { ...s, webhooks: omit(s.webhooks, w.id) };
    }, () => undefined);
  }

  /** A new token at once; the old one stops working at once (Dagu's regenerate, unlike a DaguWebhook's rotation with overlap). */
  async regenerateWebhookToken(dagName: string): Promise<{ record: StoredWebhook; token: string }> {
    const token = generateWebhookToken();
    const record = await this.#updateWebhook(dagName, (w) => ({ ...w, tokenDigest: sha256Hex(token), tokenPrefix: keyPrefix(token) }));
    return { record, token };
  }

  toggleWebhook(dagName: string, enabled: boolean): Promise<StoredWebhook> {
    return this.#updateWebhook(dagName, (w) => ({ ...w, enabled }));
  }

  /** HMAC on (with a new secret, shown once), in token-and-HMAC or HMAC-only mode. */
  async enableWebhookHmac(dagName: string, mode: WebhookHmacMode, enforcement: "strict" | "observe" | undefined): Promise<{ record: StoredWebhook; secret: string }> {
    const hmacEnforcement = hmacEnforcementFor(mode, enforcement ?? "strict");
    const secret = generateSecret();
    const now = new Date().toISOString();
    const record = await this.#updateWebhook(dagName, (w) => ({ ...w, mode, hmacEnforcement, hmacSecret: secret, hmacUpdatedAt: now }));
    return { record, secret };
  }

  /** The mode or enforcement, keeping the secret; an omitted enforcement keeps the current one (HMAC-only: strict). */
  configureWebhookHmac(dagName: string, mode: WebhookHmacMode, enforcement: "strict" | "observe" | undefined): Promise<StoredWebhook> {
    return this.#updateWebhook(dagName, (w) => {
      if (!w.hmacSecret) throw new HttpError(400, "bad_request", "webhook HMAC is not configured");
      return { ...w, mode, hmacEnforcement: hmacEnforcementFor(mode, enforcement ?? (mode === "hmac" ? "strict" : w.hmacEnforcement)) };
    });
  }

  async regenerateWebhookHmac(dagName: string): Promise<{ record: StoredWebhook; secret: string }> {
    const secret = generateSecret();
    const now = new Date().toISOString();
    const record = await this.#updateWebhook(dagName, (w) => {
      if (w.mode === "token" || !w.hmacSecret) throw new HttpError(400, "bad_request", "webhook HMAC is not configured");
      return { ...w, hmacSecret: secret, hmacUpdatedAt: now };
    });
    return { record, secret };
  }

  /** Back to the token alone; the HMAC secret is forgotten. */
  disableWebhookHmac(dagName: string): Promise<StoredWebhook> {
    return this.#updateWebhook(dagName, (w) => {
      return { ...omit(w, "hmacSecret", "hmacUpdatedAt"), mode: "token", hmacEnforcement: "strict" };
    });
  }

  // --- helpers ------------------------------------------------------------------------------------

  #state(): StateDir {
    const state = this.#options.state;
    if (!state) throw new HttpError(403, "forbidden", NO_STATE);
    return state;
  }

  #notDeclared(id: string): void {
    const declared = this.#options.declared();
    if (declared?.id === id) {
      throw new HttpError(403, "forbidden", `user ${declared.username} is declared in the configuration (auth.builtin.initial_admin): change it there`);
    }
  }

  #checkUsernameFree(s: Pick<SidecarState, "users">, username: string, self: string | undefined): void {
    const taken = this.#options.declared()?.username === username || Object.values(s.users).some((u) => u.username === username && u.id !== self);
    if (taken) throw new HttpError(409, "already_exists", "Username already exists");
  }

  async #hashOnly(password: string): Promise<string> {
    if (password.length < MIN_PASSWORD_LENGTH) throw new HttpError(400, "bad_request", "Password does not meet security requirements");
    const hashing = boundedVerification(() => hashPassword(password));
    if (!hashing) throw new HttpError(429, "too_many_requests", `Too many password checks in progress; try again in ${VERIFY_BUSY_RETRY_SECONDS} s`);
    return hashing;
  }

  async #hash(password: string, username: string, role: Role): Promise<{ user: StoredUser }> {
    const passwordHash = await this.#hashOnly(password);
    const at = changeTimestamp(undefined);
    return { user: { id: randomUUID(), username, role, passwordHash, passwordChangedAt: at, disabled: false, createdAt: at, updatedAt: at } };
  }

  async #updateWebhook(dagName: string, change: (w: StoredWebhook) => StoredWebhook): Promise<StoredWebhook> {
    let record: StoredWebhook | undefined;
    return this.#change(this.#state(), (s) => {
      const current = webhookOf(s, dagName, true)!;
      record = { ...change(current), updatedAt: new Date().toISOString() };
      return { ...s, webhooks: { ...s.webhooks, [current.id]: record } };
    }, () => record!);
  }

  /** One atomic write of the state, then the change is put in force. */
  async #change<T>(state: StateDir, change: (s: SidecarState) => SidecarState, result: () => T): Promise<T> {
    await state.update(change);
    this.#options.changed();
    return result();
  }
}

function checkUsername(username: string): void {
  if (!USERNAME_PATTERN.test(username)) throw new HttpError(400, "bad_request", "Invalid username");
}

function userOf(s: Pick<SidecarState, "users">, id: string): StoredUser {
  const user = Object.hasOwn(s.users, id) ? s.users[id] : undefined;
  if (!user) throw new HttpError(404, "not_found", "User not found");
  return user;
}

function webhookOf(s: Pick<SidecarState, "webhooks">, dagName: string, required: boolean): StoredWebhook | undefined {
  const found = Object.values(s.webhooks).find((w) => w.dagName === dagName);
  if (!found && required) throw new HttpError(404, "not_found", `no webhook configured for DAG ${dagName}`);
  return found;
}

/** Dagu's rules: HMAC-only is always strict; an unknown mode is refused. */
function hmacEnforcementFor(mode: WebhookHmacMode, enforcement: "strict" | "observe"): "strict" | "observe" {
  if (mode === "hmac" && enforcement !== "strict") throw new HttpError(400, "bad_request", "invalid webhook HMAC enforcement mode");
  return enforcement;
}

/**
 * Dagu's attribution rules: a service account gets its name (default: the key's) and no owner; a user-owned
 * key needs an existing, enabled owner.
 */
function attributed(s: Pick<SidecarState, "users">, declared: DeclaredUser | undefined, key: StoredApiKey): StoredApiKey {
  if (key.attributionClass === "service_account") {
    return { ...omit(key, "ownerUserId"), serviceAccountName: key.serviceAccountName?.trim() ? key.serviceAccountName : key.name };
  }
  const owner = key.ownerUserId === undefined ? undefined : key.ownerUserId === declared?.id ? { disabled: false } : Object.hasOwn(s.users, key.ownerUserId) ? s.users[key.ownerUserId] : undefined;
  if (!owner || owner.disabled) throw new HttpError(400, "bad_request", "Invalid API key attribution");
  return omit(key, "serviceAccountName");
}

/** A copy without the given keys. */
function omit<T extends object, K extends string>(value: T, ...keys: K[]): Omit<T, K> {
  return Object.fromEntries(Object.entries(value).filter(([k]) => !(keys as string[]).includes(k))) as Omit<T, K>;
}
