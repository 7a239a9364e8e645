import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ROLES, type Role } from "../../src/api/common.ts";
import { createRouteMatcher, matchRoute, type MatchResult } from "../../src/sidecar/routes/route-matcher.ts";
import { roleAtLeast, roleRank } from "../../src/sidecar/routes/roles.ts";
import { DAGU_ROUTES, type DaguRoute } from "../../src/dagu/routes.ts";

/** "operationId" for a match, the error name otherwise: compact expectations. */
function outcome(result: MatchResult): string {
  return "error" in result ? result.error : result.route.operationId;
}

function allowed(role: Role, method: string, path: string): boolean {
  const result = matchRoute(method, path);
  assert.ok(!("error" in result), `${method} ${path} should match a route, got ${outcome(result)}`);
  return roleAtLeast(role, result.route.minRole);
}

describe("roles", () => {
  test("ranks follow admin > manager > developer > operator > viewer", () => {
    assert.deepEqual(
      ROLES.map((role) => roleRank(role)),
      [5, 4, 3, 2, 1],
    );
    assert.equal(roleAtLeast("admin", "viewer"), true);
    assert.equal(roleAtLeast("manager", "developer"), true);
    assert.equal(roleAtLeast("developer", "manager"), false);
    assert.equal(roleAtLeast("viewer", "viewer"), true);
    assert.equal(roleAtLeast("operator", "developer"), false);
  });

  test("unknown or differently-cased roles never pass", () => {
    for (const bogus of ["", "Admin", "ADMIN", "root", "superuser", " admin", "admin\u0000", "__proto__", "toString"]) {
      assert.equal(roleAtLeast(bogus, "viewer"), false, JSON.stringify(bogus));
    }
  });
});

describe("authorization per role", () => {
  // [method, path, least role that passes]
  const cases: readonly (readonly [string, string, Role])[] = [
    ["GET", "/api/v1/dags", "viewer"],
    ["GET", "/api/v1/dag-runs/etl/20240101_120000/log", "viewer"],
    ["GET", "/api/v1/events/stream", "viewer"],
    ["POST", "/api/v1/dags/etl.yaml/start", "operator"],
    ["POST", "/api/v1/dag-runs/etl/r1/stop", "operator"],
    ["GET", "/api/v1/dag-runs/etl/r1/dequeue", "operator"],
    ["POST", "/api/v1/dag-runs/etl/r1/steps/deploy%20prod/approve", "operator"],
    ["POST", "/api/v1/dag-runs", "developer"],
    ["POST", "/api/v1/dag-runs/enqueue", "developer"],
    ["PUT", "/api/v1/dags/etl/spec", "developer"],
    ["POST", "/api/v1/dags/validate", "developer"],
    ["DELETE", "/api/v1/dag-runs/etl/r1", "developer"],
    ["GET", "/api/v1/services/scheduler", "developer"],
    ["GET", "/api/v1/audit", "manager"],
    ["GET", "/api/v1/event-logs", "manager"],
    ["POST", "/api/v1/secrets", "manager"],
    ["GET", "/api/v1/users", "admin"],
    ["POST", "/api/v1/api-keys", "admin"],
    ["GET", "/api/v1/remote-nodes", "admin"],
    ["PUT", "/api/v1/sync/config", "admin"],
    ["GET", "/api/v1/terminal/ws", "admin"],
  ];
  for (const [method, path, least] of cases) {
    test(`${method} ${path}: ${least} and above`, () => {
      for (const role of ROLES) {
        assert.equal(allowed(role, method, path), roleRank(role) >= roleRank(least), `${role} on ${method} ${path}`);
      }
    });
  }

  test("unauthenticated and sidecar-answered routes are flagged", () => {
    const health = matchRoute("GET", "/api/v1/health");
    assert.ok(!("error" in health));
    assert.equal(health.route.access, "public");
    const login = matchRoute("POST", "/api/v1/auth/login");
    assert.ok(!("error" in login));
    assert.equal(login.route.access, "sidecar");
    assert.equal(login.route.unauthenticated, true);
    const trigger = matchRoute("POST", "/api/v1/webhooks/etl");
    assert.ok(!("error" in trigger));
    assert.deepEqual([trigger.route.access, trigger.route.unauthenticated, trigger.params], ["sidecar", true, { fileName: "etl" }]);
    const me = matchRoute("GET", "/api/v1/auth/me");
    assert.ok(!("error" in me));
    assert.deepEqual([me.route.access, me.route.unauthenticated], ["sidecar", undefined]);
  });
});

