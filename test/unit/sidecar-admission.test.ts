// Admission as a pure decision (src/sidecar/routes/admission.ts: admit, then authorize once the server has
// authenticated) and the start-up check that every route of both tables has its handler
// (src/sidecar/routes/handlers.ts): the route table is the only authority for what happens to a request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { admit, authorize, type Admission, type AdmissionRequest, type PendingRoute } from "../../src/sidecar/routes/admission.ts";
import { handlerProblems } from "../../src/sidecar/routes/handlers.ts";
import { DAGU_API_VERSIONS, daguApiProfile } from "../../src/sidecar/routes/dagu-api.ts";
import { answersLocally } from "../../src/sidecar/answers/auth-api.ts";
import { indexCredentials } from "../../src/sidecar/credentials/credential-store.ts";
import { TrustedProxies } from "../../src/sidecar/proxy/headers.ts";
import { DAGU_ROUTES, route, SIDECAR } from "../../src/dagu/routes.ts";
import type { AuthResult } from "../../src/sidecar/auth/authenticators.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

const local = { answers: answersLocally };

test("every route of both tables has its handler", () => {
  for (const version of DAGU_API_VERSIONS) assert.deepEqual(handlerProblems(daguApiProfile(version).routes, local), [], version);
});

test("Dagu 2's webhook writes are managed by DaguWebhook in the table itself, not by a list beside it", () => {
  const write = DAGU_ROUTES.find((r) => r.operationId === "createDAGWebhook")!;
  assert.deepEqual([write.handler, write.managedBy], ["managed", "DaguWebhook"]);
  assert.equal(DAGU_ROUTES.find((r) => r.operationId === "listDAGs")!.handler, "forward");
  assert.equal(DAGU_ROUTES.find((r) => r.operationId === "triggerWebhook")!.handler, "webhook");
});

test("a handler that does not exist, or contradicts its route, refuses the start", () => {
  const problems = handlerProblems(
    [
      route("GET", "/auth/whoami", "whoAmI", "viewer", SIDECAR),
      route("GET", "/users/{userId}/secrets", "getUserSecrets", "admin", { access: "sidecar" }),
      route("POST", "/users", "createUser", "admin", { access: "sidecar", handler: "managed" }),
      route("POST", "/users/{userId}/clone", "cloneUser", "admin", { access: "sidecar", handler: "managed", managedBy: "DaguUser" }),
      route("GET", "/webhooks/{fileName}", "triggerWebhook", "viewer", { handler: "webhook" }),
    ],
    local,
  );
  assert.deepEqual(problems, [
    "GET /auth/whoami (whoAmI): the auth API has no handler for it",
    "GET /users/{userId}/secrets (getUserSecrets) is answered by the sidecar but its handler forwards it to Dagu",
    "POST /users (createUser): a managed route names no resource (managedBy)",
    "POST /users/{userId}/clone (cloneUser): the management writes have no handler for it",
    "GET /webhooks/{fileName} (triggerWebhook): the webhook trigger takes an unauthenticated POST .../{fileName}",
  ]);
});

const { credentials } = await buildCredentials({ users: [{ username: "vic", password: "viewer-password-1", role: "viewer" }] });
const snapshot = indexCredentials(credentials);
const profile = daguApiProfile("v1");
const state = { snapshot, profile, trustedProxies: () => new TrustedProxies([]) };
const request = (method: string, url: string, headers: Record<string, string> = {}): AdmissionRequest => ({
  method,
  url,
  headers,
  rawHeaders: Object.entries(headers).flat(),
  socket: { remoteAddress: "127.0.0.1" },
});
const outcome = (a: Admission) => (a.verdict.kind === "refuse" ? `${a.verdict.status} ${a.verdict.message}` : a.verdict.kind);

test("admit decides from the request and the state alone, with its audit facts", () => {
  const table: [string, AdmissionRequest, typeof state | { snapshot: undefined; profile: undefined; trustedProxies: () => TrustedProxies }, string, string | undefined][] = [
    ["not a path", request("GET", "*"), state, "400 the request target must be a path", undefined],
    ["no credentials yet: fail closed", request("GET", "/api/v1/dags"), { snapshot: undefined, profile: undefined, trustedProxies: () => new TrustedProxies([]) }, "503 no credentials loaded", "no_credentials"],
    ["two Authorization headers", request("GET", "/api/v1/dags", { authorization: "a", Authorization: "b" }), state, "400 send one Authorization header", undefined],
    ["a malformed path", request("GET", "/api/v1/dags/../users"), state, "400 malformed request path", undefined],
    ["the UI", request("GET", "/dags"), state, "ui", "ui"],
    ["a write outside the API", request("POST", "/dags"), state, "405 only GET is served outside the API", undefined],
    ["an unknown API route", request("GET", "/api/v1/nothing-here"), state, "404 no such API route", undefined],
    ["a route that needs a credential is handed back", request("GET", "/api/v1/dags"), state, "authenticate", undefined],
    ["an unauthenticated route is decided at once", request("POST", "/api/v1/auth/login"), state, "route", undefined],
  ];
  for (const [what, req, st, expected, reason] of table) {
    const a = admit(req, st);
    assert.equal(outcome(a), expected, what);
    assert.equal(a.facts.reason, reason, what);
  }
  const pending = admit(request("GET", "/api/v1/dags?x=1"), state);
  assert.deepEqual(pending.facts, { path: "/api/v1/dags", operation: "listDAGs" });
});

