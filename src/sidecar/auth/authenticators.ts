// Who is calling. In Dagu's order: a Bearer JWT (builtin mode), a Bearer API key (`dagu_...`), then
// HTTP Basic (basic mode). `?token=` is read only where Dagu's UI sends it (SSE and WebSocket routes,
// which browsers cannot give an Authorization header), and only when no Authorization header is sent.
import { createHmac, createSecretKey, randomBytes } from "node:crypto";
import type { Role } from "../../api/common.ts";
import type { CredentialUser } from "../../api/credentials.ts";
import { MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH, VERIFY_BUSY_RETRY_SECONDS } from "../../common/password-hash.ts";
import { verifyApiKey, type ApiKeySurface } from "./api-key-auth.ts";
import { BasicVerifier, parseBasic, type BasicCredential } from "./basic-auth.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";
import { JwtVerifier } from "./jwt.ts";
import type { LoginThrottle } from "./login-throttle.ts";

export type AuthMethod = "jwt" | "apikey" | "basic";

export interface Principal {
  readonly kind: "user" | "apikey" | "basic";
  /** As Dagu names it: the user id, `apikey:<id>`, or the basic username. */
  readonly id: string;
  readonly username: string;
  readonly role: Role;
  readonly user?: CredentialUser;
}

export interface AuthFailure {
  readonly ok: false;
  readonly status: 401 | 429;
  /** Why, for the audit log (never secret). */
  readonly reason: string;
  readonly method?: AuthMethod;
  readonly retryAfterSeconds?: number;
}

export type AuthResult = { readonly ok: true; readonly principal: Principal; readonly method: AuthMethod } | AuthFailure;

export interface AuthRequest {
  /** The Authorization header (the request must carry at most one). */
  readonly authorization: string | undefined;
  /** The `token` query parameter, only when the route streams. */
  readonly queryToken: string | undefined;
  readonly clientAddress: string;
  /** The surface an API key must allow (Dagu 2.15.1's allowedSurfaces); default rest_api. */
  readonly surface?: ApiKeySurface;
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export class Authenticator {
  readonly jwt = new JwtVerifier();
  readonly basic = new BasicVerifier();
  readonly #throttle: LoginThrottle;
  /** Basic checks running now, by HMAC(per-process key, address + hash + credential): never keyed by the password itself. */
  readonly #basicInFlight = new Map<string, Promise<AuthFailure | undefined>>();
  readonly #inFlightKey = createSecretKey(randomBytes(32));

  constructor(throttle: LoginThrottle) {
    this.#throttle = throttle;
  }

  /** Basic checks running now (bounded by the connections: one request at a time per connection). */
  get basicInFlight(): number {
    return this.#basicInFlight.size;
  }

  /** Called when a new document is in force: cached verifications may no longer hold. */
  credentialsChanged(snapshot: CredentialSnapshot): void {
    this.jwt.clear();
    this.basic.retainHash(snapshot.credentials.basic?.passwordHash);
  }

  async authenticate(snapshot: CredentialSnapshot, request: AuthRequest, now = Date.now()): Promise<AuthResult> {
    const header = request.authorization ?? (request.queryToken !== undefined ? `Bearer ${request.queryToken}` : undefined);
    if (header === undefined || header.trim() === "") return { ok: false, status: 401, reason: "no_credential" };

    const bearer = BEARER.exec(header);
    if (bearer) return this.#bearer(snapshot, bearer[1]!, now, request.surface ?? "rest_api");

    const basic = parseBasic(header);
    if (basic === "malformed") return { ok: false, status: 401, reason: "malformed_basic", method: "basic" };
    if (basic) {
      const expected = snapshot.credentials.basic;
      if (snapshot.credentials.mode !== "basic" || !expected) return { ok: false, status: 401, reason: "basic_not_enabled", method: "basic" };
      // Never a throttle key (or a hash) for a credential no login could present: a 64 KiB header would
      // otherwise put a 48 KiB username into each of the throttle's keys.
      if (basic.username.length > MAX_USERNAME_LENGTH || basic.password.length > MAX_PASSWORD_LENGTH) return { ok: false, status: 401, reason: "basic_too_long", method: "basic" };
      if (!this.basic.cached(expected, basic, now)) {
        // A browser opening a page sends the same credential on many parallel requests: while one check of
        // it (from this address, against this hash) runs, the others wait for its answer instead of taking
        // throttle slots and hashes of their own.
        const key = createHmac("sha256", this.#inFlightKey)
          .update(`${request.clientAddress}\0${expected.username}\0${expected.passwordHash}\0${basic.username}\0${basic.password}`)
          .digest("base64url");
        let check = this.#basicInFlight.get(key);
        if (!check) {
          check = this.#verifyBasic(expected, basic, request.clientAddress, now).finally(() => this.#basicInFlight.delete(key));
          this.#basicInFlight.set(key, check);
        }
        const refused = await check;
        if (refused) return refused;
      }
      return { ok: true, method: "basic", principal: { kind: "basic", id: expected.username, username: expected.username, role: "admin" } };
    }
    return { ok: false, status: 401, reason: "unsupported_scheme" };
  }

  /** The slow Basic check, under the throttle; undefined when the credential is right. */
  async #verifyBasic(expected: { username: string; passwordHash: string }, basic: BasicCredential, clientAddress: string, now: number): Promise<AuthFailure | undefined> {
    const outcome = await this.#throttle.guard(basic.username, clientAddress, () => this.basic.verify(expected, basic, now), now);
    if (outcome.kind === "throttled") return { ok: false, status: 429, reason: `throttled_${outcome.reason}`, method: "basic", retryAfterSeconds: outcome.retryAfterSeconds };
    // 429 like the auth API's busy answer (admission maps an authentication 429 to Too Many Requests).
    if (outcome.kind === "busy") return { ok: false, status: 429, reason: "verifications_busy", method: "basic", retryAfterSeconds: VERIFY_BUSY_RETRY_SECONDS };
    return outcome.ok ? undefined : { ok: false, status: 401, reason: "bad_password", method: "basic" };
  }

  async #bearer(snapshot: CredentialSnapshot, token: string, now: number, surface: ApiKeySurface): Promise<AuthResult> {
    if (token.startsWith("dagu_")) {
      const result = verifyApiKey(snapshot, token, now, surface);
      if (!result.ok) return { ok: false, status: 401, reason: `api_key_${result.reason}`, method: "apikey" };
      const key = result.key;
      return { ok: true, method: "apikey", principal: { kind: "apikey", id: `apikey:${key.id}`, username: `apikey:${key.name}`, role: key.role } };
    }
    if (snapshot.credentials.mode !== "builtin") return { ok: false, status: 401, reason: "jwt_not_enabled", method: "jwt" };
    if (!JWT_SHAPE.test(token)) return { ok: false, status: 401, reason: "jwt_malformed", method: "jwt" };
    const result = await this.jwt.verify(snapshot, token, now);
    if (!result.ok) return { ok: false, status: 401, reason: `jwt_${result.reason}`, method: "jwt" };
    const user = result.user;
    return { ok: true, method: "jwt", principal: { kind: "user", id: user.id, username: user.username, role: user.role, user } };
  }
}
