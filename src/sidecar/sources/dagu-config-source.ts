// Dagu's own `auth:` configuration as a credential source, for a sidecar outside Kubernetes: the
// `auth:` block of a Dagu config file (`--config`) and the `DAGU_AUTH_*` variables (which win, as in
// Dagu). Basic mode: one user. Builtin mode: the optional initial admin, plus the users, API keys and
// webhooks created through Dagu's API and setup page (answers/management.ts), as Dagu's builtin mode has them.
// The `auth:` block itself is read by src/dagu/auth-config.ts.
// The configured password is hashed once at start (argon2id); with `--state-dir` a generated token
// secret, the configured password's hash and its time, self-service password changes and what was
// created through the API survive restarts.
import { EventEmitter } from "node:events";
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { cleanDaguBasePath } from "../../api/base-path.ts";
import { z } from "zod";
import { Credentials, type PasswordChange, type SsoUsers } from "../../api/credentials.ts";
import { oidcSettingsOf } from "../../api/oidc.ts";
import { Jq } from "../../common/jq.ts";
import { resolveDaguAuthConfig } from "../../dagu/auth-config.ts";
import { hashPassword, verifyPassword } from "../../common/password-hash.ts";
import { isShortTokenSecret, shortTokenSecretWarning, tokenSigningKey } from "../../common/token-secret.ts";
import { withSsoUsers } from "../../common/sso-overlay.ts";
import type { CredentialSource, CredentialSourceEvents, SsoUsersChange } from "../credentials/credential-source.ts";
import { applyPasswordChanges, changeTimestamp } from "../credentials/password-changes.ts";
import { memoryPasswordChangeLog, memorySsoUserLog, stateDirPasswordChangeLog, stateDirSsoUserLog, type PasswordChangeLog, type SsoUserLog } from "./password-change-log.ts";
import type { StateDir } from "./state-dir.ts";
import { WatchedFile } from "./watched-file.ts";
import { StandaloneManagement, type DeclaredUser } from "../answers/management.ts";
import { byCreation, credentialApiKey, credentialUser, credentialWebhook } from "./standalone-records.ts";

export const STANDALONE_AUTH = "standalone";
export const STANDALONE_ISSUER = "dagu-auth-sidecar";
export const STANDALONE_AUDIENCE = "dagu";
const DEFAULT_LOGIN = { maxAttempts: 5, windowSeconds: 900, lockoutSeconds: 900 } as const;

export interface DaguConfigSourceOptions {
  /** Path of a Dagu config file (or a file holding just the auth block); undefined: environment only. */
  configFile?: string;
  env: NodeJS.ProcessEnv;
  stateDir?: StateDir;
  trustedProxies: string[];
  /** Where a warning goes (the CLI: a log line); never given a secret. */
  warn?: (message: string) => void;
}

/** Checks role expressions at load (idle between loads: the worker does not hold the process). */
let roleExpressionJq: Jq | undefined;

/** A key id that reveals nothing about the key. */
const kidFor = (secret: string) => `standalone-${createHash("sha256").update(`kid\n${secret}`).digest("base64url").slice(0, 12)}`;

