// The standalone sidecar (the real CLI) in front of a real Dagu, on the examples of Dagu's Authentication
// page: its YAML and its environment variables start it, with and without initial_admin (then Dagu's
// first-run setup page creates the first admin); users, API keys and webhooks are created, changed and
// deleted through Dagu's own routes, work at once, and are kept in --state-dir across a restart.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { repoRoot } from "../../dev/components.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";

/** The page's examples, as fixtures (test/fixtures/convert/page-*.yaml) and as variables. */
const PAGE_YAML = join(repoRoot, "test", "fixtures", "convert", "page-builtin.yaml");
const PAGE_YAML_NO_ADMIN = join(repoRoot, "test", "fixtures", "convert", "page-builtin-no-admin.yaml");
const PAGE_ENV = {
  DAGU_AUTH_MODE: "builtin",
  DAGU_AUTH_TOKEN_SECRET: "your-secure-random-secret",
  DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "admin",
  DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "your-secure-password",
};
const env = (vars: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? "", ...vars });

let dagu: DaguInstance;
let API: string;
let dir: string;

before(async () => {
  dagu = await startDagu();
  // Dagu 2 serves /api/v1 (five roles), Dagu 1 /api/v2 (four: our developer is its manager).
  API = dagu.api;
  dir = await mkdtemp(join(tmpdir(), "sidecar-manage-"));
});

