// The pure parts of single sign-on: claims (email, groups, size, usernames), role mapping with real jq,
// SSO users laid over credentials and provisioned, the sealed flow cookie, and the getConfig() rewrite.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { CredentialUser, Credentials, SsoUser } from "../../src/api/credentials.ts";
import { oidcSettingsOf, OidcSpec, type OidcSettings } from "../../src/api/oidc.ts";
import { Jq } from "../../src/common/jq.ts";
import { parseDaguOidc, readDaguOidc } from "../../src/dagu/oidc-config.ts";
import { checkEmail, groupsOf, mergeUserinfo, pickUsername, sanitizeUsername } from "../../src/sidecar/auth/oidc/claims.ts";
import { flowCookieName, openFlow, sealFlow } from "../../src/sidecar/auth/oidc/flow-cookie.ts";
import { mapRole } from "../../src/sidecar/auth/oidc/role-mapping.ts";
import { ssoBasePath, ssoRouteOf, ssoUrls } from "../../src/sidecar/auth/oidc/sso-login.ts";
import { provision } from "../../src/sidecar/auth/oidc/sso-users.ts";
import { withSsoUsers } from "../../src/common/sso-overlay.ts";
import { indexCredentials } from "../../src/sidecar/credentials/credential-store.ts";
import { rewriteGetConfig } from "../../src/sidecar/ui/config-rewrite.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

const settings = (patch: Partial<OidcSettings> = {}): OidcSettings => ({
  ...oidcSettingsOf(OidcSpec.parse({ issuer: "https://idp.example.com", clientId: "dagu", clientUrl: "https://dagu.example.com/" }), "s3cret"),
  ...patch,
});
const mapping = (patch: Partial<OidcSettings["roleMapping"]> = {}) => ({ ...settings().roleMapping, ...patch });

let jq: Jq;
before(() => {
  jq = new Jq({ timeoutMs: 2000 });
});
after(() => jq.close());

describe("claims", () => {
  test("email: required, one @, not unverified, whitelist then domains, exact and lower-cased", () => {
    const s = settings({ whitelist: ["boss@partner.org"], allowedDomains: ["example.com"] });
    assert.deepEqual(checkEmail({ email: "Ann@EXAMPLE.com" }, s), { ok: true, email: "ann@example.com" });
    assert.deepEqual(checkEmail({ email: "BOSS@partner.org", email_verified: true }, s), { ok: true, email: "boss@partner.org" });
    const reason = (claims: Record<string, unknown>) => {
      const r = checkEmail(claims, s);
      return r.ok ? "ok" : r.reason;
    };
    assert.equal(reason({}), "email_missing");
    assert.equal(reason({ email: "ann@example.com", email_verified: false }), "email_unverified");
    assert.equal(reason({ email: "ann@example.com", email_verified: "false" }), "email_unverified");
    assert.equal(reason({ email: "ann@evil.org@example.com" }), "email_malformed");
    assert.equal(reason({ email: "ann @example.com" }), "email_malformed");
    assert.equal(reason({ email: "@example.com" }), "email_malformed");
    assert.equal(reason({ email: "ann@sub.example.com" }), "email_not_allowed");
    assert.equal(reason({ email: "ann@example.com.evil.org" }), "email_not_allowed");
    assert.equal(reason({ email: "other@partner.org" }), "email_not_allowed");
    assert.equal(checkEmail({ email: "x@anything.io" }, settings()).ok, true, "no restriction configured");
  });

  test("userinfo: its email and verification flag win, other claims only fill gaps", () => {
    const merged = mergeUserinfo({ sub: "1", email: "a@x.io", email_verified: true, groups: ["g"] }, { sub: "1", email: "b@x.io", groups: ["other"], name: "B" });
    assert.equal(merged.email, "b@x.io");
    assert.equal(merged.email_verified, undefined, "the ID token's flag does not vouch for userinfo's address");
    assert.deepEqual(merged.groups, ["g"]);
    assert.equal(merged.name, "B");
  });

  test("groups: absent is none, a dotted path reaches nested claims, anything but a list of strings is refused", () => {
    assert.deepEqual(groupsOf({}, "groups"), { ok: true, groups: [] });
    assert.deepEqual(groupsOf({ realm_access: { roles: ["a", "b"] } }, "realm_access.roles"), { ok: true, groups: ["a", "b"] });
    assert.deepEqual(groupsOf({ "cognito:groups": ["x"] }, "cognito:groups"), { ok: true, groups: ["x"] });
    for (const bad of ["admins", 3, { a: 1 }, ["a", 1]]) assert.equal(groupsOf({ groups: bad }, "groups").ok, false, JSON.stringify(bad));
  });

  test("usernames as Dagu picks them: sanitized, numbered after another SSO user, _sso after a password user", () => {
    assert.equal(sanitizeUsername("Jean-Luc.Picard "), "jean_luc_picard");
    const taken = new Map<string, "sso" | "password">([["ann", "sso"], ["ann2", "sso"], ["bob", "password"]]);
    const pick = (claims: Record<string, unknown>, email: string) => pickUsername(claims, email, "subject-123456789", (n) => taken.get(n) ?? "free");
    assert.equal(pick({ preferred_username: "Ann" }, "ann@x.io"), "ann3");
    assert.equal(pick({}, "bob@x.io"), "bob_sso");
    assert.equal(pick({ preferred_username: "!!!" }, "???@x.io"), "user_subject_", "last resort: user_ and the start of the subject");
  });
});

