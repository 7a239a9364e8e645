// The SSO redirect flow in headless chromium (playwright-core, Debian's chromium) through Dagu v2.15.1's
// real UI (built from the source's ui/): the sidecar over HTTPS in front of it, Dagu's login page with the
// SSO button the sidecar's getConfig() rewrite advertises, the provider on another site (https://localhost
// vs https://127.0.0.1) and its login form filled in the browser, back at /login#token=, where Dagu's UI
// takes the token and lands logged in with the mapped role. What a browser really does with the flow
// cookie is shown here: `__Host-dagu-oidc`, Secure, HttpOnly, SameSite=Lax, sent on the provider's
// cross-site redirect back, and gone after the callback. A refused login ends on Dagu's login page with a
// message that names no claim, group or address.
//
// Chromium is not optional: without /usr/bin/chromium this test fails with a message (CI installs it).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import type { Credentials, CredentialUser, SsoUsers } from "../../src/api/credentials.ts";
import type { OidcSettings } from "../../src/api/oidc.ts";
import { requireChromium } from "../harness/browser.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { reservePort, startProvider, type TestProvider } from "../harness/oidc-provider.ts";
import type { SidecarInstance } from "../harness/sidecar.ts";
import { clickSsoButton as clickButton, launchSsoBrowser, providerSignIn as signIn, startHttpsSidecar } from "../harness/sso.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

const CLIENT_SECRET = `browser-client-secret-${"b".repeat(16)}`;
const BUTTON_LABEL = "Sign in with Test IdP";

let dir: string;
let dagu: DaguInstance;
let provider: TestProvider;
let sidecar: SidecarInstance;
let sidecarUrl: string;
let built: TestCredentials;
let context: BrowserContext;
let page: Page;
let api: string;
let generation = 1;

type RoleMapping = OidcSettings["roleMapping"];
const MAPPING: RoleMapping = { defaultRole: "viewer", groupsClaim: "groups", groupMappings: { ops: "operator" }, roleAttributeStrict: false, skipOrgRoleSync: false };

async function writeCredentials(extraUsers: CredentialUser[] = [], roleMapping: RoleMapping = MAPPING): Promise<void> {
  generation += 1;
  const credentials: Credentials = {
    ...built.credentials,
    generation,
    users: [...built.credentials.users, ...extraUsers],
    oidc: {
      issuer: provider.issuer,
      clientId: "dagu",
      clientSecret: CLIENT_SECRET,
      clientUrl: sidecarUrl,
      scopes: ["openid", "profile", "email"],
      autoSignup: true,
      whitelist: [],
      allowedDomains: ["example.com"],
      buttonLabel: BUTTON_LABEL,
      caBundle: provider.ca.certPem,
      roleMapping,
    },
  };
  await writeFile(join(dir, "credentials.json"), JSON.stringify(credentials));
  for (let i = 0; i < 400 && !sidecar?.lines().some((l) => l.msg === "credentials loaded" && l.generation === generation); i++) await new Promise((r) => setTimeout(r, 25));
}

async function ssoRecords(): Promise<SsoUsers> {
  try {
    return (JSON.parse(await readFile(join(dir, "state", "sidecar-state.json"), "utf8")) as { ssoUsers?: SsoUsers }).ssoUsers ?? {};
  } catch {
    return {};
  }
}

/** Signed out of Dagu's UI (its token gone) and of the provider (its login form shows again). */
async function signedOutEverywhere(): Promise<void> {
  await context.clearCookies({ domain: "localhost" });
  if (new URL(page.url()).origin === sidecarUrl) await page.evaluate("localStorage.clear()");
}

const providerSignIn = (login: string) => signIn(page, login);
const clickSsoButton = (login: string) => clickButton(page, { sidecarUrl, issuer: provider.issuer, buttonLabel: BUTTON_LABEL }, login);

