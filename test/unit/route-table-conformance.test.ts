// The route table against Dagu v2.15.1 itself, read from the tag `v2.15.1` of Dagu's source clone in the
// project's cache (DAGU_SOURCE, default ~/.cache/dagu-auth-operator/src/dagu; scripts/build-components.sh
// dagu clones it or says what to put there). Three sources, each at the tag, never the working tree:
// - `api/v1/api.yaml`, the OpenAPI document: every operation has an entry, and every entry an operation;
// - `api/v1/api.gen.go`, the router generated from it: it serves exactly the document's operations;
// - every other route registration of `internal/service/frontend` (SSE, WebSocket, UI, OIDC, MCP...): each is
//   known here, the table's router entries are exactly the ones under `/api/v1`, and the ones outside it
//   that are not the UI are refused by the sidecar (reservedSegments), MCP but at its own path.
// An operation or route added upstream fails these tests. Without the clone they fail and say what to do.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { daguApiProfile } from "../../src/sidecar/routes/dagu-api.ts";
import { roleAtLeast } from "../../src/sidecar/routes/roles.ts";
import { DAGU_ROUTES, isUnauthenticated, type DaguRoute } from "../../src/dagu/routes.ts";
import { parse } from "yaml";
import { DAGU_SOURCE_DIR as sourceDir, DAGU_SOURCE_VERSION as DAGU_VERSION, HTTP_METHODS, daguSourceMissing, gitShow as git, specOperations, type SpecOperation } from "../harness/dagu-source.ts";

const FRONTEND = "internal/service/frontend";

interface Source {
  readonly spec: string;
  readonly generatedRouter: string;
  readonly server: string;
  /** `file:line:text` of every chi registration in the frontend package (tests and generated code aside). */
  readonly registrations: string;
}

async function loadSource(): Promise<Source | { readonly missing: string }> {
  const missing = await daguSourceMissing();
  if (missing) return { missing };
  const [spec, generatedRouter, server, registrations] = await Promise.all([
    git("show", `${DAGU_VERSION}:api/v1/api.yaml`),
    git("show", `${DAGU_VERSION}:api/v1/api.gen.go`),
    git("show", `${DAGU_VERSION}:${FRONTEND}/server.go`),
    git("grep", "-n", "-E", String.raw`\br\.(Get|Post|Put|Patch|Delete|Head|Options|Connect|Trace|Handle|HandleFunc|Method|MethodFunc|Route|Mount)\(`, DAGU_VERSION, "--", `${FRONTEND}/*.go`, ":!*_test.go"),
  ]);
  return { spec, generatedRouter, server, registrations };
}

const source = await loadSource();
function need(): Source {
  if ("missing" in source) assert.fail(source.missing);
  return source;
}

let operationsCache: SpecOperation[] | undefined;
function operations(): SpecOperation[] {
  operationsCache ??= specOperations(need().spec);
  return operationsCache;
}

const key = (method: string, path: string): string => `${method} ${path}`;
const openapiRoutes = DAGU_ROUTES.filter((route) => route.origin !== "router");
const routerRoutes = DAGU_ROUTES.filter((route) => route.origin === "router");

/**
 * Every route registration of Dagu v2.15.1's frontend outside the generated API, keyed by file and call up
 * to its first argument, with what it serves: `route` for one under `/api/v1` (a router entry of the
 * table), `reserved` for one outside it that the sidecar refuses, `mcp` for Dagu's MCP endpoint (served at
 * exactly that path with each call's role, its segment refused anywhere else), `ui` for the pages and assets
 * the sidecar serves without a credential, `api` for the mounts of the generated router.
 */