describe("role mapping (real jq)", () => {
  const role = async (m: OidcSettings["roleMapping"], claims: Record<string, unknown>) => {
    const r = await mapRole(m, claims, jq);
    if (!r.ok) return `refused:${r.reason}`;
    return r.mapped.kind === "role" ? `${r.mapped.role}/${r.mapped.source}` : r.mapped.kind;
  };

  test("Dagu's order: expression, then the highest mapped group, then the default; strict; unconfigured", async () => {
    const groups = { admins: "admin", devs: "developer", ops: "operator" } as const;
    assert.equal(await role(mapping(), {}), "unconfigured");
    assert.equal(await role(mapping({ groupMappings: groups }), { groups: ["ops", "devs"] }), "developer/groups");
    assert.equal(await role(mapping({ groupMappings: groups }), { groups: ["visitors"] }), "viewer/default");
    assert.equal(await role(mapping({ groupMappings: groups, roleAttributeStrict: true }), { groups: ["visitors"] }), "none");
    const expr = 'if (.groups | index("admins")) then "Admin" else "nobody" end';
    assert.equal(await role(mapping({ roleAttributePath: expr, groupMappings: groups }), { groups: ["admins"] }), "admin/expression");
    assert.equal(await role(mapping({ roleAttributePath: expr, groupMappings: groups }), { groups: ["ops"] }), "operator/groups", "not a role: falls through");
    assert.equal(await role(mapping({ roleAttributePath: ".x.y.z | ascii_downcase" }), { x: 1 }), "viewer/default", "a runtime error falls through");
    assert.equal(await role(mapping({ roleAttributePath: "def f: f; f" }), {}), "viewer/default", "a loop is cut off by the time limit");
    assert.equal(await role(mapping({ groupMappings: groups }), { groups: "admins" }), "refused:groups_not_a_list");
  });

  test("the compile check names jq's complaint", async () => {
    assert.equal(await jq.compileError('if .a then "admin" else "viewer" end'), undefined);
    assert.match((await jq.compileError("invalid jq {{{{ syntax")) ?? "", /syntax error/);
  });
});

