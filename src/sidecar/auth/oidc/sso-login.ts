// Dagu's SSO routes, answered by the sidecar: `GET /oidc-login` sends the browser to the provider
// (authorization code with PKCE S256, state and nonce, all in one sealed cookie); `GET /oidc-callback`
// checks the answer (state, then the code exchanged with the verifier; the ID token's issuer, audience,
// nonce, expiry and algorithm), reads userinfo, decides who the person is and which role they get, and
// hands a login token to Dagu's UI as Dagu does: `/login#token=<jwt>` (`?welcome=true` for a new user).
// Every failure ends at `/login?error=<message>`, which Dagu's login page shows; the return path is
// always ours, never a parameter (no open redirect). Under a base path (Dagu's `basePath`) every route
// and redirect is below it: the base path is the client URL's path, as a working Dagu config has it (Dagu
// registers `<client_url>/oidc-callback` and serves the route at `<basePath>/oidc-callback`, so the two
// meet only when client_url ends in the base path).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import * as client from "openid-client";
import type { CredentialUser } from "../../../api/credentials.ts";
import type { OidcSettings } from "../../../api/oidc.ts";
import { Jq } from "../../../common/jq.ts";
import { ID_TOKEN_ALGORITHMS } from "../../../common/oidc-client.ts";
import type { CredentialSnapshot, CredentialStore } from "../../credentials/credential-store.ts";
import { sendError } from "../../answers/http-io.ts";
import { issueToken } from "../jwt.ts";
import { checkEmail, checkSize, mergeUserinfo, refusal, type Claims, type Refusal } from "./claims.ts";
import { clearFlow, openFlow, sealFlow } from "./flow-cookie.ts";
import { ProviderCache } from "./provider-cache.ts";
import { mapRole, type MappingDiagnostics } from "./role-mapping.ts";
import { provision } from "./sso-users.ts";

export const SSO_LOGIN_PATH = "/oidc-login";
export const SSO_CALLBACK_PATH = "/oidc-callback";
const LOGIN_PAGE = "/login";
const SETUP_PAGE = "/setup";

/** The base path SSO lives under: the client URL's path without a trailing slash ("" at the root). */
export function ssoBasePath(clientUrl: string): string {
  return new URL(clientUrl).pathname.replace(/\/+$/, "");
}

/** Where the SSO routes are served and where they send the browser, for these settings. */
export function ssoUrls(clientUrl: string): { login: string; callback: string; callbackUrl: string; loginPage: string; setupPage: string } {
  const base = ssoBasePath(clientUrl);
  const root = clientUrl.replace(/\/+$/, "");
  return {
    login: `${base}${SSO_LOGIN_PATH}`,
    callback: `${base}${SSO_CALLBACK_PATH}`,
    // As Dagu v2.15.1: `<client_url>/oidc-callback`, what the provider must allow.
    callbackUrl: `${root}${SSO_CALLBACK_PATH}`,
    loginPage: `${base}${LOGIN_PAGE}`,
    setupPage: `${base}${SETUP_PAGE}`,
  };
}

/** What happened, for the audit line. */
export interface SsoOutcome {
  status: number;
  decision: "local" | "deny" | "not_found" | "error";
  reason: string;
  user?: string;
  role?: string;
}

export type SsoRoute = "login" | "callback";

/** The SSO route a request target names (exact path under the client URL's base path, any query), or undefined. */
export function ssoRouteOf(target: string, clientUrl: string | undefined): SsoRoute | undefined {
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.slice(0, q);
  if (!path.endsWith(SSO_LOGIN_PATH) && !path.endsWith(SSO_CALLBACK_PATH)) return undefined;
  // Without OIDC settings: at the root, answered 404 "not configured".
  const urls = clientUrl === undefined ? { login: SSO_LOGIN_PATH, callback: SSO_CALLBACK_PATH } : ssoUrls(clientUrl);
  return path === urls.login ? "login" : path === urls.callback ? "callback" : undefined;
}

export class SsoLogin {
  readonly #store: CredentialStore;
  readonly #log: Logger;
  readonly #providers: ProviderCache;
  readonly #jq = new Jq();

  constructor(store: CredentialStore, log: Logger) {
    this.#store = store;
    this.#log = log;
    this.#providers = new ProviderCache((error) => this.#log.warn({ error }, "OIDC provider not reachable; SSO logins fail until it answers"));
  }

  /** Called when credentials load: discovery starts before the first click. */
  credentialsChanged(snapshot: CredentialSnapshot): void {
    if (snapshot.credentials.oidc) this.#providers.warm(snapshot.credentials.oidc);
  }

  async close(): Promise<void> {
    await this.#jq.close();
  }

