// The Dagu 1.x route table (src/dagu/routes-dagu1.ts) against Dagu v1.30.3 itself: its OpenAPI
// document `api/v2/api.yaml` and its handlers `internal/service/frontend/api/v2/*.go`, read from the Go
// module cache (downloaded in a before hook when missing; the module proxy serves this version, so this
// test never skips). The expected role of every operation is derived from the checks its Go handler
// calls, mapped onto our roles: requireAdmin -> admin, requireWrite -> developer, requireExecute ->
// operator, none -> viewer.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parse } from "yaml";
import { z } from "zod";
import type { Role } from "../../src/api/common.ts";
import { roleAtLeast, roleRank } from "../../src/sidecar/routes/roles.ts";
import { DAGU1_API_PREFIX, DAGU1_ROUTES } from "../../src/dagu/routes-dagu1.ts";
import { isUnauthenticated, type DaguRoute } from "../../src/dagu/routes.ts";
import { createRouteMatcher } from "../../src/sidecar/routes/route-matcher.ts";

const execFileAsync = promisify(execFile);
const MODULE = "github.com/dagu-org/dagu";
const VERSION = "v1.30.3";
const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;

/** Where the table is deliberately stricter than Dagu 1 (docs/sidecar.md says why). */
const STRICTER: Record<string, Role> = {
  executeDAGRunFromSpec: "developer", // inline spec = arbitrary code (GHSA-6qr9-g2xw-cw92); Dagu 1: requireExecute
  enqueueDAGRunFromSpec: "developer",
  validateDAGSpec: "developer", // parses an arbitrary spec, only the editor calls it; Dagu 1: no check
};

async function moduleDir(): Promise<string> {
  const { stdout } = await execFileAsync("go", ["env", "GOMODCACHE"], { timeout: 60_000 });
  const cached = join(stdout.trim(), `${MODULE}@${VERSION}`);
  if (existsSync(join(cached, "api", "v2", "api.yaml"))) return cached;
  const work = await mkdtemp(join(tmpdir(), "dagu1-mod-"));
  try {
    const { stdout: json } = await execFileAsync("go", ["mod", "download", "-json", `${MODULE}@${VERSION}`], {
      cwd: work,
      env: { ...process.env, GOFLAGS: "-mod=mod" },
      timeout: 600_000,
      maxBuffer: 8 * 1024 * 1024,
    });
    const parsed = z.object({ Dir: z.string().optional(), Error: z.string().optional() }).parse(JSON.parse(json));
    if (!parsed.Dir) throw new Error(`go mod download ${MODULE}@${VERSION}: ${parsed.Error ?? "no directory"}`);
    return parsed.Dir;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface SpecOperation {
  method: string;
  path: string;
  operationId: string;
  /** `security: []`: Dagu needs no credential. */
  public: boolean;
  streaming: boolean;
}

const Operation = z.looseObject({
  operationId: z.string(),
  security: z.array(z.unknown()).optional(),
  responses: z.record(z.string(), z.looseObject({ content: z.record(z.string(), z.unknown()).optional() })).optional(),
});

function operationsOf(text: string): SpecOperation[] {
  const doc = z.looseObject({ paths: z.record(z.string(), z.record(z.string(), z.unknown())) }).parse(parse(text, { maxAliasCount: -1 }));
  const ops: SpecOperation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of HTTP_METHODS) {
      if (!(method in item)) continue;
      const op = Operation.parse(item[method]);
      const streaming = Object.values(op.responses ?? {}).some((r) => Object.keys(r.content ?? {}).some((t) => t.startsWith("text/event-stream")));
      ops.push({ method: method.toUpperCase(), path, operationId: op.operationId, public: op.security?.length === 0, streaming });
    }
  }
  return ops;
}

