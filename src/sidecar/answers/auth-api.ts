// Dagu's auth API, answered by the sidecar from the credentials: login, me, change-password, setup, and
// user, API key and webhook listings in Dagu's response shapes (never a hash, digest or secret). Writes to
// users, API keys and webhooks (`managed` routes of the table): a standalone sidecar with management
// (Dagu's own auth: configuration and --state-dir) makes them (management-api.ts); otherwise they are
// refused with 403 and the resource to apply instead (Git is the truth, the sidecar never edits it).
// Login, change-password and setup are throttled before any hashing.
import type { ServerResponse } from "node:http";
import { z } from "zod";
import type { CredentialApiKey, CredentialUser } from "../../api/credentials.ts";
import { hashPassword, MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH, MIN_PASSWORD_LENGTH, VERIFY_BUSY_RETRY_SECONDS, verifyDummy, verifyPassword } from "../../common/password-hash.ts";
import type { CredentialSnapshot, CredentialStore } from "../credentials/credential-store.ts";
import type { DaguApiProfile } from "../routes/dagu-api.ts";
import { apiKeyJson, userJson, webhookJson } from "./dagu-json.ts";
import { HttpError, parseJsonBody, readBody, sendError, sendJson, type UnauthenticatedRead } from "./http-io.ts";
import { issueToken } from "../auth/jwt.ts";
import type { LoginThrottle } from "../auth/login-throttle.ts";
import type { Principal } from "../auth/authenticators.ts";
import type { LocalCall, LocalOutcome } from "./local-call.ts";
import { handleManagementWrite, MANAGEMENT_WRITES } from "./management-api.ts";
import type { DaguRoute } from "../../dagu/routes.ts";
import { changeTimestamp } from "../credentials/password-changes.ts";
import { SIDECAR_LICENSE } from "../ui/config-rewrite.ts";

/** Login and change-password bodies are tiny; anything bigger is not a login. */
const AUTH_BODY_LIMIT = 16 * 1024;

const LoginBody = z.object({ username: z.string().min(1).max(MAX_USERNAME_LENGTH), password: z.string().min(1).max(MAX_PASSWORD_LENGTH) });
// Missing fields are empty strings, as Go decodes them for Dagu: `{}` is a wrong current password (401), not a bad body.
const ChangePasswordBody = z.object({ currentPassword: z.string().max(MAX_PASSWORD_LENGTH).default(""), newPassword: z.string().max(MAX_PASSWORD_LENGTH).default("") });
const SetupBody = z.object({ username: z.string().min(1).max(MAX_USERNAME_LENGTH), password: z.string().max(MAX_PASSWORD_LENGTH) });

export interface AuthApiDeps {
  readonly store: CredentialStore;
  readonly throttle: LoginThrottle;
  readonly profile: () => DaguApiProfile;
  /** Whether Dagu has this DAG (a webhook is created for an existing DAG only); undefined: cannot tell. */
  readonly dagExists?: (fileName: string) => Promise<boolean | undefined>;
  /** The login (and setup) body is read before anyone is authenticated: within this budget and time. */
  readonly unauthenticated: UnauthenticatedRead;
}

/** Whether a route's handler is here: an `auth-api` route's operation, or a `managed` route's write. */
export function answersLocally(route: Pick<DaguRoute, "operationId" | "handler">): boolean {
  return route.handler === "managed" ? MANAGEMENT_WRITES.has(route.operationId) : HANDLED.has(route.operationId);
}

export class AuthApi {
  readonly #deps: AuthApiDeps;

  constructor(deps: AuthApiDeps) {
    this.#deps = deps;
  }

  answers(route: Pick<DaguRoute, "operationId" | "handler">): boolean {
    return answersLocally(route);
  }

