// The standalone sidecar's source of credentials (Dagu's auth: configuration, the DAGU_AUTH_* variables,
// --state-dir) on the page's own examples, and its management of users, API keys and webhooks (what
// Dagu's API routes do to them; the routes themselves are tested on the real sidecar).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { rfc3339ToNanos } from "../../src/api/credentials.ts";
import { hashPassword, verifyPassword } from "../../src/common/password-hash.ts";
import { tokenSigningKey } from "../../src/common/token-secret.ts";
import { sha256Hex } from "../../src/common/tokens.ts";
import { verifyApiKey } from "../../src/sidecar/auth/api-key-auth.ts";
import { indexCredentials } from "../../src/sidecar/credentials/credential-store.ts";
import { HttpError } from "../../src/sidecar/answers/http-io.ts";
import type { Actor } from "../../src/sidecar/answers/management.ts";
import { changeTimestamp } from "../../src/sidecar/credentials/password-changes.ts";
import { DaguConfigCredentialSource } from "../../src/sidecar/sources/dagu-config-source.ts";
import { STATE_FILE, StateDir } from "../../src/sidecar/sources/state-dir.ts";

/** The environment-variable example of Dagu's Authentication page. */
const PAGE_ENV = {
  DAGU_AUTH_MODE: "builtin",
  DAGU_AUTH_TOKEN_SECRET: "your-secure-random-secret",
  DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "admin",
  DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "your-secure-password",
};

