// Issue 12.4: one regression test per class of advisory that the anchors (Dagu, oauth2-proxy, Pomerium,
// Authelia) shipped and fixed, each named after it (docs/reliability.md lists them). The real sidecar in
// front of a real Dagu v2.15.1, a recording forwarder and a TCP tap between them: "nothing reached Dagu"
// is read from both. Requests go out as raw bytes where a client library would mend them.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Credentials } from "../../src/api/credentials.ts";
import { DAGU_ROUTES, type DaguRoute } from "../../src/dagu/routes.ts";
import { startProvider, type TestProvider } from "../harness/oidc-provider.ts";
import { rawConversation, type RawResponse } from "../harness/raw-http.ts";
import { ROLE_USERS } from "../../dev/known-credentials.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

let stack: SidecarStack;
let prefix: string;
const tokens: Record<string, string> = {};
let generation = 1;

/** One raw request (Connection: close added) from `localAddress`; its answer. */
async function send(head: string, body = "", localAddress = "127.0.40.1"): Promise<RawResponse> {
  const length = body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : "";
  const { answers } = await rawConversation({ port: stack.sidecar.port, localAddress, request: `${head}\r\n${length}Connection: close\r\n\r\n${body}` });
  assert.ok(answers[0], `no answer to ${head.split("\r\n")[0]}:\n${stack.sidecar.output().slice(-1500)}`);
  return answers[0];
}
const auth = (who: string) => `Authorization: Bearer ${tokens[who]}`;
const req = (method: string, target: string, ...headers: string[]) => [`${method} ${target} HTTP/1.1`, "Host: dagu.test", ...headers].join("\r\n");

function clear(): void {
  stack.recorder!.clear();
  stack.tap!.clear();
}
function assertNothingReached(what: string): void {
  assert.deepEqual(stack.recorder!.requests.map((r) => `${r.method} ${r.url}`), [], `${what} reached Dagu`);
  assert.equal(stack.tap!.sent(), "", `${what}: bytes reached Dagu`);
}

async function login(username: string, password: string, localAddress = "127.0.40.9"): Promise<RawResponse> {
  return send(req("POST", `${prefix}/auth/login`, "Content-Type: application/json"), JSON.stringify({ username, password }), localAddress);
}