describe("path tricks", () => {
  // Each: [method, raw path, expected operationId | "not_found" | "bad_path", params when matched]
  const tricks: readonly (readonly [string, string, string, Record<string, string>?])[] = [
    // the plain forms
    ["GET", "/api/v1/dags/etl/spec", "getDAGSpec", { fileName: "etl" }],
    ["GET", "/api/v1/dags/search", "searchDAGs", {}],
    // encoded slash and backslash
    ["GET", "/api/v1/dags/a%2Fb/spec", "bad_path"],
    ["GET", "/api/v1/dags/a%2fb/spec", "bad_path"],
    ["GET", "/api/v1/dags/a%5cb/spec", "bad_path"],
    ["GET", "/api/v1/dags/a%5Cb/spec", "bad_path"],
    ["GET", "/api/v1/dags/a\\b/spec", "bad_path"],
    ["GET", "/api/v1/dags%2Fetl/spec", "bad_path"],
    ["GET", "/api/v1/nope/a%2Fb", "bad_path"],
    // a slash-carrying parameter (sync item IDs of nested documents), still checked after decoding
    ["GET", "/api/v1/sync/items/docs%2Frunbook/diff", "getSyncItemDiff", { itemId: "docs/runbook" }],
    ["GET", "/api/v1/sync/items/docs%2F..%2Fetc/diff", "bad_path"],
    ["GET", "/api/v1/sync/items/%2Fetc/diff", "bad_path"],
    ["GET", "/api/v1/sync/items/a%2F%2Fb/diff", "bad_path"],
    ["GET", "/api/v1/sync/items/a%5Cb/diff", "bad_path"],
    // dot segments, raw and encoded
    ["GET", "/api/v1/dags/../users", "bad_path"],
    ["GET", "/api/v1/dags/./etl", "bad_path"],
    ["GET", "/api/v1/./dags", "bad_path"],
    ["GET", "/api/v1/dags/%2e%2e/spec", "bad_path"],
    ["GET", "/api/v1/dags/%2E%2E/spec", "bad_path"],
    ["GET", "/api/v1/dags/.%2e/spec", "bad_path"],
    ["GET", "/api/v1/dags/%2e/spec", "bad_path"],
    ["GET", "/api/v1/dags/..etl/spec", "getDAGSpec", { fileName: "..etl" }],
    ["GET", "/api/v1/dags/%2e%2eetl/spec", "bad_path"],
    ["GET", "/api/v1/dags/%6Cabels", "bad_path"],
    ["GET", "/api/v1/dags/%7E", "bad_path"],
    ["GET", "/api/v1/dags/a%2Db", "bad_path"],
    // double and trailing slashes
    ["GET", "/api/v1//dags", "bad_path"],
    ["GET", "//api/v1/dags", "bad_path"],
    ["GET", "/api/v1/dags//spec", "bad_path"],
    ["GET", "/api/v1/dags/", "not_found"],
    ["GET", "/api/v1/dags/etl/spec/", "not_found"],
    ["GET", "/api/v1/", "not_found"],
    ["GET", "/api/v1", "not_found"],
    // case and encoding of static segments (chi compares raw, case-sensitive)
    ["GET", "/API/v1/dags", "not_found"],
    ["GET", "/api/V1/dags", "not_found"],
    ["GET", "/api/v1/DAGS", "not_found"],
    ["GET", "/api/v1/d%61gs", "bad_path"],
    ["GET", "/api/v%31/dags", "bad_path"],
    // methods
    ["HEAD", "/api/v1/dags", "not_found"],
    ["OPTIONS", "/api/v1/dags", "not_found"],
    ["get", "/api/v1/dags", "not_found"],
    ["TRACE", "/api/v1/dags", "not_found"],
    // matrix parameters, query, fragment
    ["GET", "/api/v1/dags;x=1", "bad_path"],
    ["GET", "/api/v1/dags/etl;jsessionid=1/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl%3Bx/spec", "getDAGSpec", { fileName: "etl;x" }],
    ["GET", "/api/v1/dags?remoteNode=local", "bad_path"],
    ["GET", "/api/v1/dags#x", "bad_path"],
    // percent-encoding validity, NUL and control characters
    ["GET", "/api/v1/dags/etl%/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl%zz/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl%2/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl%00/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl\u0000/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl%0d%0aX-Injected:%201/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl%7f/spec", "bad_path"],
    ["GET", "/api/v1/dags/etl\t/spec", "bad_path"],
    ["GET", "/api/v1/dags/e tl/spec", "bad_path"],
    // unicode: raw non-ASCII refused, valid UTF-8 escapes decoded, invalid or overlong UTF-8 refused
    ["GET", "/api/v1/dags/ét/spec", "bad_path"],
    ["GET", "/api/v1/dags/%C3%A9t/spec", "getDAGSpec", { fileName: "ét" }],
    ["GET", "/api/v1/dags/%C0%AE%C0%AE/spec", "bad_path"],
    ["GET", "/api/v1/dags/%FF/spec", "bad_path"],
    ["GET", "/api/v1/dags/%E2%80%AE/spec", "getDAGSpec", { fileName: "\u202e" }],
    // double encoding: Dagu may decode a value twice, so an encoded `%` is refused anywhere (issue 15)
    ["GET", "/api/v1/dags/%252e%252e/spec", "bad_path"],
    ["GET", "/api/v1/dags/a%252Fb/spec", "bad_path"],
    ["GET", "/api/v1/dags/%252Fetc%252Fdagu%252Fconfig/spec", "bad_path"],
    ["GET", "/api/v1/dags/..%252F..%252Fx/spec", "bad_path"],
    ["GET", "/api/v1/sync/items/..%252F..%252Fetc/diff", "bad_path"],
    ["GET", "/api/v1/sync/items/a%255Cb/diff", "bad_path"],
    ["GET", "/api/v1/dags/etl%2500/spec", "bad_path"],
    ["GET", "/api/v1/dags/%25%32%65%25%32%65/spec", "bad_path"],
    ["GET", "/api/v1/dags/%25/spec", "bad_path"],
    ["GET", "/%252e%252e/etc/passwd", "bad_path"],
    ["GET", "/api/v2/dags/%252Fetc%252Fdagu%252Fconfig/spec", "bad_path"],
    // overlong paths
    ["GET", `/api/v1/dags/${"a".repeat(5000)}`, "bad_path"],
    ["GET", "", "bad_path"],
    ["GET", "api/v1/dags", "bad_path"],
    // static before parameter, with per-method fallback like chi
    ["POST", "/api/v1/dag-runs/enqueue", "enqueueDAGRunFromSpec", {}],
    ["GET", "/api/v1/dag-runs/enqueue", "listDAGRunsByName", { name: "enqueue" }],
    ["GET", "/api/v1/dags/validate", "getDAGDetails", { fileName: "validate" }],
    ["PATCH", "/api/v1/profiles/_global", "updateGlobalRuntimeProfileDefaults", {}],
    ["DELETE", "/api/v1/profiles/_global", "deleteRuntimeProfile", { profileName: "_global" }],
    // routes outside the OpenAPI document
    ["GET", "/api/v1/events/stream", "sseMultiplexStream", {}],
    ["GET", "/api/v1/terminal/ws", "terminalWebSocket", {}],
    // outside the API mount
    ["GET", "/dags", "not_found"],
    ["GET", "/api/v2/dags", "not_found"],
    ["GET", "/api/v1x/dags", "not_found"],
  ];

  for (const [method, path, expected, params] of tricks) {
    const label = path.length > 80 ? `${path.slice(0, 80)}…` : path;
    test(`${method} ${JSON.stringify(label)} → ${expected}`, () => {
      const result = matchRoute(method, path);
      assert.equal(outcome(result), expected);
      if (!("error" in result)) {
        assert.deepEqual(result.params, params ?? {});
        assert.equal(result.normalizedPath, path);
      }
    });
  }

  test("at least 25 tricks are covered", () => {
    assert.ok(tricks.length >= 25);
  });
});

