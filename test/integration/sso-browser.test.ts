// The SSO redirect flow in headless chromium (playwright-core, Debian's chromium): the sidecar over HTTPS,
// the provider on another site (https://localhost vs https://127.0.0.1), its login form filled in the
// browser, and back at /login#token=. What a browser really does with the flow cookie is shown here:
// `__Host-dagu-oidc`, Secure, HttpOnly, SameSite=Lax, sent on the provider's cross-site redirect back,
// and gone after the callback. The sidecar fronts a real Dagu; Dagu 2's UI (its SSO button, the token
// taken into localStorage) is not built on this machine: with it, the button is the way in (see below).
//
// Chromium is not optional: without /usr/bin/chromium this test fails with a message (CI installs it).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { Credentials, CredentialUser } from "../../src/api/credentials.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { reservePort, startProvider, type TestProvider } from "../harness/oidc-provider.ts";
import { issueCert } from "../../dev/pki.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

const CHROMIUM = "/usr/bin/chromium";
const CLIENT_SECRET = `browser-client-secret-${"b".repeat(16)}`;
const STEP_MS = 30_000;

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

async function writeCredentials(extraUsers: CredentialUser[] = []): Promise<void> {
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
      buttonLabel: "Sign in with Test IdP",
      caBundle: provider.ca.certPem,
      roleMapping: { defaultRole: "viewer", groupsClaim: "groups", groupMappings: { ops: "operator" }, roleAttributeStrict: false, skipOrgRoleSync: false },
    },
  };
  await writeFile(join(dir, "credentials.json"), JSON.stringify(credentials));
}

/** Through the provider's login form in the browser, back to the sidecar; returns the token the UI is handed. */
async function signInThroughProvider(login: string): Promise<{ token: string; welcome: boolean }> {
  // Signed out at the provider, so its login form shows (a live session there would skip it).
  await context.clearCookies({ domain: "localhost" });
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
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any-password");
  await page.getByRole("button", { name: "Sign-in" }).click();
  await page.waitForURL((url) => url.origin === sidecarUrl && url.pathname === "/login" && url.hash.startsWith("#token="));
  const landed = new URL(page.url());
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
  const missing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium)`;
  beforeEach(() => {
    if (missing) throw new Error(missing);
  });

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), "sso-browser-"));
    const reserved = await reservePort();
    const port = reserved.port;
    sidecarUrl = `https://127.0.0.1:${port}`;
    provider = await startProvider({ host: "localhost", clients: [{ clientId: "dagu", clientSecret: CLIENT_SECRET, redirectUris: [`${sidecarUrl}/oidc-callback`] }] });
    provider.accounts.set("rosa", { email: "rosa@example.com", email_verified: true, preferred_username: "rosa", groups: ["ops"] });
    const cert = await issueCert(provider.ca, { commonName: "127.0.0.1", ips: ["127.0.0.1"], usage: "server" });
    await writeFile(join(dir, "tls.crt"), cert.certPem);
    await writeFile(join(dir, "tls.key"), cert.keyPem);
    dagu = await startDagu();
    api = dagu.version.startsWith("1.") ? "/api/v2" : "/api/v1";
    built = await buildCredentials({ users: [{ username: "admin", password: "admin-password-1", role: "admin" }] });
    await writeCredentials();
    await reserved.release();
    sidecar = await startSidecar({
      upstream: dagu.url,
      port,
      args: ["--credentials-file", join(dir, "credentials.json"), "--state-dir", join(dir, "state"), "--tls-cert", join(dir, "tls.crt"), "--tls-key", join(dir, "tls.key")],
      wait: "none",
    });
    for (let i = 0; i < 400 && !sidecar.output().includes("sidecar listening"); i++) await new Promise((r) => setTimeout(r, 50));
    context = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      // The harness CA is not in chromium's store; localhost is pinned to the loopback address.
      ignoreHTTPSErrors: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync", "--host-resolver-rules=MAP localhost 127.0.0.1"],
    });
    context.setDefaultTimeout(STEP_MS);
    page = context.pages()[0] ?? (await context.newPage());
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
    // Dagu 2's template carries the SSO keys; the UI then renders the button with this label.
    if (/oidcEnabled/.test(await (await fetch(`${dagu.url}/`)).text())) {
      assert.match(html, /oidcEnabled:\s*true/);
      assert.match(html, /oidcButtonLabel:\s*"Sign in with Test IdP"/);
    }
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
    for (let i = 0; i < 200 && !sidecar.lines().some((l) => l.msg === "credentials loaded" && l.generation === generation); i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal((await me(before)).status, 401, "the record's token ends once a DaguUser pins the person");
    const { token: after } = await signInThroughProvider("rosa");
    assert.equal(claimsOf(after).sub, "declared-rosa");
    assert.equal(claimsOf(after).role, "developer");
    assert.equal((await me(after)).status, 200);
  });
});
