// The sidecar (the real CLI) in front of a real Dagu (v2.15.1, auth off) with a credentials file:
// login and /auth/me, each role against representative operations, inline specs, API keys, the
// change-password flow across a restart (--state-dir), credential changes enforced live, fail-closed
// behaviour, and the UI page.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Credentials } from "../../src/api/credentials.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

const API = "/api/v1";
let dagu: DaguInstance;
let dir: string;
let credsFile: string;
let stateDir: string;
let built: TestCredentials;
let sidecar: SidecarInstance;

const USERS = [
  { username: "admin", password: "admin-password-1", role: "admin" },
  { username: "manny", password: "manager-password-1", role: "manager" },
  { username: "dev", password: "developer-password-1", role: "developer" },
  { username: "opal", password: "operator-password-1", role: "operator" },
  { username: "vic", password: "viewer-password-1", role: "viewer" },
  { username: "carol", password: "carol-password-1", role: "viewer" },
  { username: "dora", password: "dora-password-1", role: "viewer" },
  { username: "frozen", password: "frozen-password-1", role: "admin", disabled: true },
] as const;

async function writeCredentials(credentials: Credentials): Promise<void> {
  // Replace atomically, as an editor or a Kubernetes volume update would.
  await writeFile(`${credsFile}.tmp`, JSON.stringify(credentials));
  await rename(`${credsFile}.tmp`, credsFile);
}

async function call(method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${sidecar.url}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, text, json: json as Record<string, unknown> | undefined, headers: response.headers };
}

async function login(username: string, password: string): Promise<string> {
  const r = await call("POST", `${API}/auth/login`, { body: { username, password } });
  assert.equal(r.status, 200, `login ${username}: ${r.text}`);
  return r.json!.token as string;
}

const tokens: Record<string, string> = {};

before(async () => {
  dagu = await startDagu();
  dir = await mkdtemp(join(tmpdir(), "sidecar-standalone-"));
  credsFile = join(dir, "credentials.json");
  stateDir = join(dir, "state");
  built = await buildCredentials({
    users: USERS.map((u) => ({ ...u })),
    apiKeys: [
      { name: "ci", role: "operator" },
      { name: "old", role: "admin", expiresAt: "2020-01-01T00:00:00Z" },
    ],
  });
  await writeCredentials(built.credentials);
  sidecar = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", credsFile, "--state-dir", stateDir] });
  for (const u of USERS) if (!("disabled" in u)) tokens[u.username] = await login(u.username, u.password);
});

after(async () => {
  await sidecar?.stop();
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("login and /auth/me", () => {
  test("login returns Dagu's shape; /auth/me names the user and the role", async () => {
    const r = await call("POST", `${API}/auth/login`, { body: { username: "dev", password: "developer-password-1" } });
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json!).sort(), ["expiresAt", "token", "user"]);
    const user = r.json!.user as Record<string, unknown>;
    assert.equal(user.username, "dev");
    assert.equal(user.id, built.userIds.dev);
    assert.equal(user.role, "developer");
    assert.ok(Date.parse(r.json!.expiresAt as string) > Date.now() + 3500_000);
    const me = await call("GET", `${API}/auth/me`, { token: r.json!.token as string });
    assert.equal(me.status, 200);
    assert.equal((me.json!.user as Record<string, unknown>).username, "dev");
    const vic = await call("GET", `${API}/auth/me`, { token: tokens.vic });
    assert.equal((vic.json!.user as Record<string, unknown>).role, "viewer");
  });

  test("a wrong password, an unknown user and a disabled user get the same generic 401", async () => {
    for (const [username, password] of [["dev", "nope-nope-nope"], ["nobody", "whatever-1"], ["frozen", "frozen-password-1"]]) {
      const r = await call("POST", `${API}/auth/login`, { body: { username, password } });
      assert.equal(r.status, 401, username);
      assert.deepEqual(r.json, { code: "unauthorized", message: "Invalid username or password" });
    }
  });
});