/** Go method bodies of `func (a *API) Name(` in the handler package, by name. */
function goMethods(sources: string[]): Map<string, string> {
  const methods = new Map<string, string>();
  for (const source of sources) {
    const parts = source.split(/\nfunc /);
    for (const part of parts) {
      const m = /^\(a \*API\) ([A-Za-z0-9_]+)\(/.exec(part);
      if (m) methods.set(m[1]!, part);
    }
  }
  return methods;
}

const CHECKS: Record<string, Role> = { requireAdmin: "admin", requireWrite: "developer", requireExecute: "operator" };

/** The least role a handler demands, following calls to other `a.require*` helpers. */
function derivedRole(methods: Map<string, string>, name: string, seen = new Set<string>()): Role {
  const body = methods.get(name) ?? "";
  let role: Role = "viewer";
  for (const call of body.matchAll(/\ba\.(require[A-Za-z]*)\(/g)) {
    const helper = call[1]!;
    const direct = CHECKS[helper];
    const found = direct ?? (seen.has(helper) ? "viewer" : derivedRole(methods, helper, new Set([...seen, helper])));
    if (roleRank(found) > roleRank(role)) role = found;
  }
  return role;
}

const handlerName = (operationId: string) => operationId[0]!.toUpperCase() + operationId.slice(1);
const key = (method: string, path: string) => `${method} ${path}`;

describe(`Dagu ${VERSION} route table (routes-dagu1.ts)`, () => {
  let dir = "";
  let ops: SpecOperation[] = [];
  let methods = new Map<string, string>();
  let frontend: string[] = [];

  before(async () => {
    dir = await moduleDir();
    ops = operationsOf(await readFile(join(dir, "api", "v2", "api.yaml"), "utf8"));
    const handlerDir = join(dir, "internal", "service", "frontend", "api", "v2");
    const files = (await readdir(handlerDir)).filter((f) => f.endsWith(".go") && !f.endsWith("_test.go"));
    methods = goMethods(await Promise.all(files.map((f) => readFile(join(handlerDir, f), "utf8"))));
    frontend = await Promise.all(
      [join(dir, "internal", "service", "frontend", "server.go"), ...files.map((f) => join(handlerDir, f))].map((f) => readFile(f, "utf8")),
    );
  }, { timeout: 600_000 });

  test("every operation of api/v2/api.yaml has an entry, and nothing else does", () => {
    const table = new Map(DAGU1_ROUTES.map((r) => [key(r.method, r.path), r]));
    const missing = ops.filter((o) => !table.has(key(o.method, o.path))).map((o) => `${key(o.method, o.path)} (${o.operationId})`);
    const renamed = ops
      .filter((o) => table.has(key(o.method, o.path)) && table.get(key(o.method, o.path))!.operationId !== o.operationId)
      .map((o) => `${key(o.method, o.path)}: table ${table.get(key(o.method, o.path))!.operationId}, spec ${o.operationId}`);
    const inSpec = new Set(ops.map((o) => key(o.method, o.path)));
    const extra = DAGU1_ROUTES.filter((r) => !inSpec.has(key(r.method, r.path))).map((r) => key(r.method, r.path));
    assert.deepEqual({ missing, renamed, extra }, { missing: [], renamed: [], extra: [] });
    assert.equal(ops.length, 67, "v1.30.3 has 67 operations");
  });

  test("Dagu 1 registers no route outside the document under its API prefix (no SSE, no WebSocket)", () => {
    assert.ok(ops.every((o) => !o.streaming));
    for (const source of frontend) {
      assert.ok(!source.includes("text/event-stream"), "an SSE handler appeared in Dagu's frontend");
      assert.ok(!/websocket\.Upgrader|Upgrade\(/.test(source), "a WebSocket handler appeared in Dagu's frontend");
    }
    assert.ok(DAGU1_ROUTES.every((r) => r.origin === undefined && r.streaming === undefined));
  });

  test("every handler exists, so the derived roles are read from real code", () => {
    const absent = ops.filter((o) => !methods.has(handlerName(o.operationId))).map((o) => o.operationId);
    assert.deepEqual(absent, []);
  });

  test("each entry's role is what Dagu's handler checks, mapped onto the five roles", () => {
    const mismatches: string[] = [];
    for (const op of ops) {
      const route = DAGU1_ROUTES.find((r) => r.method === op.method && r.path === op.path)!;
      const derived = derivedRole(methods, handlerName(op.operationId));
      const expected = STRICTER[op.operationId] ?? derived;
      if (route.minRole !== expected) mismatches.push(`${op.operationId}: table ${route.minRole}, Dagu ${derived}`);
      assert.ok(roleAtLeast(route.minRole, derived), `${op.operationId} is weaker than Dagu (${route.minRole} < ${derived})`);
    }
    assert.deepEqual(mismatches, []);
    for (const [operationId, role] of Object.entries(STRICTER)) {
      const op = ops.find((o) => o.operationId === operationId)!;
      assert.ok(roleRank(role) > roleRank(derivedRole(methods, handlerName(op.operationId))), `${operationId} is no longer stricter than Dagu`);
    }
  });

  test("exactly Dagu's public operations skip authentication", () => {
    const open = DAGU1_ROUTES.filter(isUnauthenticated).map((r) => key(r.method, r.path)).sort();
    // Dagu 1: `security: []` (login, webhook trigger) plus its public path list (health).
    const publicInDagu = ops.filter((o) => o.public || o.path === "/health").map((o) => key(o.method, o.path)).sort();
    assert.deepEqual(open, publicInDagu);
    assert.deepEqual(open, ["GET /health", "POST /auth/login", "POST /webhooks/{fileName}"]);
  });

  test("the sidecar answers auth, users, API keys and all webhook routes; the rest goes to Dagu", () => {
    const local = DAGU1_ROUTES.filter((r) => r.access === "sidecar").map((r) => r.path);
    for (const path of local) assert.match(path, /^\/(auth|users|api-keys|webhooks)(\/|$)|^\/dags\/\{fileName\}\/webhook/);
    const expectedLocal = ops.filter((o) => /^\/(auth|users|api-keys|webhooks)(\/|$)|^\/dags\/\{fileName\}\/webhook/.test(o.path));
    assert.equal(local.length, expectedLocal.length);
  });

  test("representative decisions through the matcher", () => {
    const match = createRouteMatcher(DAGU1_ROUTES, { prefix: DAGU1_API_PREFIX });
    const roleOf = (method: string, path: string): DaguRoute => {
      const m = match(method, `${DAGU1_API_PREFIX}${path}`);
      assert.ok(!("error" in m), `${method} ${path}: ${"error" in m ? m.error : ""}`);
      return m.route;
    };
    assert.equal(roleOf("POST", "/dags/hello/start").minRole, "operator");
    assert.equal(roleOf("POST", "/dags").minRole, "developer");
    assert.equal(roleOf("POST", "/dag-runs").minRole, "developer");
    assert.equal(roleOf("GET", "/dag-runs/hello/r1/dequeue").minRole, "operator");
    assert.equal(roleOf("GET", "/dags/search").operationId, "searchDAGs");
    assert.equal(roleOf("GET", "/users").minRole, "admin");
    assert.deepEqual(match("GET", "/api/v1/dags"), { error: "not_found" });
    assert.deepEqual(match("GET", `${DAGU1_API_PREFIX}/events/app`), { error: "not_found" });
  });
});
