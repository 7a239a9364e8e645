// The decision for one request, before anything is answered or forwarded (the same for plain requests
// and WebSocket upgrades), in this order:
//   1. the request target must be a path; a malformed path is 400 wherever it points;
//   2. fail closed: no credentials ever loaded, or Dagu's API not known yet -> 503;
//   3. under a base path (--dagu-base-path), anything outside it -> 404;
//   4. outside the API prefix: the UI (GET only, no credential); a path with an `api` segment anywhere
//      (Dagu 1's unauthenticated legacy /api/v1, Dagu's API under a basePath: /<base>/api/...) and Dagu's
//      other non-UI routes (Dagu 2's /mcp) -> 404;
//   5. the route table: a path that matches no entry is refused (404), never passed through;
//   6. authentication (401; 429 when throttled), then the route's least role (403).
// Dagu 2's MCP endpoint (exactly the profile's mcpPath) is authenticated for the MCP surface; the role of
// what a request does there is known only from its body (server.ts, routes/mcp.ts).
// Pure: `admit` decides from the request and the state it is given, and hands a route that needs a
// credential back as `authenticate`; the server authenticates and `authorize` decides the rest. Each
// returns the audit facts it established with its verdict.
import type { IncomingMessage } from "node:http";
import type { AuthMethod, AuthResult, Principal } from "../auth/authenticators.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";
import type { DaguApiProfile } from "./dagu-api.ts";
import { clientAddress, forwardedForValues, headerCount, type TrustedProxies } from "../proxy/headers.ts";
import type { DaguErrorCode } from "../answers/http-io.ts";
import type { Decision } from "../telemetry/metrics.ts";
import { isReservedPath, loggablePath } from "./paths.ts";
import { roleAtLeast } from "./roles.ts";
import { isReadOnly, isUnauthenticated, type DaguRoute } from "../../dagu/routes.ts";

/** What the audit line says about the request, filled in as the decision is made. */
export interface Facts {
  decision: Decision;
  status: number;
  path: string;
  operation?: string;
  user?: string;
  role?: string;
  authMethod?: AuthMethod;
  reason?: string;
}

/** The audit facts admission establishes (the decision and status follow from the verdict). */
export type AdmissionFacts = Partial<Pick<Facts, "operation" | "user" | "role" | "authMethod" | "reason">> & { path: string };

/** What admission reads of a request. */
export type AdmissionRequest = Pick<IncomingMessage, "url" | "method" | "rawHeaders" | "headers"> & { readonly socket: { readonly remoteAddress?: string | undefined } };

/** A route that needs a credential: the server authenticates, then `authorize` decides. */
export interface PendingRoute {
  readonly kind: "authenticate";
  readonly snapshot: CredentialSnapshot;
  readonly profile: DaguApiProfile;
  readonly route: DaguRoute;
  readonly params: Readonly<Record<string, string>>;
  readonly path: string;
  readonly query: string | undefined;
}