/** Through the provider's login form in the browser, back to the sidecar; returns the token the UI is handed. */
async function signInThroughProvider(login: string): Promise<{ token: string; welcome: boolean }> {
  // Signed out at the provider, so its login form shows (a live session there would skip it).
  await signedOutEverywhere();
  await page.goto(`${sidecarUrl}/oidc-login`);
  await page.waitForURL((url) => url.origin === provider.issuer);
  // The flow cookie as the browser keeps it, while the person is at the provider.
  const flow = (await context.cookies(sidecarUrl)).find((c) => c.name === "__Host-dagu-oidc");
  assert.ok(flow, "the browser holds the __Host- flow cookie");
  assert.equal(flow.secure, true);
  assert.equal(flow.httpOnly, true);
  assert.equal(flow.sameSite, "Lax");
  assert.equal(flow.path, "/");
  assert.equal(await page.evaluate("document.cookie"), "", "the provider's page cannot see it");
  const [callback] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).origin === sidecarUrl && new URL(r.url()).pathname === "/oidc-callback"),
    providerSignIn(login),
  ]);
  const landed = new URL(callback.headers().location ?? "", sidecarUrl);
  assert.equal(landed.pathname, "/login");
  assert.match(landed.hash, /^#token=/);
  // Dagu's UI takes the token and leaves the login page.
  await page.waitForURL((url) => url.origin === sidecarUrl && url.pathname === "/");
  assert.equal((await context.cookies(sidecarUrl)).some((c) => c.name === "__Host-dagu-oidc"), false, "the callback cleared the flow cookie");
  return { token: decodeURIComponent(landed.hash.slice("#token=".length)), welcome: landed.searchParams.get("welcome") === "true" };
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as { sub: string; role: string; username: string };

async function me(token: string): Promise<{ status: number; role?: string }> {
  const r = await page.request.get(`${sidecarUrl}${api}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await r.json()) as { user?: { role: string } };
  return { status: r.status(), ...(body.user ? { role: body.user.role } : {}) };
}

describe("SSO in headless chromium against a real OpenID provider", () => {
  const missing = requireChromium(); // fails every test without chromium, never skips

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), "sso-browser-"));
    const reserved = await reservePort();
    const port = reserved.port;
    sidecarUrl = `https://127.0.0.1:${port}`;
    provider = await startProvider({ host: "localhost", clients: [{ clientId: "dagu", clientSecret: CLIENT_SECRET, redirectUris: [`${sidecarUrl}/oidc-callback`] }] });
    provider.accounts.set("rosa", { email: "rosa@example.com", email_verified: true, preferred_username: "rosa", groups: ["ops"] });
    dagu = await startDagu({ ui: true });
    api = dagu.version.startsWith("1.") ? "/api/v2" : "/api/v1";
    built = await buildCredentials({ users: [{ username: "admin", password: "admin-password-1", role: "admin" }] });
    await writeCredentials();
    await reserved.release();
    sidecar = await startHttpsSidecar({ upstream: dagu.url, port, dir, ca: provider.ca, args: ["--credentials-file", join(dir, "credentials.json"), "--state-dir", join(dir, "state")] });
    ({ context, page } = await launchSsoBrowser(dir));
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await sidecar?.stop();
    await dagu?.stop();
    await provider?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("Dagu's page gets the SSO button from getConfig()", async () => {
    const response = await page.request.get(`${sidecarUrl}/`);
    const html = await response.text();
    assert.match(html, /authMode:\s*"builtin"/);
    // What Dagu 2's UI reads (ui/src/pages/login.tsx): config.oidcEnabled and config.oidcButtonLabel.
    assert.match(await (await fetch(`${dagu.url}/`)).text(), /oidcEnabled: "false" === "true"/, "Dagu itself has no SSO");
    assert.match(html, /oidcEnabled:\s*true/);
    assert.match(html, /oidcButtonLabel:\s*"Sign in with Test IdP"/);
  });

  test("through Dagu's login page: its SSO button, the provider, and Dagu's UI logged in with the mapped role", async () => {
    provider.accounts.set("otto", { email: "otto@example.com", email_verified: true, preferred_username: "otto", groups: ["ops"] });
    await page.goto(sidecarUrl);
    await page.waitForURL(`${sidecarUrl}/login`);
    await signedOutEverywhere();
    const landed = await clickSsoButton("otto");
    assert.equal(landed.pathname, "/login");
    assert.equal(landed.searchParams.get("welcome"), "true", "a new user");
    // Dagu's UI keeps the token and goes to the dashboard, logged in as otto with the ops group's role.
    await page.waitForURL(`${sidecarUrl}/`);
    await page.getByRole("tab", { name: "Timeline" }).waitFor();
    const token = await page.evaluate<string | null>("localStorage.getItem('dagu_auth_token')");
    assert.ok(token, "Dagu's UI holds the sidecar's token");
    assert.equal(claimsOf(token).role, "operator");
    await page.getByRole("button", { name: "otto", exact: true }).click();
    const menu = page.getByRole("menu");
    await menu.getByText("otto", { exact: true }).waitFor();
    await menu.getByText("operator", { exact: true }).waitFor();
    await page.keyboard.press("Escape");
    // An operator's view: DAGs and runs, no Base Config (developer and up; in the Workflows group, open on
    // /dags) and no Administration (admin).
    await page.goto(`${sidecarUrl}/dags`);
    await page.getByText("Executions", { exact: true }).first().waitFor();
    assert.equal(await page.getByText("Base Config", { exact: true }).count(), 0, "no Base Config for an operator");
    assert.equal(await page.getByText("Administration", { exact: true }).count(), 0, "no Administration for an operator");
  });

  test("strict mode: a login no rule maps is refused on Dagu's login page, with nothing that helps an attacker", async () => {
    await writeCredentials([], { ...MAPPING, roleAttributeStrict: true });
    provider.accounts.set("nemo", { email: "nemo@example.com", email_verified: true, preferred_username: "nemo", groups: ["secret-group-x"] });
    await signedOutEverywhere();
    const before = await ssoRecords();
    const landed = await clickSsoButton("nemo");
    assert.equal(landed.pathname, "/login");
    assert.equal(landed.hash, "", "no token");
    await page.waitForURL((url) => url.pathname === "/login" && url.searchParams.has("error"));
    const shown = page.getByText(/^Authentication failed/);
    await shown.waitFor();
    const message = (await shown.textContent()) ?? "";
    assert.equal(message, "Authentication failed: no role is mapped for your account");
    for (const detail of ["nemo", "secret-group-x", "example.com", "groups", "strict"]) assert.ok(!message.includes(detail), `the message names no ${detail}`);
    assert.equal(await page.evaluate("localStorage.getItem('dagu_auth_token')"), null);
    await page.getByRole("button", { name: "Sign In", exact: true }).waitFor();
    assert.deepEqual(await ssoRecords(), before, "nothing provisioned");
    await writeCredentials();
  });

  test("the whole redirect flow: provider's login form, callback, /login#token= with the mapped role; a new user is welcomed", async () => {
    const { token, welcome } = await signInThroughProvider("rosa");
    assert.equal(claimsOf(token).role, "operator", "the ops group maps to operator");
    assert.equal((await me(token)).status, 200);
    assert.equal(welcome, true, "/login?welcome=true for a new user, as Dagu");
  });

  test("a second login of the same user after an admin pinned another role", async () => {
    const { token: before, welcome } = await signInThroughProvider("rosa");
    assert.equal(welcome, false, "no welcome for a known user");
    await writeCredentials([{ id: "declared-rosa", username: "rosa", role: "developer", email: "rosa@example.com", sso: true, passwordChangedAt: "2026-01-01T00:00:00Z", disabled: false, allowPasswordChange: false }]);
    assert.equal((await me(before)).status, 401, "the record's token ends once a DaguUser pins the person");
    const { token: after } = await signInThroughProvider("rosa");
    assert.equal(claimsOf(after).sub, "declared-rosa");
    assert.equal(claimsOf(after).role, "developer");
    assert.equal((await me(after)).status, 200);
  });

  test("the admin sees the SSO users on Dagu's Users page, marked SSO, with their roles", async () => {
    await signedOutEverywhere();
    await page.goto(`${sidecarUrl}/login`);
    await page.locator("#username").fill("admin");
    await page.locator("#password").fill("admin-password-1");
    await page.getByRole("button", { name: "Sign In", exact: true }).click();
    await page.waitForURL((url) => url.pathname !== "/login");
    await page.goto(`${sidecarUrl}/users`);
    // otto: created by SSO (a record); rosa: now the DaguUser that pins her (sso: true, no password).
    for (const [name, role] of [["otto", "operator"], ["rosa", "developer"]] as const) {
      const row = page.getByRole("row").filter({ has: page.getByRole("cell", { name, exact: true }) });
      await row.getByText("SSO", { exact: true }).waitFor();
      await row.getByText(role, { exact: true }).waitFor();
    }
    await page.getByRole("row").filter({ has: page.getByRole("cell", { name: /^admin\b/ }) }).getByText("Local", { exact: true }).waitFor();
  });
});