export class DaguConfigCredentialSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description: string;
  readonly #options: DaguConfigSourceOptions;
  readonly #changes: PasswordChangeLog;
  readonly #sso: SsoUserLog;
  #base: Credentials | undefined;
  #current: Credentials | undefined;
  #configText: string | undefined;
  readonly #configPasswords = new Map<string, PasswordChange>();
  #generatedTokenSecret: string | undefined;
  readonly #management: StandaloneManagement;
  /** The initial admin of the configuration (builtin mode), which the API cannot change. */
  #declared: DeclaredUser | undefined;
  /** The short secret last warned about: one warning per secret, not per reload of the file. */
  #warnedSecret: string | undefined;
  /** Why the file's last edit was refused, until a good one (or the last good text again) is read. */
  #broken: Error | undefined;
  #watched: WatchedFile | undefined;
  #loading: Promise<void> = Promise.resolve();

  constructor(options: DaguConfigSourceOptions) {
    super();
    this.#options = options;
    this.#changes = options.stateDir ? stateDirPasswordChangeLog(options.stateDir) : memoryPasswordChangeLog();
    this.#management = new StandaloneManagement({ state: options.stateDir, declared: () => this.#declared, changed: () => this.#publish() });
    this.#sso = options.stateDir ? stateDirSsoUserLog(options.stateDir) : memorySsoUserLog();
    this.description = options.configFile ? `dagu-config:${options.configFile}` : "dagu-config:env";
  }

  /** Loads the configuration (an error here stops the start: nothing is served) and then follows the file. */
  async start(): Promise<void> {
    const state = this.#options.stateDir;
    if (state) await state.load();
    await this.#load();
    if (this.#options.configFile) {
      this.#watched = new WatchedFile(this.#options.configFile, () => {
        // A bad edit keeps the last good configuration in force and turns readiness off.
        this.#loading = this.#loading.then(() => this.#load()).catch((error: unknown) => {
          this.#broken = error instanceof Error ? error : new Error(String(error));
          this.emit("invalid", this.#broken);
        });
      });
      this.#watched.start();
    }
  }

  async #load(): Promise<void> {
    let text: string | undefined;
    let document: unknown = {};
    if (this.#options.configFile) {
      text = await readFile(this.#options.configFile, "utf8").catch((error: unknown) => {
        throw new Error(`cannot read --config ${this.#options.configFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`, { cause: error });
      });
      if (this.#base && text === this.#configText) {
        // Back to the configuration in force after a bad edit: ready again.
        if (this.#broken) {
          this.#broken = undefined;
          this.#publish();
        }
        return;
      }
      try {
        document = parseYaml(text);
      } catch (error) {
        // The parser's message quotes the offending line, which may hold a password: only code and line,
        // and no cause (a logged cause would carry that message).
        const e = error as { code?: string; linePos?: { line: number }[] };
        // eslint-disable-next-line preserve-caught-error
        throw new Error(`--config ${this.#options.configFile} is not valid YAML (${e.code ?? "parse error"}${e.linePos?.[0] ? ` at line ${e.linePos[0].line}` : ""})`);
      }
    }
    const config = resolveDaguAuthConfig(document, this.#options.env);
    const expression = config.oidc?.spec.roleMapping.roleAttributePath;
    if (expression) {
      roleExpressionJq ??= new Jq();
      const error = await roleExpressionJq.compileError(expression);
      if (error) throw new Error(`auth.oidc.role_mapping.role_attribute_path does not compile: ${error}`);
    }

    const declared = config.username !== undefined && config.password !== undefined ? { id: `${STANDALONE_AUTH}:${config.username}`, username: config.username, password: config.password } : undefined;
    const password = declared ? await this.#configPassword(declared.id, declared.password) : undefined;
    const base = {
      version: 1,
      authName: STANDALONE_AUTH,
      authUid: STANDALONE_AUTH,
      generation: 0,
      mode: config.mode,
      apiKeys: [],
      webhooks: [],
      login: DEFAULT_LOGIN,
      trustedProxies: this.#options.trustedProxies,
    } as const;
    let credentials: unknown;
    if (config.mode === "basic") {
      credentials = { ...base, users: [], basic: { username: declared!.username, passwordHash: password!.passwordHash } };
    } else {
      const secret = config.tokenSecret !== undefined ? tokenSigningKey(config.tokenSecret).toString("base64url") : await this.#generatedSecret();
      if (config.tokenSecret !== undefined && isShortTokenSecret(config.tokenSecret) && this.#warnedSecret !== config.tokenSecret) {
        this.#warnedSecret = config.tokenSecret;
        this.#options.warn?.(shortTokenSecretWarning(config.tokenSecretFrom ?? "the token secret"));
      }
      const kid = kidFor(secret);
      credentials = {
        ...base,
        token: { issuer: STANDALONE_ISSUER, audience: STANDALONE_AUDIENCE, ttlSeconds: config.ttlSeconds, activeKid: kid, keys: [{ kid, secret }] },
        ...(config.oidc ? { oidc: oidcSettingsOf(config.oidc.spec, config.oidc.clientSecret) } : {}),
        users: declared
          ? [{ id: declared.id, username: declared.username, role: "admin", passwordHash: password!.passwordHash, passwordChangedAt: password!.changedAt, disabled: false, allowPasswordChange: true }]
          : [],
      };
    }
    const parsed = Credentials.safeParse(credentials);
    if (!parsed.success) throw new Error(`the auth: configuration gives invalid credentials: ${z.prettifyError(parsed.error)}`);
    if (config.mode === "builtin" && !declared && !this.#options.stateDir) {
      this.#options.warn?.("builtin mode without an initial admin and without --state-dir: nobody can log in (the first admin created by Dagu's setup page is kept in --state-dir)");
    }
    this.#base = parsed.data;
    this.#declared = config.mode === "builtin" && declared ? { id: declared.id, username: declared.username } : undefined;
    this.#configText = text;
    this.#broken = undefined;
    this.#publish();
  }

  /** Users, API keys and webhooks through Dagu's API and setup page: builtin mode only, as in Dagu. */
  management(): StandaloneManagement | undefined {
    return this.#base?.mode === "builtin" ? this.#management : undefined;
  }

  async stop(): Promise<void> {
    this.#watched?.stop();
    await this.#loading.catch(() => undefined);
  }

  current(): Credentials | undefined {
    return this.#current;
  }

  async recordPasswordChange(userId: string, passwordHash: string, changedAt: string): Promise<void> {
    // A user created through the API keeps its password with it; the configured admin's goes to the change log.
    if (await this.#management.changeOwnPassword(userId, passwordHash, changedAt)) return;
    await this.#changes.record(userId, passwordHash, changedAt);
    this.#publish();
  }

  ssoUsers(): SsoUsers {
    return this.#sso.all();
  }

  async updateSsoUsers<T>(change: SsoUsersChange<T>): Promise<T> {
    const result = await this.#sso.update(change);
    this.#publish();
    return result;
  }

  #publish(): void {
    if (!this.#base) return;
    let document = this.#base;
    if (document.mode === "builtin") {
      // The configured admin first; a kept user of the same name gives way to it (as a DaguUser to an initial admin).
      const kept = this.#management.records();
      const taken = new Set(document.users.map((u) => u.username));
      document = {
        ...document,
        users: [...document.users, ...byCreation(kept.users).filter((u) => !taken.has(u.username)).map(credentialUser)],
        apiKeys: byCreation(kept.apiKeys).map(credentialApiKey),
        webhooks: byCreation(kept.webhooks).map(credentialWebhook),
      };
    }
    // Users single sign-on created come last: a user with a password of the same name wins (withSsoUsers).
    this.#current = withSsoUsers(applyPasswordChanges(document, this.#changes.all()), this.#sso.all());
    this.emit("change", this.#current);
    // A password change while the file is broken is in force at once, and readiness stays off.
    if (this.#broken) this.emit("invalid", this.#broken);
  }

  /**
   * The configured password's hash and "changed at". With a state dir, an unchanged password keeps its
   * hash and time (one verify instead of a hash, and logged-in users stay logged in); a new one gets a new
   * time, so tokens issued under the old one die. Without, the time is this start.
   */
  async #configPassword(userId: string, password: string): Promise<PasswordChange> {
    const state = this.#options.stateDir;
    // Without a state dir, the last load remembers it: an edit of the file that keeps the password keeps tokens valid.
    const known = state?.current().configPasswords[userId] ?? this.#configPasswords.get(userId);
    if (known && (await verifyPassword(known.passwordHash, password))) return known;
    const entry = { passwordHash: await hashPassword(password), changedAt: changeTimestamp(known?.changedAt) };
    this.#configPasswords.set(userId, entry);
    if (state) await state.update((s) => ({ ...s, configPasswords: { ...s.configPasswords, [userId]: entry } }));
    return entry;
  }

  async #generatedSecret(): Promise<string> {
    const state = this.#options.stateDir;
    const kept = state?.current().tokenSecret ?? this.#generatedTokenSecret;
    if (kept) return kept;
    const secret = randomBytes(32).toString("base64url");
    this.#generatedTokenSecret = secret;
    if (state) await state.update((s) => ({ ...s, tokenSecret: secret }));
    return secret;
  }
}