type Registration = { readonly route: string } | { readonly reserved: string } | { readonly mcp: string } | { readonly ui: string } | { readonly api: true };
const KNOWN_REGISTRATIONS: ReadonlyArray<readonly [call: string, what: Registration]> = [
  ['api/v1/api.go: r.Mount("/"', { api: true }],
  ["server.go: r.Route(apiV1BasePath", { api: true }],
  ['server.go: r.Route("/"', { ui: "the pages" }],
  ['server.go: r.Get("/*"', { ui: "index.html for every other GET" }],
  ["server.go: r.Get(assetsPath", { ui: "/assets/*" }],
  // Trusted-proxy login (its argument is on the next line; answers 404 unless configured).
  ["server.go: r.Handle(", { reserved: "/proxy-login" }],
  // Builtin OIDC, registered only when configured.
  ['server.go: r.Get(pathutil.BuildPublicEndpointPath(basePath, "oidc-login")', { reserved: "/oidc-login" }],
  ['server.go: r.Get(pathutil.BuildPublicEndpointPath(basePath, "oidc-callback")', { reserved: "/oidc-callback" }],
  // Served by the sidecar at exactly /mcp, each tool call with its role (src/sidecar/mcp.ts); `mcp` elsewhere refused.
  ["server.go: r.Handle(mcpPath", { mcp: "/mcp" }],
  // wsPath := path.Join(apiV1BasePath, "terminal/ws") (checked below); registered only with builtin auth.
  ["server.go: r.Get(wsPath", { route: "GET /terminal/ws" }],
  ['server.go: r.Route(path.Join(apiV1BasePath, "events")', { api: true }],
  ['server.go: r.Get("/stream"', { route: "GET /events/stream" }],
  ['server.go: r.Post("/stream/topics"', { route: "POST /events/stream/topics" }],
];

/** `r.Get(a(b, c), h)` -> `r.Get(a(b, c)`: the call up to the end of its first argument. */
function callWithFirstArgument(text: string): string {
  const open = text.indexOf("(");
  let depth = 0;
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    else if (c === ")" && depth-- === 0) return text.slice(0, i);
    else if (c === "," && depth === 0) return text.slice(0, i);
  }
  return text;
}

function registrationsFound(): string[] {
  return need()
    .registrations.trim()
    .split("\n")
    .map((line) => {
      // v2.15.1:internal/service/frontend/server.go:1195:	r.Get(wsPath, termHandler.ServeHTTP)
      const m = /^[^:]+:internal\/service\/frontend\/([^:]+):\d+:\s*(.*)$/.exec(line);
      assert.ok(m, `unexpected git grep line: ${line}`);
      return `${m[1]}: ${callWithFirstArgument(m[2]!)}`;
    });
}