describe("SSO users", () => {
  let credentials: Credentials;
  const record = (patch: Partial<SsoUser> = {}): SsoUser => ({ issuer: "https://idp", subject: "s-1", username: "ann", email: "ann@x.io", role: "operator", createdAt: "2026-02-01T00:00:00Z", updatedAt: "2026-02-01T00:00:00Z", ...patch });
  const id = "sso:11111111-2222-3333-4444-555555555555";
  before(async () => {
    credentials = { ...(await buildCredentials({ users: [{ username: "admin", password: "admin-password-1", role: "admin" }] })).credentials, oidc: settings() };
  });

  test("records become users without a password; a declared user (same username, or sso with the same email) shadows them; no OIDC, no records", () => {
    const merged = withSsoUsers(credentials, { [id]: record() });
    const ann = merged.users.find((u) => u.id === id);
    assert.equal(ann?.passwordHash, undefined);
    assert.equal(ann?.passwordChangedAt, "2026-02-01T00:00:00Z", "tokens count from the record's creation");
    const pin: CredentialUser = { id: "declared", username: "annie", role: "developer", email: "ANN@x.io", sso: true, passwordChangedAt: "2026-01-01T00:00:00Z", disabled: false, allowPasswordChange: false };
    assert.equal(withSsoUsers({ ...credentials, users: [...credentials.users, pin] }, { [id]: record() }).users.some((u) => u.id === id), false);
    assert.equal(withSsoUsers(credentials, { [id]: record({ username: "admin" }) }).users.some((u) => u.id === id), false);
    const withoutOidc: Credentials = { ...credentials };
    delete withoutOidc.oidc;
    assert.equal(withSsoUsers(withoutOidc, { [id]: record() }).users.length, credentials.users.length);
  });

  test("provisioning: found by issuer and subject, role synced unless skipped, created only with auto sign-up", () => {
    const identity = { issuer: "https://idp", subject: "s-1", email: "ann@x.io", claims: { preferred_username: "ann" } };
    const opts = { autoSignup: true, defaultRole: "viewer" as const, skipOrgRoleSync: false };
    const now = "2026-03-01T00:00:00Z";
    const synced = provision({ [id]: record() }, identity, { kind: "role", role: "admin", source: "groups" }, opts, credentials.users, now);
    assert.equal(synced.users?.[id]?.role, "admin");
    assert.equal(provision({ [id]: record() }, identity, { kind: "role", role: "admin", source: "groups" }, { ...opts, skipOrgRoleSync: true }, credentials.users, now).users, undefined);
    assert.equal(provision({ [id]: record() }, identity, { kind: "unconfigured" }, opts, credentials.users, now).users, undefined, "unconfigured keeps the role");
    assert.equal(provision({ [id]: record({ disabled: true }) }, identity, { kind: "unconfigured" }, opts, credentials.users, now).result.kind, "refuse");
    const fresh = provision({}, identity, { kind: "unconfigured" }, opts, credentials.users, now);
    assert.equal(fresh.result.kind, "user");
    assert.equal(Object.values(fresh.users ?? {})[0]?.role, "viewer");
    assert.deepEqual(provision({}, identity, { kind: "unconfigured" }, { ...opts, autoSignup: false }, credentials.users, now).result, { kind: "refuse", reason: "signup_disabled", message: "Authentication failed: automatic account creation is disabled, contact your administrator" });
    assert.equal(provision({}, identity, { kind: "none" }, opts, credentials.users, now).result.kind, "refuse");
  });
});

describe("the flow cookie", () => {
  test("sealed and opened by any replica; forged, expired, doubled or retired-key cookies are refused", async () => {
    const snapshot = indexCredentials((await buildCredentials({})).credentials);
    const flow = { state: "st", nonce: "no", verifier: "v".repeat(43) };
    const https = "https://dagu.example.com";
    const header = sealFlow(snapshot, https, flow)!;
    assert.match(header, /^__Host-dagu-oidc=[^;]+; Path=\/; Max-Age=600; HttpOnly; SameSite=Lax; Secure$/);
    const value = header.slice(header.indexOf("=") + 1, header.indexOf(";"));
    const cookie = `${flowCookieName(https)}=${value}`;
    assert.deepEqual(openFlow(snapshot, https, `a=b; ${cookie}`), flow);
    assert.equal(openFlow(snapshot, https, `${cookie}; ${cookie}`), undefined, "two cookies of our name");
    assert.equal(openFlow(snapshot, https, cookie, Date.now() + 601_000), undefined, "expired");
    const parts = value.split(".");
    const flipped = Buffer.from(parts[2]!, "base64url");
    flipped[0]! ^= 1;
    assert.equal(openFlow(snapshot, https, `${flowCookieName(https)}=${parts[0]}.${parts[1]}.${flipped.toString("base64url")}`), undefined, "tampered");
    const other = indexCredentials((await buildCredentials({})).credentials);
    assert.equal(openFlow(other, https, cookie), undefined, "another DaguAuth's key");
    assert.doesNotMatch(sealFlow(snapshot, "http://127.0.0.1:8080", flow)!, /Secure|__Host-/, "plain http on loopback: no Secure");
  });
});