describe("compiled table", () => {
  function fill(route: DaguRoute): string {
    let n = 0;
    return "/api/v1" + route.path.replace(/\{[^}]+\}/g, () => `p${n++}x`);
  }

  test("every route is reachable from its own template (no static shadowing)", () => {
    for (const route of DAGU_ROUTES) {
      const result = matchRoute(route.method, fill(route));
      assert.equal(outcome(result), route.operationId, `${route.method} ${route.path}`);
    }
  });

  test("checks Dagu makes on its own data fail closed: every runtime profile route, DAG settings writes and the agent stream need admin", () => {
    const dataDependent = DAGU_ROUTES.filter(
      (r) => r.path.startsWith("/profiles") || (r.path === "/dags/{fileName}/settings" && r.method !== "GET") || r.operationId === "agentSessionStream",
    );
    assert.ok(dataDependent.length >= 20, `found ${dataDependent.length}`);
    assert.deepEqual(dataDependent.filter((r) => r.minRole !== "admin").map((r) => `${r.method} ${r.path}`), []);
  });

  test("a custom mount point moves the whole table", () => {
    const matcher = createRouteMatcher(DAGU_ROUTES, { prefix: "/dagu/api/v1" });
    assert.equal(outcome(matcher("GET", "/dagu/api/v1/dags")), "listDAGs");
    assert.equal(outcome(matcher("GET", "/api/v1/dags")), "not_found");
  });

  test("malformed tables and prefixes are refused at compile time", () => {
    const base = { operationId: "x", minRole: "viewer" } as const;
    assert.throws(() => createRouteMatcher([{ ...base, method: "GET", path: "/a" }, { ...base, method: "GET", path: "/a" }]), /duplicate/);
    assert.throws(() => createRouteMatcher([{ ...base, method: "GET", path: "/a/../b" }]), /bad segment/);
    assert.throws(() => createRouteMatcher([{ ...base, method: "GET", path: "/a/" }]), /bad template/);
    assert.throws(() => createRouteMatcher([{ ...base, method: "GET", path: "/a/{p}", slashParams: ["q"] }]), /slash parameter/);
    assert.throws(() => createRouteMatcher(DAGU_ROUTES, { prefix: "/api/v1/" }), /prefix/);
    assert.throws(() => createRouteMatcher(DAGU_ROUTES, { prefix: "/api/../v1" }), /prefix/);
  });
});