  async handle(route: SsoRoute, req: IncomingMessage, res: ServerResponse, snapshot: CredentialSnapshot): Promise<SsoOutcome> {
    const settings = snapshot.credentials.oidc;
    if (!settings) {
      sendError(res, 404, "not_found", "single sign-on is not configured");
      return { status: 404, decision: "not_found", reason: "sso_not_configured" };
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendError(res, 405, "bad_request", "only GET", { Allow: "GET" });
      return { status: 405, decision: "deny", reason: "method" };
    }
    // As Dagu v2.15.1: no SSO before the first admin exists (a standalone sidecar's setup page), so the
    // first account is never one the identity provider chose.
    if (snapshot.credentials.mode === "builtin" && this.#store.source.management?.()?.setupRequired()) {
      redirect(res, ssoUrls(settings.clientUrl).setupPage, clearFlow(settings.clientUrl));
      return { status: 302, decision: "deny", reason: "setup_required" };
    }
    return route === "login" ? this.#start(res, snapshot, settings) : this.#callback(req, res, snapshot, settings);
  }

  async #start(res: ServerResponse, snapshot: CredentialSnapshot, settings: OidcSettings): Promise<SsoOutcome> {
    const provider = await this.#providers.get(settings);
    if (!provider.ok) return fail(res, settings, refusal("provider_unavailable", "Single sign-on is unavailable: the identity provider cannot be reached. Sign in with your password, or try again later."));
    const flow = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier() };
    const cookie = sealFlow(snapshot, settings.clientUrl, flow);
    if (!cookie) return fail(res, settings, refusal("no_signing_key", "Single sign-on is unavailable"));
    const url = client.buildAuthorizationUrl(provider.config, {
      redirect_uri: callbackUrl(settings),
      scope: settings.scopes.join(" "),
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: "S256",
    });
    redirect(res, url.href, cookie);
    return { status: 302, decision: "local", reason: "sso_started" };
  }

  async #callback(req: IncomingMessage, res: ServerResponse, snapshot: CredentialSnapshot, settings: OidcSettings): Promise<SsoOutcome> {
    const query = (req.url ?? "").includes("?") ? (req.url ?? "").slice((req.url ?? "").indexOf("?") + 1) : "";
    const flow = openFlow(snapshot, settings.clientUrl, req.headers.cookie);
    if (!flow) return fail(res, settings, refusal("no_flow_cookie", "Authentication failed: the login session was not found or has expired (cookies must be allowed); please try again"));
    const params = new URLSearchParams(query);
    const providerError = params.get("error");
    if (providerError !== null) {
      const code = /^[a-z_]{1,64}$/.test(providerError) ? ` (${providerError})` : "";
      return fail(res, settings, refusal("provider_refused", `Authentication failed: the identity provider did not sign you in${code}`));
    }
    const provider = await this.#providers.get(settings);
    if (!provider.ok) return fail(res, settings, refusal("provider_unavailable", "Single sign-on is unavailable: the identity provider cannot be reached. Sign in with your password, or try again later."));

    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(provider.config, new URL(`${callbackUrl(settings)}${query ? `?${query}` : ""}`), {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      // The reason class only: messages of a failed exchange may carry what the provider echoed.
      const reason = grantFailure(error);
      this.#log.warn({ reason, error: (error as { code?: unknown }).code ?? (error as Error).name }, "SSO callback refused");
      return fail(res, settings, refusal(reason, "Authentication failed: the answer of the identity provider could not be verified; please try again"));
    }
    const idClaims = tokens.claims();
    if (!idClaims || !idTokenAlgorithmAllowed(tokens.id_token)) return fail(res, settings, refusal("id_token_refused", "Authentication failed: the answer of the identity provider could not be verified; please try again"));

    let userinfo: Claims | undefined;
    if (provider.config.serverMetadata().userinfo_endpoint && tokens.access_token) {
      try {
        userinfo = (await client.fetchUserInfo(provider.config, tokens.access_token, idClaims.sub)) as Claims;
      } catch (error) {
        // As Dagu: the ID token's claims alone then.
        this.#log.warn({ error: (error as { code?: unknown }).code ?? (error as Error).name }, "OIDC userinfo not read; using the ID token's claims");
      }
    }
    const claims = mergeUserinfo({ ...idClaims } as Claims, userinfo);
    const outcome = await this.#decide(claims, idClaims.iss, idClaims.sub, settings);
    if (!outcome.ok) return fail(res, settings, outcome);
    const current = this.#store.snapshot() ?? snapshot;
    const { token } = await issueToken(current, outcome.user);
    res.setHeader("Set-Cookie", clearFlow(settings.clientUrl));
    redirect(res, `${ssoUrls(settings.clientUrl).loginPage}${outcome.created ? "?welcome=true" : ""}#token=${encodeURIComponent(token)}`);
    this.#log.info({ user: outcome.user.username, role: outcome.user.role, created: outcome.created, via: outcome.via }, "SSO login");
    return { status: 302, decision: "local", reason: outcome.created ? "sso_user_created" : "sso_login", user: outcome.user.username, role: outcome.user.role };
  }

  /** Who the person is: a declared user with this email (role pinned), or their SSO record, created if allowed. */
  async #decide(claims: Claims, issuer: string, subject: string, settings: OidcSettings): Promise<{ ok: true; user: CredentialUser; created: boolean; via: string } | Refusal> {
    const size = checkSize(claims);
    if (size) return size;
    const email = checkEmail(claims, settings);
    if (!email.ok) return email;
    const snapshot = this.#store.snapshot();
    if (!snapshot) return refusal("no_credentials", "Single sign-on is unavailable");
    const declared = snapshot.credentials.users.find((u) => u.sso === true && !u.id.startsWith("sso:") && u.email?.toLowerCase() === email.email);
    if (declared) {
      if (declared.disabled) return refusal("disabled", "Authentication failed: your account is disabled");
      return { ok: true, user: declared, created: false, via: "declared" };
    }
    const diagnostics: MappingDiagnostics = {};
    const mapped = await mapRole(settings.roleMapping, claims, this.#jq, diagnostics);
    if (!mapped.ok) return mapped;
    if (diagnostics.expression && diagnostics.expression !== "no_output" && diagnostics.expression !== "not_a_role") {
      this.#log.warn({ result: diagnostics.expression }, "roleAttributePath gave no role; falling back to groupMappings and defaultRole");
    }
    const declaredUsers = snapshot.credentials.users.filter((u) => !u.id.startsWith("sso:"));
    let provisioned;
    try {
      provisioned = await this.#store.source.updateSsoUsers((records) =>
        provision(records, { issuer, subject, email: email.email, claims }, mapped.mapped, { autoSignup: settings.autoSignup, defaultRole: settings.roleMapping.defaultRole, skipOrgRoleSync: settings.roleMapping.skipOrgRoleSync }, declaredUsers, new Date().toISOString()),
      );
    } catch (error) {
      this.#log.error({ error: (error as Error).message }, "SSO user not recorded");
      return refusal("record_failed", "Authentication failed: your account could not be recorded; please try again");
    }
    if (provisioned.kind === "refuse") return refusal(provisioned.reason, provisioned.message);
    const user = this.#store.snapshot()?.usersById.get(provisioned.id);
    if (!user) return refusal("user_shadowed", "Authentication failed: your account is not available, contact your administrator");
    if (user.disabled) return refusal("disabled", "Authentication failed: your account is disabled");
    return { ok: true, user, created: provisioned.created, via: "sso" };
  }
}