test("authorize decides the rest from the authentication result: 401, 429, 403, or the route", () => {
  const pending = admit(request("DELETE", "/api/v1/dags/etl"), state) as Admission<PendingRoute>;
  assert.equal(pending.verdict.kind, "authenticate");
  const viewer: AuthResult = { ok: true, method: "jwt", principal: { kind: "user", id: "u-1", username: "vic", role: "viewer" } };
  const admin: AuthResult = { ok: true, method: "jwt", principal: { kind: "user", id: "u-2", username: "ada", role: "admin" } };
  const table: [string, AuthResult, string, Record<string, unknown>][] = [
    ["no credential", { ok: false, status: 401, reason: "missing" }, "401 Authentication required", { reason: "missing" }],
    ["throttled", { ok: false, status: 429, reason: "locked", retryAfterSeconds: 30 }, "429 Too many failed attempts; try again later", { reason: "locked" }],
    ["a role too small", viewer, "403 Insufficient permissions", { user: "vic", role: "viewer", reason: `needs_${pending.verdict.route.minRole}` }],
    ["enough", admin, "route", { user: "ada", role: "admin", reason: undefined }],
  ];
  for (const [what, auth, expected, facts] of table) {
    const decided = authorize(request("DELETE", "/api/v1/dags/etl"), pending, auth);
    assert.equal(outcome(decided), expected, what);
    for (const [k, v] of Object.entries(facts)) assert.equal(decided.facts[k as keyof typeof decided.facts], v, `${what}: ${k}`);
    assert.equal(decided.facts.operation, "deleteDAG", what);
  }
  const refused = authorize(request("DELETE", "/api/v1/dags/etl"), pending, { ok: false, status: 429, reason: "locked", retryAfterSeconds: 30 });
  assert.equal(refused.verdict.kind === "refuse" && refused.verdict.headers?.["Retry-After"], "30");
  const basicCrossSite = authorize(request("DELETE", "/api/v1/dags/etl", { "sec-fetch-site": "cross-site" }), pending, { ...admin, method: "basic" });
  assert.equal(outcome(basicCrossSite), "403 cross-site request refused: Basic credentials are accepted from this origin only");
});

test("under a base path: the API and the UI below it, nothing outside it, api segments still refused", () => {
  const based = { ...state, profile: daguApiProfile("v1", "/dagu") };
  assert.equal(based.profile.prefix, "/dagu/api/v1");
  assert.equal(based.profile.mcpPath, "/dagu/mcp");
  const table: [AdmissionRequest, string][] = [
    [request("GET", "/dagu/api/v1/dags"), "authenticate"],
    [request("POST", "/dagu/api/v1/auth/login"), "route"],
    [request("GET", "/dagu/dags"), "ui"],
    [request("GET", "/dagu"), "ui"],
    [request("POST", "/dagu/mcp"), "authenticate"],
    [request("GET", "/api/v1/dags"), "404 no such route"],
    [request("GET", "/dags"), "404 no such route"],
    [request("GET", "/daguX/dags"), "404 no such route"],
    [request("GET", "/"), "404 no such route"],
    [request("GET", "/dagu/x/api/v1/dags"), "404 no such route"],
    [request("GET", "/dagu/API/v1/dags"), "404 no such route"],
    [request("GET", "/dagu/mcp/x"), "404 no such route"],
    [request("GET", "/dagu/api/v1/nothing-here"), "404 no such API route"],
  ];
  for (const [req, expected] of table) assert.equal(outcome(admit(req, based)), expected, req.url);
  assert.equal(admit(request("GET", "/elsewhere"), based).facts.reason, "outside_base_path");
  assert.throws(() => daguApiProfile("v1", "/x/api"), /bad base path "\/x\/api": must not contain a segment "api"/);
});
