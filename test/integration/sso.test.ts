// Single sign-on through the sidecar against a real OpenID provider (npm oidc-provider on 127.0.0.1 over
// HTTPS with the harness CA), a real Dagu behind the sidecar, and people logging in through the provider's
// own login form. Each role-mapping rule, strict mode, skip-sync, whitelist and domains, auto sign-up on
// and off, declared users pinning a role, and every bad input of issue 10, each refused with nothing
// provisioned. The sidecar reads a credentials file (what the operator writes), users go to --state-dir.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import type { Credentials, CredentialUser, SsoUsers } from "../../src/api/credentials.ts";
import type { OidcSettings } from "../../src/api/oidc.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { authorize, Browser, reservePort, startProvider, type TestAccount, type TestProvider } from "../harness/oidc-provider.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

const CLIENT_SECRET = `client-secret-${"x".repeat(24)}`;
const BASE = "/dagu";
const OTHER_SECRET = `other-secret-${"y".repeat(24)}`;

let dir: string;
let dagu: DaguInstance;
let provider: TestProvider;
let otherProvider: TestProvider;
let sidecar: SidecarInstance;
let sidecarUrl: string;
let built: TestCredentials;
let generation = 1;
let api: string;
let standalonePort: Awaited<ReturnType<typeof reservePort>>;
let basedPort: Awaited<ReturnType<typeof reservePort>>;

const baseOidc = (): OidcSettings => ({
  issuer: provider.issuer,
  clientId: "dagu",
  clientSecret: CLIENT_SECRET,
  clientUrl: sidecarUrl,
  scopes: ["openid", "profile", "email"],
  autoSignup: true,
  whitelist: [],
  allowedDomains: [],
  buttonLabel: "Sign in with Test IdP",
  caBundle: provider.ca.certPem,
  roleMapping: { defaultRole: "viewer", groupsClaim: "groups", groupMappings: {}, roleAttributeStrict: false, skipOrgRoleSync: false },
});