export type Verdict =
  | PendingRoute
  | {
      readonly kind: "refuse";
      readonly status: number;
      readonly decision: Decision;
      readonly code: DaguErrorCode;
      readonly message: string;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | { readonly kind: "ui"; readonly snapshot: CredentialSnapshot; readonly path: string; readonly query: string | undefined }
  | { readonly kind: "mcp"; readonly snapshot: CredentialSnapshot; readonly principal: Principal; readonly path: string; readonly query: string | undefined }
  | (Omit<PendingRoute, "kind"> & {
      readonly kind: "route";
      /** Undefined for routes that need no credential. */
      readonly principal: Principal | undefined;
    });

export interface AdmissionState {
  readonly snapshot: CredentialSnapshot | undefined;
  readonly profile: DaguApiProfile | undefined;
  trustedProxies(snapshot: CredentialSnapshot): TrustedProxies;
}

export interface Admission<V extends Verdict = Verdict> {
  readonly verdict: V;
  /** The client's address (X-Forwarded-For believed only from trusted proxies). */
  readonly client: string;
  readonly facts: AdmissionFacts;
}

const refuse = (status: number, decision: Decision, code: DaguErrorCode, message: string, headers?: Record<string, string>): Verdict => ({
  kind: "refuse",
  status,
  decision,
  code,
  message,
  headers,
});

export function splitTarget(target: string): { path: string; query: string | undefined } {
  const q = target.indexOf("?");
  return q < 0 ? { path: target, query: undefined } : { path: target.slice(0, q), query: target.slice(q + 1) };
}

export function admit(req: AdmissionRequest, state: AdmissionState): Admission {
  const peer = req.socket.remoteAddress ?? "";
  const target = req.url ?? "";
  if (!target.startsWith("/")) return { client: peer, facts: { path: "" }, verdict: refuse(400, "bad_request", "bad_request", "the request target must be a path") };
  const { path, query } = splitTarget(target);
  const facts: AdmissionFacts = { path: loggablePath(path) };

  const { snapshot, profile } = state;
  if (!snapshot || !profile) {
    facts.reason = snapshot ? "api_not_detected" : "no_credentials";
    const message = snapshot ? "Dagu's API is not detected yet" : "no credentials loaded";
    return { client: peer, facts, verdict: refuse(503, "unavailable", "service_unavailable", message, { "Retry-After": "5" }) };
  }
  const client = clientAddress(peer, forwardedForValues(req.rawHeaders), state.trustedProxies(snapshot));
  if (headerCount(req.rawHeaders, "authorization") > 1) return { client, facts, verdict: refuse(400, "bad_request", "bad_request", "send one Authorization header") };

  const match = profile.matcher(req.method ?? "", path);
  if ("error" in match && match.error === "bad_path") return { client, facts, verdict: refuse(400, "bad_request", "bad_request", "malformed request path") };
  // Under a base path (--dagu-base-path) Dagu serves nothing outside it: nor does the sidecar forward anything there.
  if (profile.basePath !== "" && path !== profile.basePath && !path.startsWith(`${profile.basePath}/`)) {
    facts.reason = "outside_base_path";
    return { client, facts, verdict: refuse(404, "not_found", "not_found", "no such route") };
  }
  if (profile.mcpPath !== undefined && path === profile.mcpPath) {
    facts.operation = MCP_ROUTE.operationId;
    return { client, facts, verdict: { kind: "authenticate", snapshot, profile, route: MCP_ROUTE, params: {}, path, query } };
  }
  if (path !== profile.prefix && !path.startsWith(`${profile.prefix}/`)) {
    if (isReservedPath(path, profile.reservedSegments)) return { client, facts, verdict: refuse(404, "not_found", "not_found", "no such route") };
    if (req.method !== "GET") return { client, facts, verdict: refuse(405, "not_found", "bad_request", "only GET is served outside the API", { Allow: "GET" }) };
    facts.reason = "ui";
    return { client, facts, verdict: { kind: "ui", snapshot, path, query } };
  }
  if ("error" in match) return { client, facts, verdict: refuse(404, "not_found", "not_found", "no such API route") };

  const route = match.route;
  facts.path = profile.prefix + route.path;
  facts.operation = route.operationId;
  const found = { snapshot, profile, route, params: match.params, path, query };
  if (isUnauthenticated(route)) return { client, facts, verdict: { kind: "route", ...found, principal: undefined } };
  return { client, facts, verdict: { kind: "authenticate", ...found } };
}

/** The rest of the decision for a route that needs a credential, once the server has authenticated. */
export function authorize(req: AdmissionRequest, pending: Admission<PendingRoute>, auth: AuthResult): Admission {
  const { client, verdict } = pending;
  const { route, snapshot } = verdict;
  const facts: AdmissionFacts = { ...pending.facts, authMethod: auth.method };
  if (!auth.ok) {
    facts.reason = auth.reason;
    if (auth.status === 429) {
      return { client, facts, verdict: refuse(429, "throttled", "too_many_requests", "Too many failed attempts; try again later", { "Retry-After": String(auth.retryAfterSeconds ?? 60) }) };
    }
    const challenge = snapshot.credentials.mode === "basic" ? 'Basic realm="dagu", charset="UTF-8"' : 'Bearer realm="dagu"';
    return { client, facts, verdict: refuse(401, "unauthenticated", "unauthorized", "Authentication required", { "WWW-Authenticate": challenge }) };
  }
  const principal = auth.principal;
  facts.user = principal.username;
  facts.role = principal.role;
  if (auth.method === "basic" && isCrossSiteWrite(req, route)) {
    // Browsers attach remembered Basic credentials to cross-site requests too (CSRF); JWTs and API
    // keys are sent by code only, so only Basic needs this.
    facts.reason = "cross_site_basic";
    return { client, facts, verdict: refuse(403, "deny", "forbidden", "cross-site request refused: Basic credentials are accepted from this origin only") };
  }
  if (route === MCP_ROUTE) return { client, facts, verdict: { kind: "mcp", snapshot, principal, path: verdict.path, query: verdict.query } };
  if (!roleAtLeast(principal.role, route.minRole)) {
    facts.reason = `needs_${route.minRole}`;
    return { client, facts, verdict: refuse(403, "deny", "forbidden", "Insufficient permissions") };
  }
  const { profile, params, path, query } = verdict;
  return { client, facts, verdict: { kind: "route", snapshot, profile, route, params, path, query, principal } };
}

/**
 * A request that a browser says comes from another site, to a route that is not read-only
 * (isReadOnly(): a GET can change state too, e.g. the dequeue; the terminal WebSocket is a shell).
 */
export function isCrossSiteWrite(req: AdmissionRequest, route: DaguRoute): boolean {
  if (isReadOnly(route)) return false;
  const fetchSite = req.headers["sec-fetch-site"];
  if (fetchSite === "cross-site" || fetchSite === "same-site") return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return true; // "null" (sandboxed frames, file:) and garbage
  }
  return originHost !== req.headers.host;
}

/** Dagu 2's MCP endpoint as the authentication sees it: API keys need the `mcp` surface; a POST for CSRF. */
export const MCP_ROUTE: DaguRoute = Object.freeze({ method: "POST", path: "/mcp", operationId: "mcp", minRole: "viewer", origin: "router", handler: "forward" });