describe(`route table vs Dagu ${DAGU_VERSION} (source at ${sourceDir})`, () => {
  test("every OpenAPI operation has an entry with the same method, path and operationId", () => {
    const byKey = new Map(openapiRoutes.map((route) => [key(route.method, route.path), route]));
    const missing: string[] = [];
    const renamed: string[] = [];
    for (const operation of operations()) {
      const route = byKey.get(key(operation.method, operation.path));
      if (!route) missing.push(`${key(operation.method, operation.path)} (${operation.operationId})`);
      else if (route.operationId !== operation.operationId) {
        renamed.push(`${key(operation.method, operation.path)}: table ${route.operationId}, spec ${operation.operationId}`);
      }
    }
    // missing: refused by the sidecar until added; renamed: same route, other operationId.
    assert.deepEqual({ missing, renamed }, { missing: [], renamed: [] });
  });

  test("every OpenAPI entry of the table exists in the document", () => {
    const inSpec = new Set(operations().map((operation) => key(operation.method, operation.path)));
    const extra = openapiRoutes.filter((route) => !inSpec.has(key(route.method, route.path)));
    assert.deepEqual(
      extra.map((route) => `${key(route.method, route.path)} (${route.operationId})`),
      [],
      "table entries without an operation (mark router-only routes with origin: \"router\")",
    );
  });

  test("the generated router serves exactly the document's operations", () => {
    const generated = [...need().generatedRouter.matchAll(/\br\.(Get|Post|Put|Patch|Delete)\(options\.BaseURL\+"([^"]+)"/g)].map((m) =>
      key(m[1]!.toUpperCase(), m[2]!),
    );
    assert.ok(generated.length > 100, `only ${generated.length} routes found in api/v1/api.gen.go: has its form changed?`);
    assert.deepEqual(generated.sort(), operations().map((operation) => key(operation.method, operation.path)).sort());
  });

  test("every other route registration of the frontend is known, and the table's router entries are Dagu's", () => {
    const known = KNOWN_REGISTRATIONS.map(([call]) => call).sort();
    assert.deepEqual(registrationsFound().sort(), known, "a route registration was added or changed upstream: decide it here and in routes.ts");
    // The variables in the known calls are what the list says they are.
    const { server } = need();
    assert.ok(server.includes('wsPath := path.Join(apiV1BasePath, "terminal/ws")'), "the terminal's path changed");
    assert.ok(server.includes('pathutil.BuildPublicEndpointPath(basePath, "proxy-login")'), "the trusted-proxy login's path changed");
    assert.ok(server.includes('pathutil.BuildPublicEndpointPath(srv.funcsConfig.BasePath, "mcp")'), "the MCP path changed");
    const routes = KNOWN_REGISTRATIONS.flatMap(([, what]) => ("route" in what ? [what.route] : [])).sort();
    assert.deepEqual(routerRoutes.map((route) => key(route.method, route.path)).sort(), routes);
    const inSpec = new Set(operations().map((operation) => key(operation.method, operation.path)));
    for (const route of routerRoutes) assert.ok(!inSpec.has(key(route.method, route.path)), `${route.operationId} is in the OpenAPI document now`);
  });

  test("routes outside /api/v1 that are not the UI are refused by the sidecar (MCP: but at its own path)", () => {
    need();
    const reserved = KNOWN_REGISTRATIONS.flatMap(([, what]) => ("reserved" in what ? [what.reserved] : "mcp" in what ? [what.mcp] : [])).sort();
    assert.deepEqual(KNOWN_REGISTRATIONS.flatMap(([, what]) => ("mcp" in what ? [what.mcp] : [])), [daguApiProfile("v1").mcpPath], "the sidecar serves Dagu's MCP path");
    assert.deepEqual([...daguApiProfile("v1").reservedSegments].map((segment) => `/${segment}`).sort(), reserved);
  });

  test("operations answering text/event-stream are marked streaming", () => {
    const byKey = new Map(DAGU_ROUTES.map((route) => [key(route.method, route.path), route]));
    for (const operation of operations().filter((o) => o.streaming)) {
      const route = byKey.get(key(operation.method, operation.path));
      assert.ok(route?.streaming, `${key(operation.method, operation.path)} streams but is not marked`);
    }
  });
});