/** Writes the credentials file with these OIDC settings (and extra users) and waits until the sidecar has loaded it. */
type SettingsPatch = Partial<Omit<OidcSettings, "roleMapping">> & { roleMapping?: Partial<OidcSettings["roleMapping"]> };
async function configure(oidc: SettingsPatch | undefined, extraUsers: CredentialUser[] = []): Promise<void> {
  generation += 1;
  const base = baseOidc();
  const settings = oidc ? { ...base, ...oidc, roleMapping: { ...base.roleMapping, ...oidc.roleMapping } } : undefined;
  const credentials: Credentials = { ...built.credentials, generation, users: [...built.credentials.users, ...extraUsers], ...(settings ? { oidc: settings } : {}) };
  if (!settings) delete credentials.oidc;
  await writeFile(join(dir, "credentials.json"), JSON.stringify(credentials));
  const deadline = Date.now() + 10_000;
  while (!sidecar.lines().some((l) => l.msg === "credentials loaded" && l.generation === generation)) {
    if (Date.now() > deadline) throw new Error(`the sidecar did not load generation ${generation}:\n${sidecar.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function ssoUsers(): Promise<SsoUsers> {
  try {
    return (JSON.parse(await readFile(join(dir, "state", "sidecar-state.json"), "utf8")) as { ssoUsers?: SsoUsers }).ssoUsers ?? {};
  } catch {
    return {};
  }
}

const subjects = async () => Object.values(await ssoUsers()).map((u) => u.subject);

interface LoginResult {
  /** Where the sidecar sent the browser last (a path on the sidecar, with query and fragment). */
  location: string;
  token?: string;
  error?: string;
  welcome: boolean;
}

interface Tamper {
  authUrl?: (url: URL) => void;
  callbackUrl?: (url: URL) => void;
  /** Before the callback: what the browser holds for the sidecar. */
  cookies?: (jar: Map<string, string>) => void;
  /** The browser to use (to keep cookies across two logins). */
  browser?: Browser;
}

async function ssoLogin(login: string, tamper: Tamper = {}): Promise<LoginResult & { callback: string; flowCookie: string | undefined; browser: Browser }> {
  const browser = tamper.browser ?? new Browser(provider.ca);
  const start = await browser.get(`${sidecarUrl}/oidc-login`);
  assert.equal(start.status, 302, `GET /oidc-login answers a redirect: ${start.text}`);
  if (!start.location!.startsWith(provider.issuer)) return { ...parse(start.location!), callback: "", flowCookie: undefined, browser };
  const authUrl = new URL(start.location!);
  tamper.authUrl?.(authUrl);
  const callback = new URL(await authorize(browser, authUrl.href, login, `${sidecarUrl}/oidc-callback`));
  tamper.callbackUrl?.(callback);
  const jar = browser.cookies(new URL(sidecarUrl).origin);
  const flowCookie = jar.get("dagu-oidc");
  tamper.cookies?.(jar);
  const done = await browser.get(callback.href);
  assert.equal(done.status, 302, `the callback answers a redirect: ${done.text}`);
  return { ...parse(done.location!), callback: callback.href, flowCookie, browser };
}

function parse(location: string): LoginResult {
  const url = new URL(location);
  assert.equal(url.origin, sidecarUrl, "the sidecar only ever sends the browser to itself (no open redirect)");
  assert.equal(url.pathname, "/login");
  const token = new URLSearchParams(url.hash.slice(1)).get("token") ?? undefined;
  const error = url.searchParams.get("error") ?? undefined;
  return { location: url.pathname + url.search + url.hash, ...(token ? { token } : {}), ...(error ? { error } : {}), welcome: url.searchParams.get("welcome") === "true" };
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as { sub: string; role: string; username: string };

async function me(token: string): Promise<{ status: number; user?: { id: string; username: string; role: string } }> {
  const r = await fetch(`${sidecarUrl}${api}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await r.json()) as { user?: { id: string; username: string; role: string } };
  return { status: r.status, ...(body.user ? { user: body.user } : {}) };
}

function account(login: string, claims: TestAccount): void {
  provider.accounts.set(login, claims);
}

/** The reason of the sidecar's last audit line for the SSO callback (or login). */
function lastSsoReason(): string | undefined {
  const entries = sidecar.lines().flatMap((l) => (l.msg === "decision" ? [l.audit as { path?: string; reason?: string }] : []));
  return entries.filter((e) => e.path === "/oidc-callback" || e.path === "/oidc-login").at(-1)?.reason;
}

/** Refused: back on the login page with an error and no token, nobody new recorded, and for the reason expected. */
async function refused(result: LoginResult, before: string[], message: RegExp, reason?: RegExp): Promise<void> {
  assert.equal(result.token, undefined, `no token: ${result.location}`);
  assert.match(result.error ?? "", message);
  assert.deepEqual(await subjects(), before, "nothing provisioned");
  // The audit line is written as the answer goes out: give it a moment.
  for (let i = 0; reason && i < 40 && !reason.test(lastSsoReason() ?? ""); i++) await new Promise((r) => setTimeout(r, 25));
  if (reason) assert.match(lastSsoReason() ?? "", reason, "refused for the reason under test");
}

describe("single sign-on against a real OpenID provider", () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sso-"));
    const reserved = await reservePort();
    const port = reserved.port;
    sidecarUrl = `http://127.0.0.1:${port}`;
    const redirect = `${sidecarUrl}/oidc-callback`;
    standalonePort = await reservePort();
    basedPort = await reservePort();
    const basedRedirect = `http://127.0.0.1:${basedPort.port}${BASE}/oidc-callback`;
    const standaloneRedirect = `http://127.0.0.1:${standalonePort.port}/oidc-callback`;
    provider = await startProvider({ clients: [{ clientId: "dagu", clientSecret: CLIENT_SECRET, redirectUris: [redirect, standaloneRedirect, basedRedirect] }, { clientId: "other", clientSecret: OTHER_SECRET, redirectUris: [redirect] }] });
    otherProvider = await startProvider({ clients: [{ clientId: "dagu", clientSecret: CLIENT_SECRET, redirectUris: [redirect] }], ca: provider.ca });
    dagu = await startDagu();
    api = dagu.version.startsWith("1.") ? "/api/v2" : "/api/v1";
    built = await buildCredentials({ users: [{ username: "admin", password: "admin-password-1", role: "admin" }] });
    await writeFile(join(dir, "credentials.json"), JSON.stringify({ ...built.credentials, generation, oidc: baseOidc() }));
    await reserved.release();
    sidecar = await startSidecar({ upstream: dagu.url, port, args: ["--credentials-file", join(dir, "credentials.json"), "--state-dir", join(dir, "state")] });
  });

  after(async () => {
    await sidecar?.stop();
    await dagu?.stop();
    await provider?.stop();
    await otherProvider?.stop();
    // Held until a test releases them (a filtered run may not): a held port keeps the process alive.
    await standalonePort?.release();
    await basedPort?.release();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    await configure({});
  });

  test("the UI gets the SSO button and its label from getConfig()", async () => {
    const page = await (await fetch(`${sidecarUrl}/`)).text();
    assert.match(page, /authMode:\s*"builtin"/);
    // Dagu 2's page has the SSO keys (Dagu 1's UI has no SSO button; ui.test.ts covers the rewrite).
    if (api === "/api/v1") {
      assert.match(page, /oidcEnabled:\s*true/);
      assert.match(page, /oidcButtonLabel:\s*"Sign in with Test IdP"/);
    }
    await configure(undefined);
    const off = await fetch(`${sidecarUrl}/oidc-login`, { redirect: "manual" });
    assert.equal(off.status, 404, "without OIDC settings the SSO routes do not exist");
  });

  test("under Dagu's base path (the client URL's path): its page's button target, every redirect and the callback URL are below it", async (t) => {
    // A Dagu of its own with DAGU_BASE_PATH, and a sidecar in front that knows it (--dagu-base-path, ADR 0020; detected under it).
    const based = await startDagu({ basePath: BASE });
    t.after(() => based.stop());
    const basedUrl = `http://127.0.0.1:${basedPort.port}`;
    const file = join(dir, "based-credentials.json");
    const oidc: OidcSettings = { ...baseOidc(), clientUrl: `${basedUrl}${BASE}`, roleMapping: { ...baseOidc().roleMapping, groupMappings: { ops: "operator" } } };
    await writeFile(file, JSON.stringify({ ...built.credentials, generation: 1, oidc }));
    await basedPort.release();
    const front = await startSidecar({ upstream: based.url, port: basedPort.port, args: ["--credentials-file", file, "--state-dir", join(dir, "based-state"), "--dagu-base-path", BASE] });
    t.after(() => front.stop());
    account("basil", { email: "basil@example.com", email_verified: true, preferred_username: "basil", groups: ["ops"] });

    // Where Dagu's login page sends the SSO button: `${config.basePath}/oidc-login` (ui/src/pages/login.tsx).
    const page = await (await fetch(`${basedUrl}${BASE}/login`)).text();
    const basePath = /basePath:\s*"([^"]*)"/.exec(page)?.[1];
    assert.equal(basePath, BASE, "Dagu's page says its base path");
    const browser = new Browser(provider.ca);
    assert.equal((await browser.get(`${basedUrl}/oidc-login`)).status, 404, "not at the root");
    const start = await browser.get(`${basedUrl}${basePath}/oidc-login`);
    assert.equal(start.status, 302);
    const authUrl = new URL(start.location!);
    assert.equal(authUrl.origin, new URL(provider.issuer).origin);
    assert.equal(authUrl.searchParams.get("redirect_uri"), `${basedUrl}${BASE}/oidc-callback`, "<client_url>/oidc-callback, as Dagu builds it");
    const callback = await authorize(browser, authUrl.href, "basil", `${basedUrl}${BASE}/oidc-callback`);
    const done = await browser.get(callback);
    assert.equal(done.status, 302);
    const landed = new URL(done.location!);
    assert.equal(landed.origin + landed.pathname, `${basedUrl}${BASE}/login`);
    assert.equal(landed.searchParams.get("welcome"), "true");
    const token = new URLSearchParams(landed.hash.slice(1)).get("token");
    assert.ok(token, done.location);
    assert.equal(claimsOf(token).role, "operator");
    const me = await fetch(`${basedUrl}${BASE}${api}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200, "the flow completes: the token works");
    // ...on Dagu's own API under the base path, as Dagu's UI calls it (getConfig().apiURL), and nowhere else.
    const dags = await fetch(`${basedUrl}${BASE}${api}/dags`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(dags.status, 200, await dags.clone().text());
    await dags.arrayBuffer();
    const root = await fetch(`${basedUrl}${api}/dags`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(root.status, 404, "outside the base path nothing is served");
    await root.arrayBuffer();
    // Where the browser lands is Dagu's login page under its base path (through the sidecar).
    const loginPage = await fetch(`${basedUrl}${BASE}/login?welcome=true`);
    assert.equal(loginPage.status, 200);
    assert.match(await loginPage.text(), /function getConfig\(\)/);
    // A refusal lands on the login page under the base path too (a callback without the flow cookie).
    const refused = await new Browser(provider.ca).get(`${basedUrl}${BASE}/oidc-callback?code=x&state=y`);
    assert.equal(refused.status, 302);
    const error = new URL(refused.location!);
    assert.equal(error.pathname, `${BASE}/login`);
    assert.match(error.searchParams.get("error") ?? "", /login session was not found/);
  });

  test("a new user is created with the role of their highest mapped group; the next login finds them and syncs the role", async () => {
    await configure({ roleMapping: { groupMappings: { devs: "developer", ops: "operator", readers: "viewer" } } });
    account("alice", { email: "Alice@Example.com", email_verified: true, preferred_username: "alice.smith", groups: ["readers", "ops", "devs"] });
    const first = await ssoLogin("alice");
    assert.ok(first.token, `a token: ${first.location}`);
    assert.equal(first.welcome, true, "?welcome=true for a new user");
    const claims = claimsOf(first.token);
    assert.equal(claims.role, "developer", "the highest mapped role wins");
    assert.equal(claims.username, "alice_smith", "Dagu's username from preferred_username");
    const who = await me(first.token);
    assert.equal(who.status, 200);
    assert.equal(who.user?.username, "alice_smith");
    const records = Object.values(await ssoUsers()).filter((u) => u.subject === "alice");
    assert.equal(records.length, 1);
    assert.equal(records[0]!.email, "alice@example.com", "the address is kept lower-cased");

    account("alice", { email: "alice@example.com", email_verified: true, preferred_username: "alice.smith", groups: ["ops"] });
    const second = await ssoLogin("alice");
    assert.equal(second.welcome, false);
    assert.equal(claimsOf(second.token!).sub, claims.sub, "the same user");
    assert.equal(claimsOf(second.token!).role, "operator", "the role follows the groups at each login");
    assert.equal((await me(first.token)).status, 200, "the first token still works");
  });

  test("skipOrgRoleSync keeps the first login's role", async () => {
    await configure({ roleMapping: { groupMappings: { admins: "admin", ops: "operator" }, skipOrgRoleSync: true } });
    account("bob", { email: "bob@example.com", preferred_username: "bob", groups: ["ops"] });
    assert.equal(claimsOf((await ssoLogin("bob")).token!).role, "operator");
    account("bob", { email: "bob@example.com", preferred_username: "bob", groups: ["admins"] });
    assert.equal(claimsOf((await ssoLogin("bob")).token!).role, "operator", "not synced");
  });

  test("roleAttributePath (jq) comes first, groupMappings next, defaultRole last; dot paths reach nested groups", async () => {
    await configure({
      roleMapping: {
        roleAttributePath: 'if (.department == "it") then "ADMIN" elif (.department == "odd") then "superuser" else empty end',
        groupsClaim: "realm_access.roles",
        groupMappings: { "dagu-dev": "developer" },
        defaultRole: "operator",
      },
    });
    account("carl", { email: "carl@example.com", preferred_username: "carl", department: "it", realm_access: { roles: ["dagu-dev"] } });
    assert.equal(claimsOf((await ssoLogin("carl")).token!).role, "admin", "the expression wins (any case)");
    account("dina", { email: "dina@example.com", preferred_username: "dina", department: "odd", realm_access: { roles: ["dagu-dev"] } });
    assert.equal(claimsOf((await ssoLogin("dina")).token!).role, "developer", "not a role: the groups decide");
    account("emil", { email: "emil@example.com", preferred_username: "emil", realm_access: { roles: ["other"] } });
    assert.equal(claimsOf((await ssoLogin("emil")).token!).role, "operator", "nothing matched: the default role");
    account("fay", { email: "fay@example.com", preferred_username: "fay" });
    await configure({ roleMapping: { defaultRole: "developer" } });
    assert.equal(claimsOf((await ssoLogin("fay")).token!).role, "developer", "no mapping configured: the default role");
  });

  test("roleAttributeStrict refuses a login no rule maps, and nothing is provisioned", async () => {
    await configure({ roleMapping: { groupMappings: { admins: "admin" }, roleAttributeStrict: true } });
    account("gus", { email: "gus@example.com", preferred_username: "gus", groups: ["visitors"] });
    await refused(await ssoLogin("gus"), await subjects(), /no role is mapped/);
    account("gus", { email: "gus@example.com", preferred_username: "gus", groups: ["admins"] });
    assert.equal(claimsOf((await ssoLogin("gus")).token!).role, "admin");
  });

  test("whitelist and allowed domains: exact, lower-cased; either admits", async () => {
    await configure({ whitelist: ["hugo@partner.org"], allowedDomains: ["example.com"] });
    account("hugo", { email: "HUGO@partner.org", preferred_username: "hugo" });
    assert.ok((await ssoLogin("hugo")).token, "a whitelisted address");
    account("ida", { email: "ida@Example.COM", preferred_username: "ida" });
    assert.ok((await ssoLogin("ida")).token, "an allowed domain");
    const before = await subjects();
    account("jan", { email: "jan@sub.example.com", preferred_username: "jan" });
    await refused(await ssoLogin("jan"), before, /not authorized/);
    account("kim", { email: "kim@partner.org.evil.com", preferred_username: "kim" });
    await refused(await ssoLogin("kim"), before, /not authorized/);
  });

  test("without auto sign-up only known and declared people get in; a declared user pins the role and shadows the record", async () => {
    account("lea", { email: "lea@example.com", preferred_username: "lea", groups: [] });
    const provisioned = await ssoLogin("lea");
    assert.ok(provisioned.token);
    await configure({ autoSignup: false });
    account("max", { email: "max@example.com", preferred_username: "max" });
    await refused(await ssoLogin("max"), await subjects(), /automatic account creation is disabled/);
    assert.ok((await ssoLogin("lea")).token, "an existing SSO user still gets in");

    const declared: CredentialUser = { id: "declared-max", username: "maximilian", role: "manager", email: "max@example.com", sso: true, passwordChangedAt: "2026-01-01T00:00:00Z", disabled: false, allowPasswordChange: false };
    const pinLea: CredentialUser = { id: "declared-lea", username: "lea", role: "developer", email: "LEA@example.com", sso: true, passwordChangedAt: "2026-01-01T00:00:00Z", disabled: false, allowPasswordChange: false };
    await configure({ autoSignup: false }, [declared, pinLea]);
    const max = await ssoLogin("max");
    assert.equal(claimsOf(max.token!).sub, "declared-max", "the declared user, matched by email");
    assert.equal(claimsOf(max.token!).role, "manager");
    assert.equal((await me(provisioned.token!)).status, 401, "the shadowed record's tokens stop at once");
    const lea = await ssoLogin("lea");
    assert.equal(claimsOf(lea.token!).sub, "declared-lea");
    assert.equal(claimsOf(lea.token!).role, "developer", "the pinned role");

    await configure({ autoSignup: false }, [{ ...declared, disabled: true }]);
    assert.equal((await me(max.token!)).status, 401, "a disabled user's tokens stop at once");
    await refused(await ssoLogin("max"), await subjects(), /disabled/);
  });

  test("the Users list shows SSO users; password login and change-password refuse them", async () => {
    account("nia", { email: "nia@example.com", preferred_username: "nia" });
    const nia = await ssoLogin("nia");
    const adminLogin = await fetch(`${sidecarUrl}${api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "admin-password-1" }) });
    const { token } = (await adminLogin.json()) as { token: string };
    const list = (await (await fetch(`${sidecarUrl}${api}/users`, { headers: { authorization: `Bearer ${token}` } })).json()) as { users: { username: string; authProvider?: string }[] };
    const entry = list.users.find((u) => u.username === "nia");
    assert.ok(entry, "the SSO user is listed");
    if (api === "/api/v1") assert.equal(entry.authProvider, "oidc");
    const change = await fetch(`${sidecarUrl}${api}/auth/change-password`, { method: "POST", headers: { authorization: `Bearer ${nia.token}`, "content-type": "application/json" }, body: JSON.stringify({ currentPassword: "whatever-1", newPassword: "whatever-2" }) });
    assert.equal(change.status, 403);
  });

  describe("bad inputs: refused, nothing provisioned", () => {
    test("state mismatch", async () => {
      account("s1", { email: "s1@example.com", preferred_username: "s1" });
      const before = await subjects();
      await refused(await ssoLogin("s1", { callbackUrl: (u) => u.searchParams.set("state", "forged-state") }), before, /could not be verified/, /^state_mismatch$/);
    });

    test("a callback without cookies", async () => {
      account("s2", { email: "s2@example.com", preferred_username: "s2" });
      const before = await subjects();
      await refused(await ssoLogin("s2", { cookies: (jar) => jar.clear() }), before, /session was not found/, /^no_flow_cookie$/);
    });

    test("a replayed code (the callback sent twice with the same cookie)", async () => {
      account("s3", { email: "s3@example.com", preferred_username: "s3" });
      const first = await ssoLogin("s3");
      assert.ok(first.token);
      const before = await subjects();
      const browser = new Browser(provider.ca);
      browser.cookies(new URL(sidecarUrl).origin).set("dagu-oidc", first.flowCookie!);
      const again = await browser.get(first.callback);
      await refused(parse(again.location!), before, /could not be verified/, /^code_refused$/);
    });

    test("nonce mismatch (the authorization request's nonce swapped on the way)", async () => {
      account("s4", { email: "s4@example.com", preferred_username: "s4" });
      const before = await subjects();
      await refused(await ssoLogin("s4", { authUrl: (u) => u.searchParams.set("nonce", "attacker-nonce") }), before, /could not be verified/, /^nonce_mismatch$/);
    });

    test("an ID token from another issuer, and one for another client, swapped into the token response", async () => {
      account("s5", { email: "s5@example.com", preferred_username: "s5" });
      otherProvider.accounts.set("s5", { email: "s5@example.com", preferred_username: "s5" });
      const before = await subjects();
      for (const [source, clientId, secret] of [[otherProvider, "dagu", CLIENT_SECRET], [provider, "other", OTHER_SECRET]] as const) {
        const result = await ssoLogin("s5", {
          authUrl: (u) => {
            // The attacker's own real flow, with the victim's nonce: a genuine, signed ID token.
            const nonce = u.searchParams.get("nonce")!;
            provider.tamperNextToken(async (body) => ({ ...body, id_token: await realIdToken(source, clientId, secret, nonce) }));
          },
        });
        await refused(result, before, /could not be verified/, source === otherProvider ? /^(wrong_issuer|id_token_unknown_key)$/ : /^wrong_audience$/);
      }
    });

    test("an expired ID token (it lives 1 s and the network delays it 7 s)", async () => {
      account("s6", { email: "s6@example.com", preferred_username: "s6" });
      const before = await subjects();
      provider.idTokenTtl = 1;
      try {
        const result = await ssoLogin("s6", { authUrl: () => provider.tamperNextToken((body) => body, 7000) });
        await refused(result, before, /could not be verified/, /^id_token_expired$/);
      } finally {
        provider.idTokenTtl = 3600;
      }
    });

    test("alg: none (the ID token's signature stripped)", async () => {
      account("s7", { email: "s7@example.com", preferred_username: "s7" });
      const before = await subjects();
      const result = await ssoLogin("s7", {
        authUrl: () =>
          provider.tamperNextToken((body) => {
            const [, payload] = String(body.id_token).split(".");
            return { ...body, id_token: `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.` };
          }),
      });
      await refused(result, before, /could not be verified/, /^id_token_algorithm$/);
    });

    test("groups that are not a list", async () => {
      await configure({ roleMapping: { groupMappings: { admins: "admin" } } });
      account("s8", { email: "s8@example.com", preferred_username: "s8", groups: "admins" });
      await refused(await ssoLogin("s8"), await subjects(), /groups in an unexpected form/, /^groups_not_a_list$/);
    });

    test("an oversized claim", async () => {
      account("s9", { email: "s9@example.com", preferred_username: "s9", padding: "p".repeat(70 * 1024) });
      await refused(await ssoLogin("s9"), await subjects(), /too much user information/, /^claims_too_large$/);
    });

    test("an unverified email, and an address with a second @", async () => {
      account("s10", { email: "s10@example.com", email_verified: false, preferred_username: "s10" });
      await refused(await ssoLogin("s10"), await subjects(), /not verified/, /^email_unverified$/);
      await configure({ allowedDomains: ["example.com"] });
      account("s11", { email: "s11@evil.org@example.com", preferred_username: "s11" });
      await refused(await ssoLogin("s11"), await subjects(), /not valid/, /^email_malformed$/);
    });

    test("the provider down: a clear error on the login page, and password login keeps working", async () => {
      await provider.down();
      try {
        const browser = new Browser(provider.ca);
        const start = await browser.get(`${sidecarUrl}/oidc-login`);
        // Discovery was done before: the authorization URL is built without the provider; the provider
        // itself cannot be reached, and a restart of the sidecar would say so at once.
        const answer = start.location!.startsWith(provider.issuer) ? undefined : parse(start.location!);
        if (answer) assert.match(answer.error ?? "", /unavailable/);
        const login = await fetch(`${sidecarUrl}${api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "admin-password-1" }) });
        assert.equal(login.status, 200, "password login works");
        // A new provider configuration has to be discovered: with the provider down, the button says so.
        await configure({ issuer: provider.issuer.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p)}/`) });
        const fresh = await new Browser(provider.ca).get(`${sidecarUrl}/oidc-login`);
        assert.match(parse(fresh.location!).error ?? "", /unavailable/);
      } finally {
        await provider.up();
      }
    });
  });

  test("standalone: Dagu's auth.oidc with --config (variables win), users kept in --state-dir across a restart", async () => {
    const home = await mkdtemp(join(tmpdir(), "sso-standalone-"));
    try {
      const caFile = join(home, "ca.pem");
      await writeFile(caFile, provider.ca.certPem);
      const url = `http://127.0.0.1:${standalonePort.port}`;
      await writeFile(
        join(home, "config.yaml"),
        [
          "auth:",
          "  mode: builtin",
          "  builtin:",
          "    initial_admin: {username: admin, password: admin-password-1}",
          "  oidc:",
          `    client_id: dagu`,
          `    client_secret: ${CLIENT_SECRET}`,
          `    client_url: ${url}`,
          `    issuer: ${provider.issuer}`,
          "    role_mapping:",
          "      group_mappings: {devs: developer}",
        ].join("\n"),
      );
      const args = ["--config", join(home, "config.yaml"), "--state-dir", join(home, "state")];
      // Dagu's config has no CA setting: an internal CA comes through Node's NODE_EXTRA_CA_CERTS.
      const env = { PATH: process.env.PATH ?? "", NODE_EXTRA_CA_CERTS: caFile, DAGU_AUTH_OIDC_GROUP_MAPPINGS: '{"devs":"operator"}' };
      await standalonePort.release();
      let standalone = await startSidecar({ upstream: dagu.url, port: standalonePort.port, args, env });
      account("olga", { email: "olga@example.com", preferred_username: "olga", groups: ["devs"] });
      const login = async () => {
        const browser = new Browser(provider.ca);
        const start = await browser.get(`${url}/oidc-login`);
        assert.ok(start.location?.startsWith(provider.issuer), `to the provider, not ${start.location}:\n${standalone.output().slice(-3000)}`);
        const done = await browser.get(await authorize(browser, start.location!, "olga", `${url}/oidc-callback`));
        const token = new URLSearchParams(new URL(done.location!).hash.slice(1)).get("token");
        assert.ok(token, `a token, not ${done.location}:\n${standalone.output().slice(-3000)}`);
        return token;
      };
      try {
        const token = await login();
        assert.ok(token);
        assert.equal(claimsOf(token).role, "operator", "DAGU_AUTH_OIDC_GROUP_MAPPINGS wins over the file");
        await standalone.stop();
        standalone = await startSidecar({ upstream: dagu.url, port: standalonePort.port, args, env });
        const r = await fetch(`${url}${api}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(r.status, 200, `the SSO user survived the restart (state dir):\n${standalone.output().slice(-3000)}`);
        assert.equal(claimsOf(await login()).sub, claimsOf(token).sub, "and is found again at the next login");
      } finally {
        await standalone.stop();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test("standalone without an initial admin: SSO waits for Dagu's setup page (as Dagu v2.15.1), and a user it creates then counts as a user", async () => {
    // The port of the test above (registered at the provider), free again once that sidecar stopped.
    const home = await mkdtemp(join(tmpdir(), "sso-setup-"));
    try {
      const caFile = join(home, "ca.pem");
      await writeFile(caFile, provider.ca.certPem);
      const url = `http://127.0.0.1:${standalonePort.port}`;
      const config = ["auth:", "  mode: builtin", "  oidc:", "    client_id: dagu", `    client_secret: ${CLIENT_SECRET}`, `    client_url: ${url}`, `    issuer: ${provider.issuer}`];
      await writeFile(join(home, "config.yaml"), config.join("\n"));
      const stateFile = join(home, "state", "sidecar-state.json");
      const standalone = await startSidecar({
        upstream: dagu.url,
        port: standalonePort.port,
        args: ["--config", join(home, "config.yaml"), "--state-dir", join(home, "state")],
        env: { PATH: process.env.PATH ?? "", NODE_EXTRA_CA_CERTS: caFile },
      });
      try {
        const page = async () => (await (await fetch(`${url}/`)).text()).match(/setupRequired:\s*(true|false)/)?.[1];
        const ssoRecords = async () => Object.keys((JSON.parse(await readFile(stateFile, "utf8").catch(() => "{}")) as { ssoUsers?: SsoUsers }).ssoUsers ?? {}).length;
        assert.equal(await page(), "true", "Dagu's setup page: no user yet");
        // Before setup, both SSO routes send the browser to the setup page, never to the provider.
        const browser = new Browser(provider.ca);
        const start = await browser.get(`${url}/oidc-login`);
        assert.equal(start.status, 302);
        assert.equal(start.location, `${url}/setup`);
        const callback = await browser.get(`${url}/oidc-callback?code=c&state=s`);
        assert.equal(callback.location, `${url}/setup`);
        assert.equal(await ssoRecords(), 0, "nothing provisioned");

        const setup = await fetch(`${url}${api}/auth/setup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "root", password: "root-password-1" }) });
        assert.equal(setup.status, 200, await setup.clone().text());
        assert.equal(await page(), "false");
        account("sina", { email: "sina@example.com", preferred_username: "sina", groups: [] });
        const go = await browser.get(`${url}/oidc-login`);
        assert.ok(go.location?.startsWith(provider.issuer), `to the provider once setup is done, not ${go.location}`);
        const done = await browser.get(await authorize(browser, go.location!, "sina", `${url}/oidc-callback`));
        const token = new URLSearchParams(new URL(done.location!, url).hash.slice(1)).get("token");
        assert.ok(token, `a token, not ${done.location}`);
        assert.equal(claimsOf(token).role, "viewer", "the default role");
        assert.equal(await ssoRecords(), 1);
        // Setup stays closed (users and SSO users count, as in Dagu's user count).
        const again = await fetch(`${url}${api}/auth/setup`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "other", password: "other-password-1" }) });
        assert.equal(again.status, 403);
      } finally {
        await standalone.stop();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test("no secret in the sidecar's logs: client secret, codes, tokens", async (t) => {
    account("zed", { email: "zed@example.com", preferred_username: "zed" });
    const result = await ssoLogin("zed");
    const code = new URL(result.callback).searchParams.get("code")!;
    const logs = sidecar.output();
    assert.ok(logs.includes("SSO login"), "the logs were captured");
    const last = provider.tokenResponses.at(-1)!;
    for (const secret of [CLIENT_SECRET, code, result.token!, String(last.id_token), String(last.access_token), result.flowCookie!]) {
      assert.ok(!logs.includes(secret), "a secret value appears in the sidecar's logs");
    }
    // Figures: how long the sidecar spends on a callback that logs someone in (code exchange and userinfo
    // at the provider on loopback, role mapping, the record written to --state-dir, a token issued).
    const times = sidecar.lines().flatMap((l) => {
      const a = l.audit as { path?: string; reason?: string; durationMs?: number } | undefined;
      return a?.path === "/oidc-callback" && (a.reason === "sso_login" || a.reason === "sso_user_created") && a.durationMs !== undefined ? [a.durationMs] : [];
    }).sort((x, y) => x - y);
    assert.ok(times.length >= 10);
    t.diagnostic(`successful SSO callbacks: ${times.length}, median ${times[Math.floor(times.length / 2)]} ms, max ${times.at(-1)} ms`);
  });
});

/** A genuine ID token from `source` for `clientId` with this nonce: the attacker logs in there themselves. */
async function realIdToken(source: TestProvider, clientId: string, secret: string, nonce: string): Promise<string> {
  const browser = new Browser(source.ca);
  const redirect = `${sidecarUrl}/oidc-callback`;
  const verifier = "v".repeat(43);
  const challenge = Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))).toString("base64url");
  const auth = new URL(`${source.issuer}/auth`);
  for (const [k, v] of Object.entries({ client_id: clientId, redirect_uri: redirect, response_type: "code", scope: "openid email profile", nonce, state: "attacker", code_challenge: challenge, code_challenge_method: "S256" })) auth.searchParams.set(k, v);
  const back = new URL(await authorize(browser, auth.href, "s5", redirect));
  const form = new URLSearchParams({ grant_type: "authorization_code", code: back.searchParams.get("code")!, redirect_uri: redirect, client_id: clientId, client_secret: secret, code_verifier: verifier });
  const token = await browser.get(`${source.issuer}/token`, { method: "POST", body: form.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } });
  return (JSON.parse(token.text) as { id_token: string }).id_token;
}
