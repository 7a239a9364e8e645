// The credential store (last good document, readiness, generations), password-change merging, and the
// reading of Dagu's own auth: configuration.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { before, describe, test } from "node:test";
import type { Credentials, SsoUsers } from "../../src/api/credentials.ts";
import type { CredentialSource, CredentialSourceEvents, SsoUsersChange } from "../../src/sidecar/credentials/credential-source.ts";
import { CredentialStore } from "../../src/sidecar/credentials/credential-store.ts";
import { applyPasswordChanges, changeTimestamp, nanosToRfc3339 } from "../../src/sidecar/credentials/password-changes.ts";
import { resolveDaguAuthConfig } from "../../src/dagu/auth-config.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

class ManualSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description = "manual";
  #current: Credentials | undefined;
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  current(): Credentials | undefined {
    return this.#current;
  }
  async recordPasswordChange(): Promise<void> {}
  ssoUsers(): SsoUsers {
    return {};
  }
  async updateSsoUsers<T>(change: SsoUsersChange<T>): Promise<T> {
    return change({}).result;
  }
  push(c: Credentials): void {
    this.#current = c;
    this.emit("change", c);
  }
}

let good: Credentials;
before(async () => {
  good = (await buildCredentials({ users: [{ username: "ann", password: "ann-password", role: "viewer" }], apiKeys: [{ name: "ci", role: "operator" }], webhooks: [{ dagName: "hello", mode: "token" }] })).credentials;
});

describe("credential store", () => {
  test("nothing loaded: no snapshot and not ready (the server answers 503)", async () => {
    const store = new CredentialStore(new ManualSource());
    await store.start();
    assert.equal(store.snapshot(), undefined);
    assert.equal(store.ready(), false);
  });

  test("indexes users, keys and webhooks; an invalid document keeps the last good one, unready", async () => {
    const source = new ManualSource();
    const store = new CredentialStore(source);
    await store.start();
    source.push(good);
    const snap = store.snapshot()!;
    assert.equal(store.ready(), true);
    assert.equal(snap.usersByName.get("ann")?.role, "viewer");
    assert.equal(snap.usersById.get(good.users[0]!.id)?.username, "ann");
    assert.equal(snap.apiKeysByDigest.get(good.apiKeys[0]!.digest)?.name, "ci");
    assert.equal(snap.webhooksByDag.get("hello")?.mode, "token");
    assert.equal(snap.signingKeys.get(good.token!.activeKid)?.secret.length, 32);

    source.emit("invalid", new Error("users.0.role: Invalid option"));
    assert.equal(store.snapshot(), snap, "last good kept");
    assert.equal(store.ready(), false);
    assert.match(store.lastError()!, /users\.0\.role/);

    source.push({ ...good, generation: good.generation + 1 });
    assert.equal(store.ready(), true);
  });

  test("an older generation is refused", async () => {
    const source = new ManualSource();
    const store = new CredentialStore(source);
    source.push({ ...good, generation: 5 });
    await store.start();
    source.push({ ...good, generation: 4, users: [] });
    assert.equal(store.snapshot()!.credentials.generation, 5);
    assert.equal(store.ready(), false);
  });
});