/**
 * Dagu's base path as Dagu reads it from its config (`base_path`; Dagu 1's `basePath`; keys in any case,
 * as its loader takes them) with DAGU_BASE_PATH over it, cleaned as Dagu cleans it (a missing leading
 * slash added, trailing slashes dropped, `/` is the root). Undefined when neither sets one. Not validated
 * here: the caller refuses what the sidecar cannot guard (routes/dagu-api.ts basePathProblem).
 */
export async function daguConfigBasePath(configFile: string | undefined, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  let raw: unknown = env.DAGU_BASE_PATH || undefined;
  if (raw === undefined && configFile) {
    const text = await readFile(configFile, "utf8").catch((error: unknown) => {
      throw new Error(`cannot read --config ${configFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`, { cause: error });
    });
    let document: unknown;
    try {
      document = parseYaml(text);
    } catch {
      throw new Error(`--config ${configFile} is not valid YAML`);
    }
    if (document && typeof document === "object") {
      const entry = Object.entries(document).find(([key]) => ["base_path", "basepath"].includes(key.toLowerCase()));
      raw = entry?.[1];
    }
  }
  if (raw === undefined || raw === null || raw === "") return undefined;
  if (typeof raw !== "string") throw new Error(`Dagu's base_path in --config ${configFile} must be a string`);
  return cleanDaguBasePath(raw);
}