describe("property: the matcher is total and only accepts normal paths", () => {
  const pieces = [
    "api", "v1", "API", "dags", "dag-runs", "sync", "items", "diff", "spec", "etl", "search", "enqueue",
    "events", "stream", "users", "_global", "profiles", "webhooks", "steps", "log",
    ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%25", "%00", "%0a", "%C0%AE", "%E2%9C%93", "%FF",
    "%252e", "%252E", "%252f", "%252F", "%255c", "%255C", "%2500", "%250a", "%25%32%65", "%25%32%66", "%2",
    "%", "%2", "%zz", "\\", ";", "?", "#", " ", "\u0000", "é", "\uFFFF", "+", "~", "@", ":",
  ];
  const rawPath = fc
    .array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 4 }), fc.constant("/")), { maxLength: 14 })
    .map((parts) => parts.join(""))
    .chain((tail) => fc.constantFrom(`/api/v1/${tail}`, `/${tail}`, tail));
  const templatePath = fc
    .tuple(fc.constantFrom(...DAGU_ROUTES), fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 6 })), { minLength: 6, maxLength: 6 }))
    .map(([route, fills]) => {
      let n = 0;
      return { method: route.method, path: "/api/v1" + route.path.replace(/\{[^}]+\}/g, () => fills[n++ % fills.length] ?? "") };
    });
  const slashParamPath = fc
    .tuple(
      fc.constantFrom(...DAGU_ROUTES.filter((route) => route.slashParams !== undefined)),
      fc.array(fc.oneof(fc.constantFrom(...pieces), fc.string({ maxLength: 4 })), { minLength: 1, maxLength: 4 }),
    )
    .map(([route, parts]) => ({ method: route.method, path: "/api/v1" + route.path.replace(/\{[^}]+\}/g, () => parts.join("%2F")) }));
  const method = fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get");

  function checkAccepted(result: MatchResult, input: string): void {
    if ("error" in result) {
      assert.ok(result.error === "not_found" || result.error === "bad_path");
      return;
    }
    const path = result.normalizedPath;
    assert.equal(path, input);
    assert.ok(!path.includes("//"), "no empty segment");
    assert.ok(!/%5c|\\/i.test(path), "no backslash");
    const segments = path.slice(1).split("/");
    for (const segment of segments) {
      assert.ok(segment !== "." && segment !== "..", `raw dot segment in ${path}`);
      const decoded = decodeURIComponent(segment);
      assert.ok(decoded !== "." && decoded !== "..", `encoded dot segment in ${path}`);
      // An encoded slash only inside a parameter declared to carry one, and then without dot parts.
      if (/%2f/i.test(segment)) {
        const slashParams = result.route.slashParams ?? [];
        const carrier = slashParams.find((name) => result.params[name] === decoded);
        assert.ok(carrier !== undefined, `encoded slash outside a slash parameter in ${path}`);
        assert.ok(decoded.split("/").every((part) => part !== "" && part !== "." && part !== ".."), `dot part in ${decoded}`);
      }
    }
    for (const value of Object.values(result.params)) {
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u001f\u007f\\]/.test(value), `control character or backslash in ${JSON.stringify(value)}`);
      // Dagu may decode a value a second time (issue 15): that must change nothing.
      assert.ok(!value.includes("%"), `a value that a second decoding would change: ${JSON.stringify(value)}`);
    }
    // The whole path decoded twice, as Dagu may see it, passes the same checks as decoded once.
    for (const segment of segments) {
      const twice = decodeURIComponent(decodeURIComponent(segment));
      assert.ok(twice !== "." && twice !== "..", `dot segment after two decodings in ${path}`);
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u001f\u007f\\]/.test(twice), `control character or backslash after two decodings in ${path}`);
      if (twice.includes("/")) {
        const slashParams = result.route.slashParams ?? [];
        assert.ok(slashParams.some((name) => result.params[name] === twice), `slash after two decodings outside a slash parameter in ${path}`);
        assert.ok(twice.split("/").every((part) => part !== "" && part !== "." && part !== ".."), `dot part after two decodings in ${path}`);
      }
    }
    // Matching is stable: the accepted path matches the same route again.
    const again = matchRoute(result.route.method, path);
    assert.ok(!("error" in again) && again.route === result.route);
  }

  test("arbitrary strings", () => {
    fc.assert(
      fc.property(method, rawPath, (m, p) => {
        checkAccepted(matchRoute(m, p), p);
      }),
      { numRuns: 3000 },
    );
  });

  test("route templates filled with tricky parameters", () => {
    fc.assert(
      fc.property(templatePath, ({ method: m, path }) => {
        checkAccepted(matchRoute(m, path), path);
      }),
      { numRuns: 3000 },
    );
  });

  test("slash-carrying parameters built from tricky parts", () => {
    fc.assert(
      fc.property(slashParamPath, ({ method: m, path }) => {
        checkAccepted(matchRoute(m, path), path);
      }),
      { numRuns: 2000 },
    );
  });

  // Issue 12.3: what the sidecar decided is what Dagu's UI would have sent for that route and those values;
  // the integration differential (sidecar-route-differential.test.ts) then checks Dagu agrees.
  test("an accepted path decides the same route and values as their canonical spelling (encodeURIComponent)", () => {
    const canonical = (route: DaguRoute, params: Readonly<Record<string, string>>) =>
      "/api/v1" + route.path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
    fc.assert(
      fc.property(fc.oneof(templatePath, slashParamPath, rawPath.map((path) => ({ method: "GET", path }))), ({ method: m, path }) => {
        const first = matchRoute(m, path);
        if ("error" in first) return;
        const again = matchRoute(m, canonical(first.route, first.params));
        assert.ok(!("error" in again), `${path}: its canonical spelling is refused`);
        assert.equal(again.route, first.route, path);
        assert.deepEqual(again.params, first.params, path);
      }),
      { numRuns: 3000 },
    );
  });

  test("fully arbitrary input never throws", () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ maxLength: 300 }), (m, p) => {
        const result = matchRoute(m, p);
        assert.ok("error" in result || result.normalizedPath === p);
      }),
      { numRuns: 2000 },
    );
  });
});