describe("roles against representative operations", () => {
  const table: [user: string, method: string, path: string, body: unknown, expected: number | "proxied"][] = [
    ["vic", "GET", "/dags", undefined, 200],
    ["vic", "GET", "/dags/hello", undefined, 200],
    ["vic", "GET", "/dag-runs", undefined, 200],
    ["vic", "GET", "/queues", undefined, 200],
    ["vic", "POST", "/dags/hello/start", {}, 403],
    ["vic", "POST", "/dags/hello/enqueue", {}, 403],
    ["vic", "GET", "/dag-runs/hello/none/dequeue", undefined, 403],
    ["opal", "POST", "/dags/hello/start", {}, 200],
    ["opal", "GET", "/dag-runs/hello/none/dequeue", undefined, "proxied"],
    ["opal", "POST", "/dags", { name: "not-by-operator" }, 403],
    ["opal", "PUT", "/dags/hello/spec", { spec: "steps: []" }, 403],
    ["opal", "POST", "/dag-runs", { spec: "steps:\n  - command: echo inline" }, 403],
    ["opal", "POST", "/dag-runs/enqueue", { spec: "steps:\n  - command: echo inline" }, 403],
    ["opal", "POST", "/dags/validate", { spec: "steps: []" }, 403],
    ["dev", "POST", "/dags", { name: "made-by-dev" }, 201],
    ["dev", "POST", "/dag-runs", { name: "inline-by-dev", spec: "steps:\n  - command: echo inline" }, 200],
    ["dev", "GET", "/users", undefined, 403],
    ["opal", "GET", "/webhooks", undefined, 403],
    ["dev", "GET", "/webhooks", undefined, 200],
    ["manny", "GET", "/users", undefined, 403],
    ["manny", "POST", "/dags", { name: "made-by-manager" }, 201],
    ["admin", "GET", "/users", undefined, 200],
    ["admin", "GET", "/api-keys", undefined, 200],
    ["admin", "GET", "/webhooks", undefined, 200],
    ["admin", "POST", "/users", { username: "x", password: "xxxxxxxxxx", role: "viewer" }, 403],
    ["admin", "DELETE", `/api-keys/some-id`, undefined, 403],
  ];
  for (const [user, method, path, body, expected] of table) {
    test(`${user} ${method} ${path} -> ${expected}`, async () => {
      const r = await call(method, `${API}${path}`, { token: tokens[user], body });
      if (expected === "proxied") assert.ok(![401, 403].includes(r.status), `${r.status} ${r.text}`);
      else assert.equal(r.status, expected, r.text);
    });
  }

  test("listings come from the credentials, without secret material, and writes name the resource", async () => {
    const users = await call("GET", `${API}/users`, { token: tokens.admin });
    const list = users.json!.users as Record<string, unknown>[];
    assert.equal(list.length, USERS.length);
    // Dagu 2's user shape (all workspaces); `isDisabled` only when true (the frozen admin).
    assert.deepEqual(
      [...new Set(list.map((u) => Object.keys(u).sort().join()))].sort(),
      ["authProvider,createdAt,id,isDisabled,role,updatedAt,username,workspaceAccess", "authProvider,createdAt,id,role,updatedAt,username,workspaceAccess"],
    );
    const keys = await call("GET", `${API}/api-keys`, { token: tokens.admin });
    assert.ok(!keys.text.includes(built.credentials.apiKeys[0]!.digest));
    assert.ok(!users.text.includes("$argon2id$"));
    const refused = await call("POST", `${API}/users`, { token: tokens.admin, body: {} });
    assert.match(String(refused.json!.message), /DaguUser/);
    const refusedKey = await call("POST", `${API}/api-keys`, { token: tokens.admin, body: {} });
    assert.match(String(refusedKey.json!.message), /DaguApiKey/);
    const refusedHook = await call("POST", `${API}/dags/hello/webhook`, { token: tokens.admin, body: {} });
    assert.match(String(refusedHook.json!.message), /DaguWebhook/);
  });

  test("the developer's inline run really ran in Dagu", async () => {
    const runs = await eventually("the inline run in Dagu", async () => {
      const r = await fetch(`${dagu.url}/api/v1/dag-runs?name=inline-by-dev`);
      const json = (await r.json()) as { dagRuns: unknown[] | null };
      return json.dagRuns && json.dagRuns.length > 0 ? json.dagRuns : undefined;
    }, 15_000);
    assert.ok(runs.length >= 1);
  });
});

