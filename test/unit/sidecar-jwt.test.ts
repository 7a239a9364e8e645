// Login tokens: what is issued, and every way a token must be refused.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { before, describe, test } from "node:test";
import { SignJWT, UnsecuredJWT } from "jose";
import type { Credentials } from "../../src/api/credentials.ts";
import { indexCredentials, type CredentialSnapshot } from "../../src/sidecar/credentials/credential-store.ts";
import { issueToken, JwtVerifier, passwordChangedAtNs } from "../../src/sidecar/auth/jwt.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

let built: TestCredentials;
let snapshot: CredentialSnapshot;
const NOW = Date.parse("2026-06-01T12:00:00Z");

before(async () => {
  built = await buildCredentials({ users: [{ username: "ann", password: "ann-password", role: "developer" }] });
  snapshot = indexCredentials(built.credentials);
});

const ann = () => snapshot.credentials.users[0]!;
const withCredentials = (change: (c: Credentials) => Credentials) => indexCredentials(change(structuredClone(built.credentials)));
const secret = () => new Uint8Array(Buffer.from(built.signingSecret, "base64url"));

function forge(overrides: { header?: Record<string, unknown>; claims?: Record<string, unknown>; key?: Uint8Array; omit?: string[] } = {}): Promise<string> {
  const user = ann();
  const iat = Math.floor(NOW / 1000);
  const all: Record<string, unknown> = {
    sub: user.id,
    uid: user.id,
    username: user.username,
    role: user.role,
    pwd_changed_at_ns: passwordChangedAtNs(user),
    iss: "dagu-auth-test",
    aud: "dagu",
    iat,
    exp: iat + 600,
    ...overrides.claims,
  };
  const claims = Object.fromEntries(Object.entries(all).filter(([k]) => !(overrides.omit ?? []).includes(k)));
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: built.kid, ...overrides.header } as { alg: string }).sign(overrides.key ?? secret());
}

describe("issued tokens", () => {
  test("carry Dagu's claims, a kid, iss and aud, and verify", async () => {
    const { token, expiresAt } = await issueToken(snapshot, ann(), NOW);
    const [header, payload] = token.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>);
    assert.deepEqual(header, { alg: "HS256", typ: "JWT", kid: built.kid });
    assert.deepEqual(Object.keys(payload!).sort(), ["aud", "exp", "iat", "iss", "pwd_changed_at_ns", "role", "sub", "uid", "username"]);
    assert.equal(payload!.sub, ann().id);
    assert.equal(payload!.exp, Math.floor(NOW / 1000) + 3600);
    assert.equal(expiresAt.getTime(), (Math.floor(NOW / 1000) + 3600) * 1000);
    const result = await new JwtVerifier().verify(snapshot, token, NOW + 1000);
    assert.equal(result.ok, true);
  });

  test("the role comes from the credentials, not from the token", async () => {
    const { token } = await issueToken(snapshot, ann(), NOW);
    const demoted = withCredentials((c) => ({ ...c, users: c.users.map((u) => ({ ...u, role: "viewer" as const })) }));
    const result = await new JwtVerifier().verify(demoted, token, NOW);
    assert.ok(result.ok && result.user.role === "viewer");
    const forged = await forge({ claims: { role: "admin" } });
    const r2 = await new JwtVerifier().verify(snapshot, forged, NOW);
    assert.ok(r2.ok && r2.user.role === "developer");
  });
});