  async handle(call: LocalCall): Promise<LocalOutcome> {
    const managed = call.managedBy;
    const management = this.#management(call.snapshot);
    if (managed && management) {
      return handleManagementWrite(call, {
        management,
        profile: this.#deps.profile(),
        dagExists: this.#deps.dagExists ?? (async () => undefined),
        snapshot: () => this.#deps.store.snapshot() ?? call.snapshot,
      });
    }
    if (managed) {
      const what = managed === "DaguUser" ? "Users" : managed === "DaguApiKey" ? "API keys" : "Webhooks";
      sendError(call.res, 403, "forbidden", `${what} are managed by dagu-auth, not in Dagu: apply a ${managed} resource instead`);
      return { detail: `managed_by_${managed}` };
    }
    switch (call.operationId) {
      case "login":
        return this.#login(call);
      case "getCurrentUser":
        sendJson(call.res, 200, { user: this.#principalJson(call.snapshot, call.principal!) });
        return {};
      case "changePassword":
        return this.#changePassword(call);
      case "setup":
        return this.#setup(call);
      case "getLicenseStatus":
        // What the sidecar gives every cluster, not Dagu's community answer (docs/adr/0017).
        sendJson(call.res, 200, SIDECAR_LICENSE);
        return {};
      case "listUsers":
        sendJson(call.res, 200, { users: call.snapshot.credentials.users.map((u) => userJson(this.#deps.profile(), u)) });
        return {};
      case "getUser":
        return this.#one(call, call.snapshot.usersById.get(call.params.userId ?? ""), (u) => ({ user: userJson(this.#deps.profile(), u) }), "user not found");
      case "listAPIKeys":
        sendJson(call.res, 200, { apiKeys: distinctKeys(call.snapshot.credentials.apiKeys).map((k) => apiKeyJson(this.#deps.profile(), k, call.snapshot)) });
        return {};
      case "getAPIKey": {
        const key = distinctKeys(call.snapshot.credentials.apiKeys).find((k) => k.id === call.params.keyId);
        return this.#one(call, key, (k) => ({ apiKey: apiKeyJson(this.#deps.profile(), k, call.snapshot) }), "API key not found");
      }
      case "listWebhooks":
        sendJson(call.res, 200, { webhooks: call.snapshot.credentials.webhooks.map((w) => webhookJson(this.#deps.profile(), w, call.snapshot)) });
        return {};
      case "getDAGWebhook": {
        const name = call.params.fileName ?? "";
        return this.#one(call, call.snapshot.webhooksByDag.get(name), (w) => webhookJson(this.#deps.profile(), w, call.snapshot), `no webhook configured for DAG ${name}`);
      }
      default:
        throw new Error(`auth API has no handler for ${call.operationId}`);
    }
  }

  #one<T>(call: LocalCall, item: T | undefined, render: (item: T) => unknown, notFound: string): LocalOutcome {
    if (item === undefined) sendError(call.res, 404, "not_found", notFound);
    else sendJson(call.res, 200, render(item));
    return {};
  }

  async #login(call: LocalCall): Promise<LocalOutcome> {
    const { snapshot, res } = call;
    if (snapshot.credentials.mode !== "builtin") {
      sendError(res, 401, "unauthorized", "Authentication is not enabled");
      return { detail: "not_builtin" };
    }
    const body = LoginBody.safeParse(parseJsonBody(await readBody(call.req, AUTH_BODY_LIMIT, { ...this.#deps.unauthenticated, client: call.clientAddress })));
    if (!body.success) {
      sendError(res, 401, "unauthorized", "Invalid request body");
      return { detail: "bad_body" };
    }
    const { username, password } = body.data;
    const user = snapshot.usersByName.get(username);
    let passwordOk = false;
    let current = snapshot;
    let fresh: CredentialUser | undefined;
    // Unknown and disabled users pay the same hash as real ones: no enumeration by timing.
    const outcome = await this.#deps.throttle.guard(username, call.clientAddress, async () => {
      passwordOk = user ? await verifyPassword(user.passwordHash, password) : await verifyDummy(password);
      // The document may have changed while hashing: decide on the one in force now.
      current = this.#deps.store.snapshot() ?? snapshot;
      fresh = user ? current.usersById.get(user.id) : undefined;
      return passwordOk && fresh !== undefined && !fresh.disabled && fresh.passwordHash === user?.passwordHash;
    });
    if (outcome.kind === "throttled") {
      sendError(res, 429, "too_many_requests", "Too many failed login attempts; try again later", { "Retry-After": String(outcome.retryAfterSeconds) });
      return { subject: username, detail: `throttled_${outcome.reason}` };
    }
    if (outcome.kind === "busy") return busy(res, username);
    if (!outcome.ok || !fresh) {
      sendError(res, 401, "unauthorized", "Invalid username or password");
      return { subject: username, detail: passwordOk ? "user_unavailable" : "bad_password" };
    }
    const { token, expiresAt } = await issueToken(current, fresh);
    sendJson(res, 200, { token, expiresAt: expiresAt.toISOString(), user: userJson(this.#deps.profile(), fresh) });
    return { subject: fresh.username, detail: outcome.delayedMs > 0 ? "slowed" : undefined };
  }

  async #changePassword(call: LocalCall): Promise<LocalOutcome> {
    const { res, principal } = call;
    const user = principal?.user;
    if (principal?.kind !== "user" || !user) {
      sendError(res, 403, "forbidden", "Only users who log in can change a password; API keys and the basic user cannot");
      return { detail: "not_a_user" };
    }
    const body = ChangePasswordBody.safeParse(parseJsonBody(await readBody(call.req, AUTH_BODY_LIMIT)));
    if (!body.success) {
      sendError(res, 400, "bad_request", "Invalid request body");
      return { subject: user.username, detail: "bad_body" };
    }
    // Dagu checks the current password before the new one; an empty one never matches (no hashing needed).
    if (body.data.currentPassword === "") {
      sendError(res, 401, "unauthorized", "Current password is incorrect");
      return { subject: user.username, detail: "bad_password" };
    }
    if (body.data.newPassword.length < MIN_PASSWORD_LENGTH) {
      sendError(res, 400, "bad_request", "New password does not meet security requirements");
      return { subject: user.username, detail: "weak_password" };
    }
    if (user.passwordHash === undefined) {
      sendError(res, 403, "forbidden", "This user signs in through single sign-on and has no password here");
      return { subject: user.username, detail: "sso_user" };
    }
    if (!user.allowPasswordChange) {
      sendError(res, 403, "forbidden", "Password changes are disabled for this user: change the password Secret of its DaguUser");
      return { subject: user.username, detail: "change_forbidden" };
    }
    const outcome = await this.#deps.throttle.guard(user.username, call.clientAddress, () => verifyPassword(user.passwordHash, body.data.currentPassword));
    if (outcome.kind === "throttled") {
      sendError(res, 429, "too_many_requests", "Too many failed attempts; try again later", { "Retry-After": String(outcome.retryAfterSeconds) });
      return { subject: user.username, detail: `throttled_${outcome.reason}` };
    }
    if (outcome.kind === "busy") return busy(res, user.username);
    if (!outcome.ok) {
      sendError(res, 401, "unauthorized", "Current password is incorrect");
      return { subject: user.username, detail: "bad_password" };
    }
    const hash = await hashPassword(body.data.newPassword);
    const current = this.#deps.store.snapshot()?.usersById.get(user.id);
    const changedAt = changeTimestamp(current?.passwordChangedAt ?? user.passwordChangedAt);
    try {
      await this.#deps.store.source.recordPasswordChange(user.id, hash, changedAt);
    } catch (error) {
      throw new HttpError(500, "internal_error", `could not record the password change: ${(error as Error).message}`);
    }
    sendJson(res, 200, { message: "Password changed successfully" });
    return { subject: user.username, detail: "changed" };
  }

  #principalJson(snapshot: CredentialSnapshot, principal: Principal): unknown {
    if (principal.user) return userJson(this.#deps.profile(), principal.user);
    const at = new Date(snapshot.loadedAt).toISOString();
    return { id: principal.id, username: principal.username, role: this.#deps.profile().uiRole(principal.role), createdAt: at, updatedAt: at };
  }

  /** The standalone sidecar's management of users, API keys and webhooks (builtin mode only). */
  #management(snapshot: CredentialSnapshot) {
    return snapshot.credentials.mode === "builtin" ? this.#deps.store.source.management?.() : undefined;
  }

  /**
   * Dagu's first-run setup: with management, the first admin while no user exists (then logged in at once);
   * afterwards, or without management, a 403 that says why.
   */
  async #setup(call: LocalCall): Promise<LocalOutcome> {
    const { res, snapshot } = call;
    const management = this.#management(snapshot);
    if (snapshot.credentials.mode !== "builtin") {
      sendError(res, 403, "forbidden", "Authentication is not enabled");
      return { detail: "not_builtin" };
    }
    if (!management) {
      const message = snapshot.credentials.users.length > 0 ? "Setup has already been completed" : "Setup is not available here: declare an admin (a DaguUser with role admin, or spec.builtin.initialAdmin)";
      sendError(res, 403, "forbidden", message);
      return { detail: "setup_not_available" };
    }
    if (!management.setupRequired()) {
      sendError(res, 403, "forbidden", "Setup has already been completed");
      return { detail: "setup_done" };
    }
    if (management.unavailable) {
      sendError(res, 403, "forbidden", `Setup needs --state-dir: ${management.unavailable}`);
      return { detail: "no_state_dir" };
    }
    const body = SetupBody.safeParse(parseJsonBody(await readBody(call.req, AUTH_BODY_LIMIT, { ...this.#deps.unauthenticated, client: call.clientAddress })));
    if (!body.success) {
      sendError(res, 400, "bad_request", "Invalid request body");
      return { detail: "bad_body" };
    }
    let created: { id: string };
    try {
      created = await management.setup(body.data.username, body.data.password);
    } catch (error) {
      if (!(error instanceof HttpError) || error.status >= 500) throw error;
      sendError(res, error.status, error.code, error.message, error.status === 429 ? { "Retry-After": String(VERIFY_BUSY_RETRY_SECONDS) } : {});
      return { subject: body.data.username, detail: `setup_${error.code}` };
    }
    const current = this.#deps.store.snapshot() ?? snapshot;
    const user = current.usersById.get(created.id);
    if (!user) throw new HttpError(500, "internal_error", "the admin created by setup is not in force");
    const { token, expiresAt } = await issueToken(current, user);
    sendJson(res, 200, { token, expiresAt: expiresAt.toISOString(), user: userJson(this.#deps.profile(), user) });
    return { subject: user.username, detail: "setup_admin_created" };
  }
}

const HANDLED = new Set([
  "login",
  "getCurrentUser",
  "changePassword",
  "setup",
  "listUsers",
  "getUser",
  "listAPIKeys",
  "getAPIKey",
  "listWebhooks",
  "getDAGWebhook",
  "getLicenseStatus",
]);

/** Too many password checks already wait in this process: refused at once, nothing hashed or counted. */
function busy(res: ServerResponse, subject: string): LocalOutcome {
  // 429, not 503: the sidecar is healthy and only asks this caller to come back shortly (as Basic auth does, via admission).
  sendError(res, 429, "too_many_requests", "Too many password checks in progress; try again shortly", { "Retry-After": String(VERIFY_BUSY_RETRY_SECONDS) });
  return { subject, detail: "verifications_busy" };
}

/** During a rotation overlap two entries share an id: list the key once (its newest entry). */
function distinctKeys(keys: readonly CredentialApiKey[]): CredentialApiKey[] {
  const byId = new Map<string, CredentialApiKey>();
  for (const key of keys) {
    const seen = byId.get(key.id);
    if (!seen || Date.parse(key.createdAt) > Date.parse(seen.createdAt)) byId.set(key.id, key);
  }
  return [...byId.values()];
}