describe("API keys", () => {
  test("an operator key starts a DAG, cannot create one, and is named apikey:<name>", async () => {
    assert.equal((await call("POST", `${API}/dags/hello/start`, { token: built.apiKeys.ci, body: {} })).status, 200);
    assert.equal((await call("POST", `${API}/dags`, { token: built.apiKeys.ci, body: { name: "by-key" } })).status, 403);
    const me = await call("GET", `${API}/auth/me`, { token: built.apiKeys.ci });
    assert.equal((me.json!.user as Record<string, unknown>).username, "apikey:ci");
  });

  test("an expired key is refused", async () => {
    assert.equal((await call("GET", `${API}/dags`, { token: built.apiKeys.old })).status, 401);
  });
});

describe("change password", () => {
  test("old password and earlier tokens refused, new login works, and it survives a restart (--state-dir)", async () => {
    const before = await login("carol", "carol-password-1");
    const wrong = await call("POST", `${API}/auth/change-password`, { token: before, body: { currentPassword: "not-it-at-all", newPassword: "carol-password-2" } });
    assert.equal(wrong.status, 401);
    const short = await call("POST", `${API}/auth/change-password`, { token: before, body: { currentPassword: "carol-password-1", newPassword: "short" } });
    assert.equal(short.status, 400);
    const ok = await call("POST", `${API}/auth/change-password`, { token: before, body: { currentPassword: "carol-password-1", newPassword: "carol-password-2" } });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json, { message: "Password changed successfully" });

    assert.equal((await call("GET", `${API}/auth/me`, { token: before })).status, 401, "a token issued before the change");
    assert.equal((await call("POST", `${API}/auth/login`, { body: { username: "carol", password: "carol-password-1" } })).status, 401);
    const after = await login("carol", "carol-password-2");
    assert.equal((await call("GET", `${API}/auth/me`, { token: after })).status, 200);

    const port = sidecar.port;
    assert.equal(await sidecar.stop(), 0);
    sidecar = await startSidecar({ upstream: dagu.url, port, args: ["--credentials-file", credsFile, "--state-dir", stateDir] });
    assert.equal((await call("POST", `${API}/auth/login`, { body: { username: "carol", password: "carol-password-1" } })).status, 401);
    await login("carol", "carol-password-2");
    assert.equal((await call("GET", `${API}/auth/me`, { token: after })).status, 200, "the signing key comes from the file, so tokens survive");
    assert.equal((await call("GET", `${API}/auth/me`, { token: before })).status, 401);
  });

  test("API keys cannot change a password", async () => {
    const r = await call("POST", `${API}/auth/change-password`, { token: built.apiKeys.ci, body: { currentPassword: "x", newPassword: "yyyyyyyyyy" } });
    assert.equal(r.status, 403);
  });
});