/** Writes the credentials file (a new generation) and waits until the sidecar has it in force. */
async function publish(change: (credentials: Credentials) => Credentials): Promise<void> {
  generation += 1;
  await writeFile(stack.credentialsFile, JSON.stringify(change({ ...stack.built.credentials, generation })));
  const deadline = Date.now() + 10_000;
  while (!stack.sidecar.lines().some((l) => l.msg === "credentials loaded" && l.generation === generation)) {
    if (Date.now() > deadline) throw new Error(`generation ${generation} not loaded:\n${stack.sidecar.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A route template filled with harmless values. */
const fill = (route: DaguRoute) => prefix + route.path.replace(/\{[^}]+\}/g, (p) => (p === "{fileName}" || p === "{name}" ? "hello" : "x1"));

before(async () => {
  stack = await startSidecarStack({
    credentials: {
      users: [...ROLE_USERS],
      apiKeys: [{ name: "ops", role: "operator" }, { name: "view", role: "viewer" }],
      login: { maxAttempts: 3, windowSeconds: 600, lockoutSeconds: 600 },
    },
    recorder: true,
    tap: true,
    forceApi: true,
  });
  prefix = stack.prefix;
  for (const [who, password] of [["admin", "admin-password-1"], ["dev", "developer-password-1"], ["opal", "operator-password-1"], ["vic", "viewer-password-1"]]) {
    const r = await login(who!, password!);
    assert.equal(r.status, 200, r.body);
    tokens[who!] = (JSON.parse(r.body) as { token: string }).token;
  }
  tokens.ops = stack.built.apiKeys.ops!;
  tokens.view = stack.built.apiKeys.view!;
});
after(() => stack?.stop());

describe("advisory classes of the anchors", () => {
  test("Dagu GHSA-6qr9-g2xw-cw92: an inline spec is never run or written without the developer role", async () => {
    // Every operation of Dagu v2.15.1's OpenAPI document whose request body has a `spec` (a YAML DAG, i.e.
    // shell commands): test/unit/route-table-conformance.test.ts derives this list from the document.
    const specOperations = ["createNewDAG", "validateDAGSpec", "updateDAGSpec", "executeDAGRunFromSpec", "enqueueDAGRunFromSpec", "previewEditRetryDAGRun", "editRetryDAGRun", "updateBaseConfig", "updateWorkspaceBaseConfig"];
    const routes = specOperations.map((id) => DAGU_ROUTES.find((r) => r.operationId === id)!);
    assert.ok(routes.every(Boolean), "every spec-taking operation is in the table");
    const spec = JSON.stringify({ name: `ghsa-${randomBytes(3).toString("hex")}`, spec: "steps:\n  - command: touch /tmp/ghsa-6qr9-pwned\n" });
    for (const route of routes) {
      for (const who of ["opal", "ops", "vic", "view"]) {
        clear();
        const r = await send(req(route.method, fill(route), auth(who), "Content-Type: application/json"), spec);
        assert.equal(r.status, 403, `${who} ${route.method} ${route.path}: ${r.body}`);
        assertNothingReached(`${who} ${route.operationId}`);
      }
    }
    // Without any credential: 401, never Dagu's unauthenticated handler.
    for (const route of routes) {
      clear();
      assert.equal((await send(req(route.method, fill(route), "Content-Type: application/json"), spec)).status, 401);
      assertNothingReached(`anonymous ${route.operationId}`);
    }
    // The developer's inline run does reach Dagu (the refusals above are about the role, not the route).
    clear();
    const dev = await send(req("POST", `${prefix}/dags/validate`, auth("dev"), "Content-Type: application/json"), JSON.stringify({ spec: "steps:\n  - command: echo hi\n" }));
    assert.equal(dev.status, 200, dev.body);
    assert.deepEqual(stack.recorder!.requests.map((r) => r.url), [`${prefix}/dags/validate`]);
  });

  test("Dagu CVE-2026-31882: no event stream without a valid credential (straight to Dagu it streams)", async () => {
    const sse = DAGU_ROUTES.filter((r) => r.streaming === "sse");
    assert.ok(sse.length >= 1);
    // The hole is real: Dagu with its auth off streams to anybody.
    const direct = await fetch(`${stack.dagu.url}${prefix}/events/stream`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
    assert.equal(direct?.status, 200);
    assert.match(direct!.headers.get("content-type") ?? "", /text\/event-stream/);
    await direct!.body?.cancel();
    const expired = tokens.admin!.split(".").map((part, i) => (i === 2 ? randomBytes(32).toString("base64url") : part)).join(".");
    for (const route of sse) {
      const target = fill(route);
      for (const [name, head] of [
        ["no credential", req("GET", target, "Accept: text/event-stream")],
        ["empty ?token=", req("GET", `${target}?token=`, "Accept: text/event-stream")],
        ["garbage ?token=", req("GET", `${target}?token=x.y.z`)],
        ["forged ?token=", req("GET", `${target}?token=${expired}`)],
        ["a webhook token", req("GET", `${target}?token=dagu_wh_${"a".repeat(40)}`)],
        ["Basic in builtin mode", req("GET", target, `Authorization: Basic ${Buffer.from("admin:admin-password-1").toString("base64")}`)],
        ["two ?token= (the second valid)", req("GET", `${target}?token=x&token=${tokens.admin}`)],
      ] as const) {
        clear();
        const r = await send(head);
        assert.equal(r.status, 401, `${name}: ${r.status} ${r.body}`);
        assertNothingReached(`SSE with ${name}`);
      }
    }
    // Dagu 1's and older per-resource stream paths are not routes of this Dagu: 404, nothing forwarded.
    for (const path of ["/events/dags", "/events/dag-runs/hello/x", "/events/queues", "/sse/dags"]) {
      clear();
      assert.equal((await send(req("GET", `${prefix}${path}`))).status, 404, path);
      assertNothingReached(path);
    }
  });

  test("Dagu CVE-2026-27598: a DAG name that walks out of the DAGs directory is refused, in the path by the sidecar and in a body by Dagu; nothing is written outside", async () => {
    const names = ["..%2F..%2Fpwned", "%2e%2e", "..", ".%2e", "..%5Cpwned", "%252e%252e%252Fpwned", "..%c0%afpwned", "%2Fetc%2Fpasswd", "hello%00.yaml", "..;"];
    const nameRoutes = DAGU_ROUTES.filter((r) => r.path.includes("{fileName}"));
    assert.ok(nameRoutes.length >= 10);
    for (const route of nameRoutes) {
      for (const name of names) {
        clear();
        const target = prefix + route.path.replace("{fileName}", name).replace(/\{[^}]+\}/g, "x1");
        const r = await send(req(route.method, target, auth("admin")));
        assert.ok([400, 404].includes(r.status), `${route.method} ${target}: ${r.status}`);
        assertNothingReached(`${route.method} ${target}`);
      }
    }
    // In a body the name is Dagu's to check (the sidecar does not read bodies it forwards): a developer's
    // create and rename with traversing names leave nothing outside the DAGs directory.
    const outside = dirname(stack.dagu.dagsDir);
    const before = (await readdir(outside)).sort();
    for (const body of [{ name: "../pwned" }, { name: "..\\pwned" }, { name: "/tmp/pwned" }]) {
      const r = await send(req("POST", `${prefix}/dags`, auth("dev"), "Content-Type: application/json"), JSON.stringify(body));
      assert.ok(r.status >= 400 && r.status < 500, `create ${JSON.stringify(body)}: ${r.status} ${r.body}`);
    }
    const rename = await send(req("POST", `${prefix}/dags/hello/rename`, auth("dev"), "Content-Type: application/json"), JSON.stringify({ newFileName: "../pwned" }));
    assert.ok(rename.status >= 400 && rename.status < 500, `rename: ${rename.status} ${rename.body}`);
    assert.deepEqual((await readdir(outside)).sort(), before, "nothing was written next to the DAGs directory");
    assert.ok((await readdir(stack.dagu.dagsDir)).includes("hello.yaml"), "the DAG was not moved away");
  });

  test("oauth2-proxy open redirects: every redirect the sidecar makes or passes goes to itself or the provider, whatever the request names", async () => {
    const provider: TestProvider = await startProvider({ clients: [{ clientId: "dagu", clientSecret: `secret-${"s".repeat(32)}`, redirectUris: [`${stack.sidecar.url}/oidc-callback`] }] });
    try {
      await publish((c) => ({
        ...c,
        oidc: {
          issuer: provider.issuer,
          clientId: "dagu",
          clientSecret: `secret-${"s".repeat(32)}`,
          clientUrl: stack.sidecar.url,
          scopes: ["openid", "profile", "email"],
          autoSignup: true,
          whitelist: [],
          allowedDomains: [],
          buttonLabel: "SSO",
          caBundle: provider.ca.certPem,
          roleMapping: { defaultRole: "viewer", groupsClaim: "groups", groupMappings: {}, roleAttributeStrict: false, skipOrgRoleSync: false },
        },
      }));
      const evil = "https://evil.example/steal";
      const params = ["rd", "redirect", "redirect_uri", "return_to", "returnTo", "next", "state", "from"].map((p) => `${p}=${encodeURIComponent(evil)}`).join("&");
      // The login start: to the provider, with the callback the credentials name, never a parameter's.
      for (const host of ["dagu.test", "evil.example"]) {
        const start = await send(req("GET", `/oidc-login?${params}`, `X-Forwarded-Host: evil.example`).replace("Host: dagu.test", `Host: ${host}`));
        assert.equal(start.status, 302, start.body);
        const location = new URL(start.headers.location!);
        assert.equal(location.origin, provider.issuer);
        assert.equal(location.searchParams.get("redirect_uri"), `${stack.sidecar.url}/oidc-callback`);
        assert.ok(!start.headers.location!.includes("evil"), start.headers.location);
      }
      // The callback's failures: back to the sidecar's own login page, a path, never elsewhere.
      for (const target of [`/oidc-callback?error=access_denied&${params}`, `/oidc-callback?code=x&state=y&${params}`, `/oidc-callback?${params}`]) {
        const r = await send(req("GET", target));
        assert.equal(r.status, 302);
        assert.match(r.headers.location!, /^\/login\?error=/, r.headers.location);
      }
      // Paths that redirectors turn into another origin (`//host`, `/\host`, encoded forms) never reach
      // Dagu's RedirectSlashes; a trailing slash does, and Dagu's answer stays a path on this host.
      for (const target of ["//evil.example/", "/\\evil.example/", "/%2F%2Fevil.example/", "/%5Cevil.example/", "/.//evil.example/", "/%09/evil.example/"]) {
        clear();
        const r = await send(req("GET", target));
        assert.equal(r.status, 400, `${target}: ${r.status} ${r.headers.location ?? ""}`);
        assertNothingReached(target);
      }
      const slash = await send(req("GET", "/dags/", "X-Forwarded-Host: evil.example").replace("Host: dagu.test", "Host: evil.example"));
      assert.ok(slash.status < 300 || /^\/[^/\\]/.test(slash.headers.location ?? ""), `trailing slash: ${slash.status} ${slash.headers.location}`);
    } finally {
      await publish((c) => c);
      await provider.stop();
    }
  });

  test("oauth2-proxy X_Forwarded_User smuggling: identity headers in any spelling (underscores, case) never reach Dagu", async () => {
    const spellings = ["X_Forwarded_User", "x_forwarded_user", "X-Forwarded_User", "X_FORWARDED_EMAIL", "X-Forwarded-Preferred-Username", "X_Remote_User", "X-REMOTE-USER", "Remote_User", "X_Auth_Request_User", "X_Auth_Request_Email", "X_Webauth_User", "X_Dagu_Role", "X_Real_Ip", "X_Original_Url", "X_Forwarded_Access_Token", "X_Forwarded_Groups"];
    clear();
    const r = await send(req("GET", `${prefix}/dags`, auth("vic"), ...spellings.map((h) => `${h}: admin`)));
    assert.equal(r.status, 200);
    assert.equal(stack.recorder!.requests.length, 1);
    const sent = stack.tap!.sent().toLowerCase();
    for (const h of spellings) assert.ok(!sent.includes(`${h.toLowerCase()}:`), `${h} reached Dagu`);
    assert.ok(!/: admin\r\n/.test(sent), "no header with the smuggled value reached Dagu");
  });

  test("oauth2-proxy skip-route regex on the query string: only the path decides what is public", async () => {
    for (const target of [
      `${prefix}/dags?${prefix}/health`,
      `${prefix}/dags?x=/auth/login`,
      `${prefix}/users?/webhooks/hello`,
      `${prefix}/dags/hello/start?/health`,
      `${prefix}/dags#${prefix}/health`,
      `${prefix}/dags?%2F..%2Fhealth`,
    ]) {
      clear();
      const r = await send(req(target.includes("/start") ? "POST" : "GET", target));
      // A fragment is no part of a request target: `#` in the path is malformed (400), never a public route.
      assert.equal(r.status, target.includes("#") ? 400 : 401, `${target}: ${r.status}`);
      assertNothingReached(target);
    }
    // And the public routes stay public with any query.
    clear();
    assert.equal((await send(req("GET", `${prefix}/health?${prefix}/users`))).status, 200);
  });

  test("Pomerium path normalization: the path judged is the path forwarded, byte for byte; every other spelling of an admin route is refused for a viewer", async () => {
    const spellings = [
      `${prefix}/./users`, `${prefix}/dags/../users`, `${prefix}/dags/%2e%2e/users`, `${prefix}/dags/.%2E/users`, `${prefix}//users`,
      `${prefix}/users/`, `${prefix}/Users`, `${prefix}/%75sers`, `${prefix}/users;x=1`, `${prefix}/users%2F`, `${prefix}/dags%2F..%2Fusers`,
      `${prefix}/dags\\..\\users`, `${prefix}/dags/%5c../users`, `/api/v1/../v1/users`, `/api/%2e%2e/api/v1/users`, `${prefix}/users%00`, `${prefix}/users%20`,
    ];
    for (const target of spellings) {
      clear();
      const r = await send(req("GET", target, auth("vic")));
      assert.ok([400, 403, 404].includes(r.status), `${target}: ${r.status}`);
      assertNothingReached(target);
    }
    // What is allowed goes on exactly as sent: no normalization between the check and Dagu.
    for (const target of [`${prefix}/dags/hello`, `${prefix}/dags/hello%20world`, `${prefix}/dags/hello/spec?x=%2e%2e%2F`]) {
      clear();
      const r = await send(req("GET", target, auth("vic")));
      assert.ok(r.status < 500, `${target}: ${r.status}`);
      assert.deepEqual(stack.recorder!.requests.map((q) => q.url), [target]);
    }
  });

  test("Pomerium stale claims after a role change: a token issued before the change carries the new role (and an API key too)", async () => {
    const write = (token: string) => send(req("POST", `${prefix}/dags/validate`, `Authorization: Bearer ${token}`, "Content-Type: application/json"), JSON.stringify({ spec: "steps:\n  - command: echo hi\n" }));
    assert.equal((await write(tokens.dev!)).status, 200, "the developer may before the change");
    const demoted = stack.built.credentials.users.map((u) => (u.username === "dev" ? { ...u, role: "viewer" as const } : u));
    const keys = stack.built.credentials.apiKeys.map((k) => (k.name === "view" ? { ...k, role: "developer" as const } : k));
    try {
      await publish((c) => ({ ...c, users: demoted, apiKeys: keys }));
      clear();
      const r = await write(tokens.dev!);
      assert.equal(r.status, 403, "the old token no longer carries developer");
      assertNothingReached("a demoted user's write");
      const me = await send(req("GET", `${prefix}/auth/me`, auth("dev")));
      assert.equal((JSON.parse(me.body) as { user?: { role?: string }; role?: string }).user?.role ?? (JSON.parse(me.body) as { role?: string }).role, "viewer");
      assert.equal((await write(tokens.view!)).status, 200, "a promoted API key gets its new role at once");
    } finally {
      await publish((c) => c);
    }
    assert.equal((await write(tokens.dev!)).status, 200, "and back");
  });

  test("Authelia malformed-URI bypass: a request target that cannot be parsed is refused, never passed unchecked", async () => {
    const targets = [
      `${prefix}/dags/%`, `${prefix}/dags/%zz`, `${prefix}/dags/%C0%AE%C0%AE`, `${prefix}/dags/%FF`, `${prefix}/dags/%E2%82`, `/%`, `/%zz/api/v1/dags`,
      "*", `http://dagu.test${prefix}/users`, `//dagu.test${prefix}/users`, "dagu.test:80", `${prefix}/users?%`, `${prefix}/dags/${"a".repeat(5000)}`,
      `${prefix}/dags/\u00ff`, `${prefix}/dags/\u00c0\u00ae`,
    ];
    for (const target of targets) {
      clear();
      const r = await send(req("GET", target, "X-Original-URL: /api/v1/health", "X-Forwarded-Uri: /api/v1/health"), "", "127.0.41.1").catch(() => ({ status: 0, headers: {}, body: "" }));
      assert.ok(r.status === 0 || (r.status >= 400 && r.status < 500), `${JSON.stringify(target.slice(0, 60))}: ${r.status}`);
      assertNothingReached(target.slice(0, 60));
    }
    // Authelia's own case: the malformed URI carried in a forwarding header decides nothing here.
    clear();
    assert.equal((await send(req("GET", `${prefix}/users`, "X-Original-URL: %zz", "X-Forwarded-Uri: /%", "X-Forwarded-Method: GET"))).status, 401);
    assertNothingReached("malformed forwarding headers");
  });

  test("Authelia case-split throttle buckets: failures on any spelling of a username count against that username", async () => {
    const address = "127.0.42.1";
    for (const spelling of ["Vic", "VIC", "vIc"]) assert.equal((await login(spelling, "wrong-password-1", address)).status, 401);
    const locked = await login("vic", "viewer-password-1", address);
    assert.equal(locked.status, 429, "the pair (vic, address) is locked: the three spellings were one bucket");
    assert.ok(Number(locked.headers["retry-after"]) > 0);
    // The lock is the guesser's: vic from elsewhere still logs in.
    assert.equal((await login("vic", "viewer-password-1", "127.0.42.2")).status, 200);
  });
});