describe("password changes", () => {
  test("the newer of the document and the change wins; users may be forbidden to change", () => {
    const user = good.users[0]!;
    const newer = { [user.id]: { passwordHash: "$argon2id$new", changedAt: "2027-01-01T00:00:00.000000001Z" } };
    assert.equal(applyPasswordChanges(good, newer).users[0]!.passwordHash, "$argon2id$new");
    const older = { [user.id]: { passwordHash: "$argon2id$old", changedAt: "2020-01-01T00:00:00Z" } };
    assert.equal(applyPasswordChanges(good, older), good);
    const locked = { ...good, users: [{ ...user, allowPasswordChange: false }] };
    assert.equal(applyPasswordChanges(locked, newer).users[0]!.passwordHash, user.passwordHash);
    assert.equal(applyPasswordChanges(good, { "__proto__": newer[user.id]! }), good);
  });

  test("change timestamps have nanoseconds and never go back", () => {
    const after = "2999-01-01T00:00:00.000000005Z";
    assert.equal(changeTimestamp(after), "2999-01-01T00:00:00.000000006Z");
    assert.match(changeTimestamp(undefined), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(nanosToRfc3339(1_700_000_000_123_456_789n), "2023-11-14T22:13:20.123456789Z");
  });
});

describe("Dagu's auth: configuration", () => {
  test("builtin: initial_admin, token secret and ttl; the environment wins", () => {
    const doc = { auth: { mode: "builtin", builtin: { token: { secret: "s".repeat(40), ttl: "2h" }, initial_admin: { username: "root", password: "file-password" } } } };
    assert.deepEqual(resolveDaguAuthConfig(doc, {}), { mode: "builtin", username: "root", password: "file-password", tokenSecret: "s".repeat(40), tokenSecretFrom: "auth.builtin.token.secret", ttlSeconds: 7200 });
    const env = { DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "env-password", DAGU_AUTH_TOKEN_TTL: "30m" };
    assert.deepEqual(resolveDaguAuthConfig(doc, env), { mode: "builtin", username: "root", password: "env-password", tokenSecret: "s".repeat(40), tokenSecretFrom: "auth.builtin.token.secret", ttlSeconds: 1800 });
    // Dagu's own example secret is short: taken (the source derives the key and warns, see token-secret.test.ts).
    const short = resolveDaguAuthConfig({ auth: { builtin: { token: { secret: "your-secure-random-secret" }, initial_admin: { username: "a", password: "p" } } } }, {});
    assert.equal(short.tokenSecret, "your-secure-random-secret");
  });

  test("builtin without an initial admin is Dagu's first-run case, not an error", () => {
    assert.deepEqual(resolveDaguAuthConfig({ auth: { builtin: { token: { ttl: "24h" } } } }, {}), { mode: "builtin", ttlSeconds: 86400 });
    assert.deepEqual(resolveDaguAuthConfig(undefined, { DAGU_AUTH_MODE: "builtin" }), { mode: "builtin", ttlSeconds: 86400 });
  });

  test("Dagu 1's builtin.admin and environment-only configuration", () => {
    assert.equal(resolveDaguAuthConfig({ auth: { builtin: { admin: { username: "a", password: "p" } } } }, {}).username, "a");
    const basic = resolveDaguAuthConfig(undefined, { DAGU_AUTH_MODE: "basic", DAGU_AUTH_BASIC_USERNAME: "u", DAGU_AUTH_BASIC_PASSWORD: "p" });
    assert.deepEqual(basic, { mode: "basic", username: "u", password: "p", ttlSeconds: 86400 });
  });

  test("what cannot be enforced is refused with a message naming it", () => {
    const cases: [unknown, NodeJS.ProcessEnv, RegExp][] = [
      [{ auth: { mode: "none" } }, {}, /auth\.mode none/],
      [{ auth: { mode: "oidc" } }, {}, /auth\.mode/],
      [{ auth: { builtin: { initial_admin: { username: "a" } } } }, {}, /auth\.builtin\.initial_admin\.username is set without the initial admin's password: set both or neither/],
      [{ auth: { mode: "basic", basic: { username: "u" } } }, {}, /auth\.basic\.password/],
      [{ auth: { builtin: { initial_admin: { username: "a", password: "p" } }, oidc: { client_id: "x" } } }, {}, /OIDC needs auth\.oidc\.issuer .*auth\.oidc\.client_url/],
      [{ auth: { builtin: { initial_admin: { username: "a", password: "p" } } } }, { DAGU_AUTH_OIDC_ISSUER: "https://x" }, /OIDC needs auth\.oidc\.client_id/],
      [{ auth: { builtin: { token: { ttl: "1d" }, initial_admin: { username: "a", password: "p" } } } }, {}, /ttl/],
      [{ auth: { token: { value: "static" } } }, {}, /API key/],
    ];
    for (const [doc, env, message] of cases) assert.throws(() => resolveDaguAuthConfig(doc, env), message, JSON.stringify(doc));
  });
});
