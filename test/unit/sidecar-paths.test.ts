// Paths outside the route table: which are never UI pages, and what the audit log may show.
import assert from "node:assert/strict";
import { test } from "node:test";
import { isReservedPath, loggablePath } from "../../src/sidecar/routes/paths.ts";

test("an api segment, or a profile's own, is reserved anywhere in the path, in any case or encoding", () => {
  const reserved = ["mcp", "oidc-login"];
  for (const path of ["/api", "/api/v1/dags", "/API/v1/dags", "/%61pi/v1", "/Api/", "/mcp", "/MCP/x", "/%6Dcp", "/oidc-login"]) {
    assert.equal(isReservedPath(path, reserved), true, path);
  }
  // Dagu mounts its API under its basePath: /<base>/api/v2/dags is Dagu's API, not a page.
  for (const path of ["/dagu/api/v2/dags", "/dagu/API/v1/dags", "/a/b/%61%70%69/v2/health", "/dagu/api", "/dagu/mcp", "/x/oidc-login"]) {
    assert.equal(isReservedPath(path, reserved), true, path);
  }
  for (const path of ["/", "/apis", "/dags/apix", "/assets/bundle.js", "/mcpx", "/dags/hello", "/dagu/", "/dagu/dags/hello"]) {
    assert.equal(isReservedPath(path, reserved), false, path);
  }
  assert.equal(isReservedPath("/%E0%A4%A", []), true, "undecodable: refused");
});

test("segments that look like credentials never reach the log", () => {
  assert.equal(loggablePath("/dags/hello"), "/dags/hello");
  assert.equal(loggablePath("/api/v2/eyJhbGciOiJIUzI1NiJ9.e30.x"), "/api/v2/[redacted]");
  assert.equal(loggablePath("/dagu_4Bq8xZ"), "/[redacted]");
  assert.equal(loggablePath(`/x/${"a".repeat(64)}`), "/x/[redacted]");
  assert.ok(loggablePath(`/${"b/".repeat(300)}`).length < 300);
});