test("URLs under Dagu's base path: the client URL's path; the callback URL is <client_url>/oidc-callback as Dagu builds it", () => {
  assert.equal(ssoBasePath("https://dagu.example.com"), "");
  assert.equal(ssoBasePath("https://dagu.example.com/"), "");
  assert.equal(ssoBasePath("https://dagu.example.com/team/dagu/"), "/team/dagu");
  assert.deepEqual(ssoUrls("https://dagu.example.com"), {
    login: "/oidc-login",
    callback: "/oidc-callback",
    callbackUrl: "https://dagu.example.com/oidc-callback",
    loginPage: "/login",
    setupPage: "/setup",
  });
  assert.deepEqual(ssoUrls("https://dagu.example.com/dagu/"), {
    login: "/dagu/oidc-login",
    callback: "/dagu/oidc-callback",
    callbackUrl: "https://dagu.example.com/dagu/oidc-callback",
    loginPage: "/dagu/login",
    setupPage: "/dagu/setup",
  });
  const based = "https://dagu.example.com/dagu";
  assert.equal(ssoRouteOf("/dagu/oidc-login", based), "login");
  assert.equal(ssoRouteOf("/dagu/oidc-callback?code=x&state=y", based), "callback");
  for (const other of ["/oidc-login", "/oidc-callback", "/x/oidc-login", "/dagu/oidc-login/", "/dagu/dagu/oidc-login", "/dagu/login"]) assert.equal(ssoRouteOf(other, based), undefined, other);
  assert.equal(ssoRouteOf("/oidc-login", "https://dagu.example.com"), "login");
  assert.equal(ssoRouteOf("/oidc-callback?x", undefined), "callback", "without settings at the root (answered: not configured)");
  assert.equal(ssoRouteOf("/dagu/oidc-login", undefined), undefined);
});

test("getConfig(): the SSO button and its label, escaped for a script", () => {
  const page = '<script>function getConfig() { return {\n authMode: "none",\n setupRequired: "true" === "true",\n oidcEnabled: "false" === "true",\n oidcButtonLabel: "",\n }; }</script>';
  const on = rewriteGetConfig(page, { authMode: "builtin", oidcButtonLabel: "Log in </script><b>" })!;
  assert.match(on, /oidcEnabled: true,/);
  assert.match(on, /oidcButtonLabel: "Log in \\u003c\/script\\u003e\\u003cb\\u003e",/);
  assert.match(rewriteGetConfig(page, { authMode: "builtin" })!, /oidcEnabled: false,/);
});

test("Dagu's auth.oidc and DAGU_AUTH_OIDC_*: lists, booleans, roles in any case, a JSON map; variables win; errors name the key", () => {
  const block = {
    oidc: {
      client_id: "dagu",
      client_secret: "from-file",
      client_url: "https://dagu.example.com",
      issuer: "https://idp.example.com",
      scopes: "openid, profile ,email",
      allowed_domains: ["Example.com"],
      auto_signup: "false",
      role_mapping: { default_role: "Operator", group_mappings: { admins: "ADMIN" }, role_attribute_strict: true },
    },
  };
  const read = readDaguOidc(block, { DAGU_AUTH_OIDC_CLIENT_SECRET: "from-env", DAGU_AUTH_OIDC_GROUP_MAPPINGS: '{"devs":"Developer"}' })!;
  assert.deepEqual(read.clientSecret, { value: "from-env", from: "DAGU_AUTH_OIDC_CLIENT_SECRET" });
  const spec = parseDaguOidc(read);
  assert.deepEqual(spec.scopes, ["openid", "profile", "email"]);
  assert.equal(spec.autoSignup, false);
  assert.deepEqual(spec.roleMapping.groupMappings, { devs: "developer" }, "the variable wins over the file");
  assert.equal(spec.roleMapping.defaultRole, "operator");
  assert.equal(oidcSettingsOf(spec, read.clientSecret!.value).allowedDomains[0], "example.com");
  assert.equal(readDaguOidc({ oidc: { button_label: "x" } }, {}), undefined, "no issuer, client or URL: OIDC off");
  assert.throws(() => readDaguOidc({ oidc: { issuer: "https://i" } }, {}), /OIDC needs auth\.oidc\.client_id .*auth\.oidc\.client_url/);
  assert.throws(() => readDaguOidc(block, { DAGU_AUTH_OIDC_DEFAULT_ROLE: "owner" }), /DAGU_AUTH_OIDC_DEFAULT_ROLE "owner" is not a role/);
  assert.throws(() => readDaguOidc(block, { DAGU_AUTH_OIDC_GROUP_MAPPINGS: "admins=admin" }), /DAGU_AUTH_OIDC_GROUP_MAPPINGS must be a JSON object/);
  assert.throws(() => parseDaguOidc(readDaguOidc({ oidc: { ...block.oidc, scopes: ["openid"], whitelist: ["a@b.c"] } }, {})!), /auth\.oidc\.scopes: spec\.oidc\.scopes must include email/);
});