describe("a short token secret", () => {
  test("is taken, the key derived as the operator derives it, and one warning names the variable", async () => {
    const warnings: string[] = [];
    const source = new DaguConfigCredentialSource({ env: PAGE_ENV, trustedProxies: [], warn: (m) => warnings.push(m) });
    await source.start();
    try {
      const token = source.current()!.token!;
      assert.equal(token.keys[0]!.secret, tokenSigningKey("your-secure-random-secret").toString("base64url"));
      assert.deepEqual(warnings.length, 1);
      assert.match(warnings[0]!, /^DAGU_AUTH_TOKEN_SECRET is shorter than 32 bytes: accepted/);
      assert.ok(!warnings[0]!.includes("your-secure-random-secret"));
    } finally {
      await source.stop();
    }
  });

  test("a long secret is the key itself, as it always was", async () => {
    const secret = "x".repeat(40);
    const warnings: string[] = [];
    const source = new DaguConfigCredentialSource({ env: { ...PAGE_ENV, DAGU_AUTH_TOKEN_SECRET: secret }, trustedProxies: [], warn: (m) => warnings.push(m) });
    await source.start();
    try {
      assert.equal(source.current()!.token!.keys[0]!.secret, Buffer.from(secret).toString("base64url"));
      assert.deepEqual(warnings, []);
    } finally {
      await source.stop();
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Users, API keys and webhooks through the API (management.ts), kept in --state-dir

async function withSource(env: NodeJS.ProcessEnv, stateDir: string | undefined, body: (source: DaguConfigCredentialSource) => Promise<void>): Promise<void> {
  const source = new DaguConfigCredentialSource({ env, trustedProxies: [], ...(stateDir ? { stateDir: new StateDir(stateDir) } : {}) });
  await source.start();
  try {
    await body(source);
  } finally {
    await source.stop();
  }
}

const NO_ADMIN = { DAGU_AUTH_MODE: "builtin", DAGU_AUTH_TOKEN_SECRET: "your-secure-random-secret" };
const refusedWith = (status: number, message: RegExp) => (e: unknown) => e instanceof HttpError && e.status === status && message.test(e.message);
const snapshotOf = (source: DaguConfigCredentialSource) => indexCredentials(source.current()!);

describe("first-run setup (no initial admin)", () => {
  test("the first admin is created while nobody exists, then setup is over; kept across a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), "standalone-setup-"));
    try {
      await withSource(NO_ADMIN, dir, async (source) => {
        const m = source.management()!;
        assert.equal(m.setupRequired(), true);
        assert.deepEqual(source.current()!.users, []);
        await assert.rejects(m.setup("root", "short"), refusedWith(400, /Password does not meet security requirements/));
        await assert.rejects(m.setup("root user", "root-password-1"), refusedWith(400, /Invalid username/));
        // Two at once: one admin, the other is told setup is done.
        const results = await Promise.allSettled([m.setup("root", "root-password-1"), m.setup("other", "other-password-1")]);
        assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
        assert.ok(refusedWith(403, /Setup has already been completed/)((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason));
        const [admin] = source.current()!.users;
        assert.deepEqual([admin!.username, admin!.role, admin!.disabled], ["root", "admin", false]);
        assert.ok(await verifyPassword(admin!.passwordHash, "root-password-1"));
        assert.equal(m.setupRequired(), false);
      });
      const file = join(dir, STATE_FILE);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      assert.ok(!(await readFile(file, "utf8")).includes("root-password-1"));
      await withSource(NO_ADMIN, dir, async (source) => {
        assert.deepEqual(source.current()!.users.map((u) => u.username), ["root"]);
        assert.equal(source.management()!.setupRequired(), false);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a user single sign-on created counts as a user (Dagu's user count): setup is over and stays refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "standalone-setup-sso-"));
    try {
      await withSource(NO_ADMIN, dir, async (source) => {
        const m = source.management()!;
        assert.equal(m.setupRequired(), true);
        const at = "2026-01-01T00:00:00Z";
        await source.updateSsoUsers(() => ({ users: { "sso:00000000-0000-4000-8000-000000000001": { issuer: "https://idp.example.com", subject: "s", username: "sam", role: "viewer", createdAt: at, updatedAt: at } }, result: undefined }));
        assert.equal(m.setupRequired(), false);
        await assert.rejects(m.setup("root", "root-password-1"), refusedWith(403, /Setup has already been completed/));
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a configured initial admin means setup is done; without --state-dir nothing can be created", async () => {
    await withSource(PAGE_ENV, undefined, async (source) => {
      const m = source.management()!;
      assert.equal(m.setupRequired(), false);
      assert.match(m.unavailable!, /--state-dir/);
      await assert.rejects(m.createUser({ username: "ann", password: "ann-password-1", role: "viewer" }), refusedWith(403, /start the sidecar with --state-dir DIR/));
    });
    await withSource(NO_ADMIN, undefined, async (source) => {
      await assert.rejects(source.management()!.setup("root", "root-password-1"), refusedWith(403, /--state-dir/));
    });
    await withSource({ DAGU_AUTH_MODE: "basic", DAGU_AUTH_BASIC_USERNAME: "ops", DAGU_AUTH_BASIC_PASSWORD: "basic-password-1" }, undefined, async (source) => {
      assert.equal(source.management(), undefined, "basic mode has no user management, as in Dagu");
    });
  });
});

describe("users, API keys and webhooks", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "standalone-manage-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const admin: Actor = { id: "standalone:admin", userId: "standalone:admin" };

  test("users: created, renamed, disabled, reset and deleted; the configured admin and oneself are protected", async () => {
    await withSource(PAGE_ENV, dir, async (source) => {
      const m = source.management()!;
      const ann = await m.createUser({ username: "ann", password: "ann-password-1", role: "developer" });
      await assert.rejects(m.createUser({ username: "ann", password: "ann-password-2", role: "viewer" }), refusedWith(409, /Username already exists/));
      await assert.rejects(m.createUser({ username: "admin", password: "ann-password-2", role: "viewer" }), refusedWith(409, /Username already exists/));
      assert.deepEqual(snapshotOf(source).usersByName.get("ann")?.role, "developer");
      const renamed = await m.updateUser(ann.id, { username: "anna", role: "operator" }, admin);
      assert.deepEqual([renamed.username, renamed.role], ["anna", "operator"]);
      await assert.rejects(m.updateUser("standalone:admin", { disabled: true }, admin), refusedWith(403, /declared in the configuration/));
      await assert.rejects(m.updateUser(ann.id, { disabled: true }, { id: ann.id, userId: ann.id }), refusedWith(403, /Cannot disable your own account/));
      await assert.rejects(m.deleteUser(ann.id, { id: ann.id, userId: ann.id }), refusedWith(403, /Cannot delete your own account/));
      await assert.rejects(m.updateUser("no-such-id", { role: "viewer" }, admin), refusedWith(404, /User not found/));
      const before = snapshotOf(source).usersById.get(ann.id)!.passwordChangedAt;
      await m.resetPassword(ann.id, "anna-password-2");
      const after = snapshotOf(source).usersById.get(ann.id)!;
      assert.ok(rfc3339ToNanos(after.passwordChangedAt) > rfc3339ToNanos(before), "tokens issued before the reset die");
      assert.ok(await verifyPassword(after.passwordHash, "anna-password-2"));
      // The user's own change of password is kept with the user.
      await source.recordPasswordChange(ann.id, await hashPassword("anna-password-3"), changeTimestamp(after.passwordChangedAt));
      assert.ok(await verifyPassword(snapshotOf(source).usersById.get(ann.id)!.passwordHash, "anna-password-3"));
      await m.updateUser(ann.id, { disabled: true }, admin);
      assert.equal(snapshotOf(source).usersById.get(ann.id)!.disabled, true);
      await m.deleteUser(ann.id, admin);
      assert.equal(snapshotOf(source).usersById.get(ann.id), undefined);
    });
  });

  test("API keys: Dagu 2.15.1's fields; the key is shown once and kept as a digest; surfaces and owners are enforced", async () => {
    await withSource(PAGE_ENV, dir, async (source) => {
      const m = source.management()!;
      const ci = await m.createApiKey({ name: "ci", description: "nightly", role: "operator", allowedSurfaces: ["rest_api"], attributionClass: "service_account" }, admin);
      assert.match(ci.key, /^dagu_[1-9A-HJ-NP-Za-km-z]{32,44}$/);
      assert.equal(ci.record.serviceAccountName, "ci", "a service account is named after the key by default");
      assert.equal(ci.record.createdBy, "standalone:admin");
      assert.equal(verifyApiKey(snapshotOf(source), ci.key).ok, true);
      await assert.rejects(m.createApiKey({ name: "ci", role: "viewer", allowedSurfaces: ["rest_api"], attributionClass: "service_account" }, admin), refusedWith(409, /name already exists/));
      const mcp = await m.createApiKey({ name: "mcp-only", role: "viewer", allowedSurfaces: ["mcp"], attributionClass: "service_account" }, admin);
      assert.deepEqual(verifyApiKey(snapshotOf(source), mcp.key), { ok: false, reason: "surface" });
      const bob = await m.createUser({ username: "bob", password: "bob-password-1", role: "viewer" });
      await assert.rejects(m.createApiKey({ name: "mine", role: "viewer", allowedSurfaces: ["rest_api"], attributionClass: "user_owned", ownerUserId: "nobody" }, admin), refusedWith(400, /Invalid API key attribution/));
      const owned = await m.createApiKey({ name: "bobs", role: "viewer", allowedSurfaces: ["rest_api"], attributionClass: "user_owned", ownerUserId: bob.id }, admin);
      assert.equal(verifyApiKey(snapshotOf(source), owned.key).ok, true);
      await m.updateUser(bob.id, { disabled: true }, admin);
      assert.deepEqual(verifyApiKey(snapshotOf(source), owned.key), { ok: false, reason: "owner" }, "a disabled owner's key stops working");
      const updated = await m.updateApiKey(ci.record.id, { role: "viewer", description: "read only" });
      assert.deepEqual([updated.role, updated.description], ["viewer", "read only"]);
      assert.equal((verifyApiKey(snapshotOf(source), ci.key) as { key: { role: string } }).key.role, "viewer");
      await m.deleteApiKey(ci.record.id);
      assert.deepEqual(verifyApiKey(snapshotOf(source), ci.key), { ok: false, reason: "unknown" });
      const state = await readFile(join(dir, STATE_FILE), "utf8");
      for (const key of [ci.key, mcp.key, owned.key]) assert.ok(!state.includes(key), "no API key in the state file");
    });
  });

  test("webhooks: one per DAG; a new token at once replaces the old; HMAC on, configured, rotated and off", async () => {
    await withSource(PAGE_ENV, dir, async (source) => {
      const m = source.management()!;
      const { record, token } = await m.createWebhook("hello", admin);
      assert.match(token, /^dagu_wh_/);
      await assert.rejects(m.createWebhook("hello", admin), refusedWith(409, /webhook already exists for DAG hello/));
      await assert.rejects(m.createWebhook("../etc", admin), refusedWith(400, /invalid DAG name/));
      const published = () => snapshotOf(source).webhooksByDag.get("hello")!;
      assert.deepEqual(published().tokenDigests, [{ digest: sha256Hex(token) }]);
      const again = await m.regenerateWebhookToken("hello");
      assert.deepEqual(published().tokenDigests, [{ digest: sha256Hex(again.token) }], "the old token is gone at once, as in Dagu");
      await assert.rejects(m.enableWebhookHmac("hello", "hmac", "observe"), refusedWith(400, /enforcement mode/));
      const on = await m.enableWebhookHmac("hello", "tokenAndHmac", "observe");
      assert.equal(Buffer.from(on.secret, "base64url").length, 32);
      assert.deepEqual([published().mode, published().hmacEnforcement, published().hmacSecrets], ["tokenAndHmac", "observe", [{ secret: on.secret }]]);
      await m.configureWebhookHmac("hello", "hmac", undefined);
      assert.deepEqual([published().mode, published().hmacEnforcement, published().tokenDigests], ["hmac", "strict", []]);
      const rotated = await m.regenerateWebhookHmac("hello");
      assert.deepEqual(published().hmacSecrets, [{ secret: rotated.secret }]);
      await m.disableWebhookHmac("hello");
      assert.deepEqual([published().mode, published().hmacSecrets, published().tokenDigests], ["token", [], [{ digest: sha256Hex(again.token) }]]);
      await m.toggleWebhook("hello", false);
      assert.equal(published().enabled, false);
      await m.deleteWebhook("hello");
      assert.equal(snapshotOf(source).webhooksByDag.get("hello"), undefined);
      await assert.rejects(m.deleteWebhook("hello"), refusedWith(404, /no webhook configured for DAG hello/));
      assert.equal(record.dagName, "hello");
    });
  });
});