after(async () => {
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Dagu 2 (the product's target; v2.15.1) or Dagu 1 (v1.30.3): the routes and role names differ. */
const dagu2 = () => API === "/api/v1";

async function call(sc: SidecarInstance, method: string, path: string, options: { token?: string; body?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(`${sc.url}${path.startsWith("/api/v") || path === "/" ? path : `${API}${path}`}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await r.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: r.status, text, json };
}

async function login(sc: SidecarInstance, username: string, password: string): Promise<string> {
  const r = await call(sc, "POST", "/auth/login", { body: { username, password } });
  assert.equal(r.status, 200, `login ${username}: ${r.text}`);
  return r.json!.token as string;
}

const setupRequired = async (sc: SidecarInstance) => /setupRequired: true/.test((await call(sc, "GET", "/")).text);

describe("the page's examples start the sidecar", () => {
  test("its YAML (short token secret, initial admin): the admin logs in, one warning names the key, never the secret", async () => {
    const sc = await startSidecar({ upstream: dagu.url, args: ["--config", PAGE_YAML] });
    try {
      const token = await login(sc, "admin", "your-secure-password");
      assert.equal(((await call(sc, "GET", "/auth/me", { token })).json!.user as { role: string }).role, "admin");
      assert.equal(await setupRequired(sc), false);
      assert.match(sc.output(), /auth\.builtin\.token\.secret is shorter than 32 bytes: accepted/);
      assert.ok(!sc.output().includes("your-secure-random-secret"));
    } finally {
      await sc.stop();
    }
  });

  test("its environment variables alone: the same", async () => {
    const sc = await startSidecar({ upstream: dagu.url, env: env(PAGE_ENV) });
    try {
      await login(sc, "admin", "your-secure-password");
      assert.match(sc.output(), /DAGU_AUTH_TOKEN_SECRET is shorter than 32 bytes/);
    } finally {
      await sc.stop();
    }
  });

  test("without initial_admin: Dagu's setup page creates the first admin, kept in --state-dir; then setup is over", async () => {
    const stateDir = join(dir, "setup-state");
    const args = ["--config", PAGE_YAML_NO_ADMIN, "--state-dir", stateDir];
    let sc = await startSidecar({ upstream: dagu.url, args });
    try {
      if (!dagu2()) {
        // Dagu 1 has no setup page (its admin comes from the configuration): nor does the sidecar in front of it.
        assert.equal((await call(sc, "POST", "/auth/setup", { body: { username: "root", password: "root-password-1" } })).status, 404);
        assert.equal(await setupRequired(sc), false);
        return;
      }
      assert.equal(await setupRequired(sc), true, "getConfig() tells the UI to show the setup page");
      assert.equal((await call(sc, "POST", "/auth/login", { body: { username: "root", password: "root-password-1" } })).status, 401);
      const weak = await call(sc, "POST", "/auth/setup", { body: { username: "root", password: "short" } });
      assert.deepEqual([weak.status, weak.json], [400, { code: "bad_request", message: "Password does not meet security requirements" }]);
      const setup = await call(sc, "POST", "/auth/setup", { body: { username: "root", password: "root-password-1" } });
      assert.equal(setup.status, 200, setup.text);
      assert.deepEqual(Object.keys(setup.json!).sort(), ["expiresAt", "token", "user"]);
      assert.equal(((await call(sc, "GET", "/auth/me", { token: setup.json!.token as string })).json!.user as { role: string }).role, "admin");
      assert.equal(await setupRequired(sc), false);
      const again = await call(sc, "POST", "/auth/setup", { body: { username: "intruder", password: "intruder-password-1" } });
      assert.deepEqual([again.status, again.json], [403, { code: "forbidden", message: "Setup has already been completed" }]);
      const port = sc.port;
      await sc.stop();
      sc = await startSidecar({ upstream: dagu.url, port, args });
      await login(sc, "root", "root-password-1");
      assert.equal((await call(sc, "POST", "/auth/setup", { body: { username: "intruder", password: "intruder-password-1" } })).status, 403);
      assert.ok(!(await readFile(join(stateDir, "sidecar-state.json"), "utf8")).includes("root-password-1"));
    } finally {
      await sc.stop();
    }
  });

  test("without initial_admin and without --state-dir: it starts, says nobody can log in, and setup says why", async () => {
    const sc = await startSidecar({ upstream: dagu.url, env: env({ DAGU_AUTH_MODE: "builtin", DAGU_AUTH_TOKEN_SECRET: "your-secure-random-secret" }) });
    try {
      assert.match(sc.output(), /without an initial admin and without --state-dir: nobody can log in/);
      const setup = await call(sc, "POST", "/auth/setup", { body: { username: "root", password: "root-password-1" } });
      if (dagu2()) {
        assert.equal(setup.status, 403);
        assert.match(setup.json!.message as string, /--state-dir/);
      } else assert.equal(setup.status, 404, "Dagu 1 has no setup page");
    } finally {
      await sc.stop();
    }
  });
});

describe("users, API keys and webhooks through Dagu's routes", () => {
  test("created, used at once, kept across a restart, changed and deleted; without --state-dir a 403 names it", async () => {
    const stateDir = join(dir, "manage-state");
    const args = ["--config", PAGE_YAML, "--state-dir", stateDir];
    let sc = await startSidecar({ upstream: dagu.url, args });
    try {
      const admin = await login(sc, "admin", "your-secure-password");

      // A user (Dagu 1's UI calls our developer manager).
      const created = await call(sc, "POST", "/users", { token: admin, body: { username: "dev", password: "dev-password-1", role: dagu2() ? "developer" : "manager" } });
      assert.equal(created.status, 201, created.text);
      const devId = (created.json!.user as { id: string }).id;
      const dup = await call(sc, "POST", "/users", { token: admin, body: { username: "dev", password: "dev-password-2", role: "viewer" } });
      assert.deepEqual([dup.status, dup.json], [409, { code: "already_exists", message: "Username already exists" }]);
      const dev = await login(sc, "dev", "dev-password-1");
      assert.equal((await call(sc, "POST", "/users", { token: dev, body: { username: "x", password: "xxxxxxxxxx", role: "viewer" } })).status, 403, "a developer manages no users");
      assert.equal((await call(sc, "POST", "/dags", { token: dev, body: { name: "made-by-dev" } })).status, 201, "the role is in force");

      // An API key, shown once, with Dagu 2.15.1's fields; it runs a DAG at once.
      const keyBody = { name: "ci", description: "the nightly job", role: "operator", ...(dagu2() ? { allowedSurfaces: ["rest_api"], attributionClass: "service_account" } : {}) };
      const key = await call(sc, "POST", "/api-keys", { token: admin, body: keyBody });
      assert.equal(key.status, 201, key.text);
      const apiKey = key.json!.key as string;
      const keyJson = key.json!.apiKey as Record<string, unknown>;
      assert.match(apiKey, /^dagu_/);
      if (dagu2()) assert.deepEqual([keyJson.allowedSurfaces, keyJson.attributionClass, keyJson.serviceAccountName], [["rest_api"], "service_account", "ci"]);
      assert.ok(!JSON.stringify((await call(sc, "GET", "/api-keys", { token: admin })).json).includes(apiKey), "a listing never shows the key");
      const started = await call(sc, "POST", "/dags/hello/start", { token: apiKey, body: {} });
      assert.equal(started.status, 200, started.text);

      // A webhook for an existing DAG (Dagu's own DAG lookup decides), fired by its token: a real run.
      const missing = await call(sc, "POST", "/dags/no-such-dag/webhook", { token: admin });
      assert.deepEqual([missing.status, missing.json], [404, { code: "not_found", message: "DAG no-such-dag not found" }]);
      const hook = await call(sc, "POST", "/dags/hello/webhook", { token: admin });
      assert.equal(hook.status, 201, hook.text);
      const hookToken = hook.json!.token as string;
      const fire = (dagRunId: string, headers: Record<string, string>, body = JSON.stringify({ dagRunId, payload: { from: "standalone" } })) =>
        fetch(`${sc.url}${API}/webhooks/hello`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
      const fired = await fire("standalone-1", { authorization: `Bearer ${hookToken}` });
      assert.equal(fired.status, 200, await fired.clone().text());
      await eventually("the run in Dagu", async () => (await fetch(`${dagu.url}${API}/dag-runs/hello/standalone-1`)).status === 200 || undefined, 20_000);

      if (dagu2()) {
        // HMAC on: the secret is shown once; a signed trigger runs, an unsigned one does not.
        const on = await call(sc, "POST", "/dags/hello/webhook/hmac/enable", { token: admin, body: { authMode: "token_and_hmac" } });
        assert.equal(on.status, 200, on.text);
        const secret = on.json!.hmacSecret as string;
        const body = JSON.stringify({ dagRunId: "standalone-signed", payload: {} });
        const signature = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
        assert.equal((await fire("standalone-unsigned", { authorization: `Bearer ${hookToken}` })).status, 401);
        assert.equal((await fire("standalone-signed", { authorization: `Bearer ${hookToken}`, "x-dagu-signature": signature }, body)).status, 200);
      }

      // Everything survives a restart.
      const port = sc.port;
      await sc.stop();
      const firstOutput = sc.output();
      for (const secret of ["your-secure-password", "dev-password-1", apiKey, hookToken]) assert.ok(!firstOutput.includes(secret), "no secret in the sidecar's log");
      sc = await startSidecar({ upstream: dagu.url, port, args });
      const admin2 = await login(sc, "admin", "your-secure-password");
      await login(sc, "dev", "dev-password-1");
      assert.equal((await call(sc, "GET", "/dags", { token: apiKey })).status, 200);
      const regenerated = await call(sc, "POST", "/dags/hello/webhook/regenerate", { token: admin2 });
      assert.equal(regenerated.status, 200, regenerated.text);
      assert.equal((await fire("standalone-old-token", { authorization: `Bearer ${hookToken}` })).status, 401, "the old token stops at once");

      // Changed and deleted: in force at once.
      const keyId = keyJson.id as string;
      assert.equal((await call(sc, "PATCH", `/api-keys/${keyId}`, { token: admin2, body: { role: "viewer" } })).status, 200);
      assert.equal((await call(sc, "POST", "/dags/hello/start", { token: apiKey, body: {} })).status, 403, "a viewer key now");
      assert.equal((await call(sc, "DELETE", `/api-keys/${keyId}`, { token: admin2 })).status, 204);
      assert.equal((await call(sc, "GET", "/dags", { token: apiKey })).status, 401);
      const devToken = await login(sc, "dev", "dev-password-1");
      assert.equal((await call(sc, "PATCH", `/users/${devId}`, { token: admin2, body: { isDisabled: true } })).status, 200);
      assert.equal((await call(sc, "GET", "/dags", { token: devToken })).status, 401, "a disabled user's token is refused at once");
      assert.equal((await call(sc, "DELETE", `/users/${devId}`, { token: admin2 })).status, 204);
      const self = await call(sc, "DELETE", "/users/standalone:admin", { token: admin2 });
      assert.equal(self.status, 403);
      assert.match(self.json!.message as string, /declared in the configuration/);
      assert.equal((await call(sc, "DELETE", "/dags/hello/webhook", { token: admin2 })).status, 204);
      assert.equal((await call(sc, "GET", "/dags/hello/webhook", { token: admin2 })).status, 404);
    } finally {
      await sc.stop();
    }

    // The same configuration without --state-dir: reads work, a change is refused naming the option.
    const bare = await startSidecar({ upstream: dagu.url, args: ["--config", PAGE_YAML] });
    try {
      const admin = await login(bare, "admin", "your-secure-password");
      assert.equal((await call(bare, "GET", "/users", { token: admin })).status, 200);
      const refused = await call(bare, "POST", "/users", { token: admin, body: { username: "dev", password: "dev-password-1", role: "viewer" } });
      assert.equal(refused.status, 403);
      assert.match(refused.json!.message as string, /start the sidecar with --state-dir DIR/);
    } finally {
      await bare.stop();
    }
  });
});