describe("route table invariants", () => {
  test("method and path pairs and operationIds are unique", () => {
    const pairs = DAGU_ROUTES.map((route) => key(route.method, route.path));
    assert.equal(new Set(pairs).size, pairs.length);
    const ids = DAGU_ROUTES.map((route) => route.operationId);
    assert.equal(new Set(ids).size, ids.length);
  });

  test("size of the table as derived (219 OpenAPI operations, 3 router routes)", () => {
    // A tripwire for reviewers: a changed count must come with a changed docs/route-permissions.md.
    assert.equal(openapiRoutes.length, 219);
    assert.equal(routerRoutes.length, 3);
  });

  test("exactly Dagu's public routes skip authentication", () => {
    const open = DAGU_ROUTES.filter(isUnauthenticated).map((route) => key(route.method, route.path)).sort();
    assert.deepEqual(open, ["GET /health", "POST /auth/login", "POST /auth/setup", "POST /webhooks/{fileName}"]);
    const health = DAGU_ROUTES.find((route) => route.path === "/health");
    assert.equal(health?.access, "public");
  });

  test("the sidecar answers auth, users, API keys, the webhook trigger, webhook reads and the license status", () => {
    const sidecar = DAGU_ROUTES.filter((route) => route.access === "sidecar");
    const expected = (route: DaguRoute): boolean =>
      route.path.startsWith("/auth/") ||
      route.path === "/users" ||
      route.path.startsWith("/users/") ||
      route.path === "/api-keys" ||
      route.path.startsWith("/api-keys/") ||
      (route.method === "POST" && route.path === "/webhooks/{fileName}") ||
      (route.method === "GET" && (route.path === "/webhooks" || route.path === "/dags/{fileName}/webhook" || route.path === "/license/status"));
    assert.deepEqual(
      sidecar.map((route) => route.operationId).sort(),
      DAGU_ROUTES.filter(expected).map((route) => route.operationId).sort(),
    );
  });

  test("streaming routes always need a credential", () => {
    const streams = DAGU_ROUTES.filter((route) => route.streaming || route.path.startsWith("/events/"));
    assert.ok(streams.length >= 3);
    for (const route of streams) {
      assert.equal(isUnauthenticated(route), false, route.operationId);
      assert.ok(roleAtLeast(route.minRole, "viewer"));
    }
  });

  test("inline specs and code-changing routes need developer or above", () => {
    const find = (method: string, path: string): DaguRoute => {
      const route = DAGU_ROUTES.find((r) => r.method === method && r.path === path);
      assert.ok(route, `${method} ${path}`);
      return route;
    };
    for (const [method, path] of [
      ["POST", "/dag-runs"],
      ["POST", "/dag-runs/enqueue"],
      ["POST", "/dags"],
      ["PUT", "/dags/{fileName}/spec"],
      ["POST", "/dag-runs/{name}/{dagRunId}/edit-retry"],
      ["POST", "/sync/pull"],
      ["PUT", "/settings/base-config"],
    ] as const) {
      assert.ok(roleAtLeast(find(method, path).minRole, "developer"), `${method} ${path}`);
      assert.equal(roleAtLeast("operator", find(method, path).minRole), false, `${method} ${path}`);
    }
  });

  test("every operation whose request body carries a `spec` (a YAML DAG: shell commands) needs developer or above (GHSA-6qr9-g2xw-cw92)", () => {
    const document = parse(need().spec, { maxAliasCount: -1 }) as Record<string, unknown>;
    const pointer = (ref: string): unknown => ref.slice(2).split("/").reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], document);
    const resolve = (node: unknown, depth = 0): Record<string, unknown> | undefined => {
      const object = node as Record<string, unknown> | undefined;
      return depth < 8 && typeof object?.$ref === "string" ? resolve(pointer(object.$ref), depth + 1) : object;
    };
    const properties = (schema: unknown, depth = 0): string[] => {
      const object = resolve(schema);
      if (!object || depth > 4) return [];
      const own = Object.keys((object.properties as Record<string, unknown> | undefined) ?? {});
      const nested = ["allOf", "oneOf", "anyOf"].flatMap((k) => ((object[k] as unknown[] | undefined) ?? []).flatMap((s) => properties(s, depth + 1)));
      return [...own, ...nested];
    };
    const found: string[] = [];
    for (const [path, item] of Object.entries((document.paths ?? {}) as Record<string, Record<string, unknown>>)) {
      for (const method of HTTP_METHODS) {
        const operation = resolve(item[method]);
        const body = resolve(operation?.requestBody);
        const schema = resolve((body?.content as Record<string, { schema?: unknown }> | undefined)?.["application/json"]?.schema);
        if (!properties(schema).includes("spec")) continue;
        const route = DAGU_ROUTES.find((r) => r.method === method.toUpperCase() && r.path === path);
        assert.ok(route, `${method} ${path}`);
        found.push(route.operationId);
        assert.ok(roleAtLeast(route.minRole, "developer"), `${route.operationId} takes a spec and needs only ${route.minRole}`);
      }
    }
    // The list test/integration/sidecar-advisories.test.ts sends inline specs to.
    assert.deepEqual(found.sort(), ["createNewDAG", "editRetryDAGRun", "enqueueDAGRunFromSpec", "executeDAGRunFromSpec", "previewEditRetryDAGRun", "updateBaseConfig", "updateDAGSpec", "updateWorkspaceBaseConfig", "validateDAGSpec"]);
  });

  test("wiki reads are for every role, wiki writes need developer", () => {
    const wiki = DAGU_ROUTES.filter((route) => route.path.startsWith("/wiki") || route.path.startsWith("/search/wiki"));
    assert.equal(wiki.length, 15);
    for (const route of wiki) assert.equal(route.minRole, route.method === "GET" ? "viewer" : "developer", `${route.method} ${route.path}`);
  });

  test("users, API keys, remote nodes, license and the terminal are admin only", () => {
    for (const route of DAGU_ROUTES) {
      if (/^\/(users|api-keys|remote-nodes)(\/|$)|^\/license\/(activate|deactivate)$|^\/terminal\//.test(route.path)) {
        assert.equal(route.minRole, "admin", `${route.method} ${route.path}`);
      }
    }
  });
});