describe("refused tokens", () => {
  const cases: [string, () => Promise<string>, string][] = [
    ["alg none", async () => new UnsecuredJWT({ sub: ann().id, iss: "dagu-auth-test", aud: "dagu", exp: Math.floor(NOW / 1000) + 60, iat: Math.floor(NOW / 1000) }).encode(), "malformed"],
    ["HS256 signed with another key", () => forge({ key: randomBytes(32) }), "bad_signature"],
    ["HS512 with the right key (algorithm pinned)", async () => new SignJWT({ sub: ann().id }).setProtectedHeader({ alg: "HS512", kid: built.kid }).sign(secret()), "malformed"],
    ["no kid", () => forge({ header: { kid: undefined } }), "unknown_key"],
    ["unknown kid", () => forge({ header: { kid: "nope" } }), "unknown_key"],
    ["no exp", () => forge({ omit: ["exp"] }), "bad_claims"],
    ["no iat", () => forge({ omit: ["iat"] }), "bad_claims"],
    ["expired", () => forge({ claims: { exp: Math.floor(NOW / 1000) - 60 } }), "expired"],
    ["nbf in the future", () => forge({ claims: { nbf: Math.floor(NOW / 1000) + 600 } }), "not_yet_valid"],
    ["wrong issuer", () => forge({ claims: { iss: "someone-else" } }), "bad_claims"],
    ["wrong audience", () => forge({ claims: { aud: "other" } }), "bad_claims"],
    ["uid differs from sub", () => forge({ claims: { uid: "x" } }), "bad_claims"],
    ["unknown user", () => forge({ claims: { sub: "ghost", uid: "ghost" } }), "unknown_user"],
    ["older password", () => forge({ claims: { pwd_changed_at_ns: passwordChangedAtNs(ann()) - 1e9 } }), "password_changed"],
  ];
  for (const [name, make, reason] of cases) {
    test(name, async () => {
      const result = await new JwtVerifier().verify(snapshot, await make(), NOW);
      assert.deepEqual(result, { ok: false, reason });
    });
  }

  test("a disabled or deleted user is refused at once, also from the cache", async () => {
    const verifier = new JwtVerifier();
    const { token } = await issueToken(snapshot, ann(), NOW);
    assert.equal((await verifier.verify(snapshot, token, NOW)).ok, true);
    const disabled = withCredentials((c) => ({ ...c, users: c.users.map((u) => ({ ...u, disabled: true })) }));
    assert.deepEqual(await verifier.verify(disabled, token, NOW), { ok: false, reason: "disabled_user" });
    const deleted = withCredentials((c) => ({ ...c, users: [] }));
    assert.deepEqual(await verifier.verify(deleted, token, NOW), { ok: false, reason: "unknown_user" });
  });

  test("a token issued before a password change is refused, a new one is not", async () => {
    const verifier = new JwtVerifier();
    const { token: before } = await issueToken(snapshot, ann(), NOW);
    assert.equal((await verifier.verify(snapshot, before, NOW)).ok, true);
    const changed = withCredentials((c) => ({ ...c, users: c.users.map((u) => ({ ...u, passwordChangedAt: "2026-06-01T12:00:30.123456789Z" })) }));
    assert.deepEqual(await verifier.verify(changed, before, NOW + 60_000), { ok: false, reason: "password_changed" });
    const { token: after } = await issueToken(changed, changed.credentials.users[0]!, NOW + 60_000);
    assert.equal((await verifier.verify(changed, after, NOW + 61_000)).ok, true);
  });

  test("a retired key verifies during its overlap and not after", async () => {
    const { token } = await issueToken(snapshot, ann(), NOW);
    const rotated = withCredentials((c) => ({
      ...c,
      token: { ...c.token!, activeKid: "new", keys: [{ kid: "new", secret: randomBytes(32).toString("base64url") }, { ...c.token!.keys[0]!, notAfter: new Date(NOW + 60_000).toISOString() }] },
    }));
    const verifier = new JwtVerifier();
    assert.equal((await verifier.verify(rotated, token, NOW + 1_000)).ok, true);
    assert.deepEqual(await verifier.verify(rotated, token, NOW + 61_000), { ok: false, reason: "unknown_key" });
  });
});

test("verified tokens are cached (bounded) and the cache is cleared on demand", async () => {
  const verifier = new JwtVerifier(4);
  for (let i = 0; i < 10; i++) {
    const { token } = await issueToken(snapshot, ann(), NOW + i * 1000);
    assert.equal((await verifier.verify(snapshot, token, NOW + i * 1000)).ok, true);
    assert.equal((await verifier.verify(snapshot, token, NOW + i * 1000)).ok, true);
  }
  assert.ok(verifier.size <= 4);
  verifier.clear();
  assert.equal(verifier.size, 0);
});