describe("live credential changes", () => {
  test("a role change and a disabled user take effect within about a second", async () => {
    const dora = tokens.dora!;
    assert.equal((await call("POST", `${API}/dags/hello/start`, { token: dora, body: {} })).status, 403);
    const promoted = structuredClone(built.credentials);
    promoted.generation += 1;
    promoted.users = promoted.users.map((u) => (u.username === "dora" ? { ...u, role: "operator" as const } : u));
    const t0 = Date.now();
    await writeCredentials(promoted);
    await eventually("dora is an operator", async () => (await call("POST", `${API}/dags/hello/start`, { token: dora, body: {} })).status === 200, 5_000, 50);
    const promotedAfter = Date.now() - t0;

    const disabled = structuredClone(promoted);
    disabled.generation += 1;
    disabled.users = disabled.users.map((u) => (u.username === "dora" ? { ...u, disabled: true } : u));
    const t1 = Date.now();
    await writeCredentials(disabled);
    await eventually("dora is refused", async () => (await call("GET", `${API}/dags`, { token: dora })).status === 401, 5_000, 50);
    const disabledAfter = Date.now() - t1;
    // The file is polled about once a second; 2.5 s leaves room for a loaded machine (1.6 s seen at load 17).
    assert.ok(promotedAfter < 2500 && disabledAfter < 2500, `promoted after ${promotedAfter} ms, disabled after ${disabledAfter} ms`);
    built.credentials = disabled;
  });

  test("an invalid document keeps the last good one in force and turns readiness off", async () => {
    await writeFile(credsFile, JSON.stringify({ ...built.credentials, users: [{ username: "broken" }] }));
    await eventually("not ready", async () => (await fetch(`${sidecar.url}/readyz`)).status === 503, 5_000, 50);
    const ready = await call("GET", "/readyz");
    assert.equal((ready.json as Record<string, unknown>).reason, "latest credentials document is invalid");
    assert.equal((await call("GET", `${API}/dags`, { token: tokens.vic })).status, 200, "last good document still enforced");
    await login("admin", "admin-password-1");
    await writeCredentials({ ...built.credentials, generation: built.credentials.generation + 1 });
    await eventually("ready again", async () => (await fetch(`${sidecar.url}/readyz`)).status === 200, 5_000, 50);
  });
});

describe("fail closed", () => {
  test("without any credentials every request is 503, until a valid document appears", async () => {
    const missing = join(dir, "later.json");
    const closed = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", missing], wait: "live" });
    try {
      for (const [method, path] of [["GET", `${API}/dags`], ["POST", `${API}/auth/login`], ["GET", `${API}/health`], ["GET", "/"], ["POST", `${API}/webhooks/hello`]]) {
        const r = await fetch(`${closed.url}${path}`, { method, headers: { authorization: `Bearer ${tokens.admin}` } });
        assert.equal(r.status, 503, `${method} ${path}`);
        await r.arrayBuffer();
      }
      assert.equal((await fetch(`${closed.url}/readyz`)).status, 503);
      assert.equal((await fetch(`${closed.url}/healthz`)).status, 200);
      await writeFile(missing, JSON.stringify(built.credentials));
      await eventually("ready", async () => (await fetch(`${closed.url}/readyz`)).status === 200, 5_000, 50);
      const r = await fetch(`${closed.url}${API}/dags`, { headers: { authorization: `Bearer ${tokens.vic}` } });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    } finally {
      await closed.stop();
    }
  });
});

describe("the UI", () => {
  test("Dagu's page runs in builtin mode with a correct Content-Length; pages and assets need no credential", async () => {
    const page = await fetch(`${sidecar.url}/`);
    const html = await page.text();
    assert.equal(page.status, 200);
    assert.match(html, /authMode: "builtin",/);
    assert.doesNotMatch(html, /authMode: "none"/);
    assert.equal(Number(page.headers.get("content-length")), Buffer.byteLength(html));
    const deep = await fetch(`${sidecar.url}/dags/hello`);
    assert.match(await deep.text(), /authMode: "builtin"/);
    const asset = await fetch(`${sidecar.url}/assets/favicon.ico`);
    await asset.arrayBuffer();
    assert.notEqual(asset.status, 401);
  });

  test("the other generation's /api/v2 is refused, with or without a credential", async () => {
    for (const token of [undefined, tokens.admin]) {
      const r = await call("GET", "/api/v2/dags", { token });
      assert.equal(r.status, 404);
    }
  });
});