const callbackUrl = (settings: OidcSettings) => ssoUrls(settings.clientUrl).callbackUrl;

function idTokenAlgorithmAllowed(idToken: string | undefined): boolean {
  if (!idToken) return false;
  try {
    const header = JSON.parse(Buffer.from(idToken.split(".")[0] ?? "", "base64url").toString("utf8")) as { alg?: unknown };
    return typeof header.alg === "string" && (ID_TOKEN_ALGORITHMS as readonly string[]).includes(header.alg);
  } catch {
    return false;
  }
}

/**
 * A coarse, loggable class of a failed callback, from openid-client's error codes and the wording of
 * oauth4webapi's message (the inner error: openid-client wraps it); never the message itself, whose
 * details may carry what the provider echoed.
 */
function grantFailure(error: unknown): string {
  const outer = error as { code?: unknown; error?: unknown; cause?: unknown };
  const inner = (outer.cause ?? {}) as { message?: unknown; code?: unknown; cause?: { claim?: unknown } };
  const text = typeof inner.message === "string" ? inner.message : error instanceof Error ? error.message : "";
  const claim = typeof inner.cause?.claim === "string" ? inner.cause.claim : "";
  if (outer.error === "invalid_grant") return "code_refused";
  if (/"state"/.test(text)) return "state_mismatch";
  if (claim === "nonce" || /"nonce"/.test(text)) return "nonce_mismatch";
  if (claim === "iss" || /"iss"/.test(text)) return "wrong_issuer";
  if (claim === "aud" || claim === "azp" || /"aud"|"azp"/.test(text)) return "wrong_audience";
  if (/"exp"|"iat"|"nbf"|timestamp/.test(text)) return "id_token_expired";
  if (/"alg"|JWS algorithm/.test(text)) return "id_token_algorithm";
  if (/verification key/.test(text)) return "id_token_unknown_key";
  if (/signature/.test(text)) return "id_token_signature";
  return typeof outer.code === "string" ? `grant_failed:${outer.code}` : "grant_failed";
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  const headers: Record<string, string | string[]> = {
    Location: location,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Length": "0",
  };
  const existing = res.getHeader("Set-Cookie");
  if (cookie) headers["Set-Cookie"] = cookie;
  else if (typeof existing === "string") headers["Set-Cookie"] = existing;
  res.writeHead(302, headers).end();
}

function fail(res: ServerResponse, settings: OidcSettings, why: Refusal): SsoOutcome {
  redirect(res, `${ssoUrls(settings.clientUrl).loginPage}?error=${encodeURIComponent(why.message)}`, clearFlow(settings.clientUrl));
  return { status: 302, decision: "deny", reason: why.reason };
}

