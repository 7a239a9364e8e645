// Dagu's real web UI through the sidecar, in a headless browser (playwright-core driving Debian's
// chromium). The UI is Dagu v2.15.1's own, built here from the source's ui/ (scripts/build-components.sh
// dagu-ui) and embedded in the Dagu binary; Dagu runs with auth off and the sidecar in front rewrites
// getConfig() so the UI runs in builtin mode: its login page, the dashboard, each role's view of a DAG,
// and its change-password dialog, all through the sidecar's own login, JWT and role checks.
//
// Dagu v2.15.1's UI shows every user the DAG's Start button; the server decides. Here the sidecar refuses
// the viewer's start (403, which the UI shows) and nothing reaches Dagu; the admin's runs the DAG.
// The UI opens its multiplexed event stream with `?token=` (an EventSource sends no header).
// Each of the five roles gets Dagu's view of that role (its sidebar), and the admin's Users, API keys and
// webhooks pages list the cluster's resources, read-only (they are DaguUser, DaguApiKey and DaguWebhook
// resources: the page says so and offers no write), without Dagu's community license banners.
//
// Chromium is not optional: without /usr/bin/chromium this test fails with a message (CI installs it).
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { BrowserContext, Page, Request } from "playwright-core";
import { answerTo, launchBrowser, licenseTalkShown, requireChromium } from "../harness/browser.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

const API = "/api/v1";
const ADMIN = { username: "admin", password: "admin-password-1", role: "admin" } as const;
const VIEWER = { username: "vic", password: "viewer-password-1", role: "viewer" } as const;
const OPERATOR = { username: "otis", password: "operator-password-1", role: "operator" } as const;
const DEVELOPER = { username: "dora", password: "developer-password-1", role: "developer" } as const;
const MANAGER = { username: "mona", password: "manager-password-1", role: "manager" } as const;
/** Three keys: more than Dagu's community limit of two, whose banner must not show. */
const API_KEYS = [
  { name: "ci", role: "operator" },
  { name: "grafana", role: "viewer" },
  { name: "release-bot", role: "developer" },
] as const;
const NEW_ADMIN_PASSWORD = "admin-password-2";
/** Playwright's wait for any one UI step; the first page load fetches a 7 MiB bundle. */
const STEP_MS = 30_000;

let dir: string;
let dagu: DaguInstance;
let sidecar: SidecarInstance;
let context: BrowserContext;
let page: Page;
/** Every request the browser sent to the sidecar, with the Authorization it carried and the answer. */
const requests: { method: string; path: string; bearer: boolean; status?: number }[] = [];
const dialogs: string[] = [];
const pageErrors: string[] = [];

/** Dagu's own API, directly (not through the sidecar): what really happened. */
async function daguGet(path: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${dagu.url}${API}${path}`);
  assert.equal(response.status, 200, `GET ${path} on Dagu`);
  return (await response.json()) as Record<string, unknown>;
}

/** hello's runs, as Dagu itself lists them (it answers `dagRuns: null` when there is none). */
async function helloRuns(): Promise<unknown[]> {
  return ((await daguGet("/dag-runs?name=hello")).dagRuns as unknown[] | null) ?? [];
}

async function logIn(user: { username: string; password: string }): Promise<void> {
  await page.locator("#username").fill(user.username);
  await page.locator("#password").fill(user.password);
  await page.getByRole("button", { name: "Sign In" }).click();
}

/** Waits until the UI has left the login page (it returns to where the user was sent from). */
async function loggedIn(): Promise<void> {
  await page.waitForURL((url) => url.pathname !== "/login");
}

/** The user menu: the sidebar's button named after the user; its menu shows the name and the role. */
async function openUserMenu(username: string): Promise<void> {
  await page.getByRole("button", { name: username, exact: true }).click();
  await page.getByRole("menu").waitFor();
}

async function signOut(username: string): Promise<void> {
  await openUserMenu(username);
  await page.getByRole("menuitem", { name: "Sign Out" }).click();
  await page.waitForURL(`${sidecar.url}/login`);
}

/**
 * Does `action` and returns the sidecar's answer to the request it makes the UI send (waited for here,
 * not read from the passive log, whose events may come after what the page shows), checking that the
 * UI sent its token.
 */
async function statusOf(method: string, path: RegExp, action: () => Promise<void>): Promise<number> {
  const response = await answerTo(page, sidecar.url, method, path, action);
  assert.match(response.request().headers().authorization ?? "", /^Bearer \S+$/, `${method} ${path} carries the UI's token`);
  return response.status();
}

const token = () => page.evaluate<string | null>("localStorage.getItem('dagu_auth_token')");

describe("Dagu's real UI through the sidecar, in headless chromium", () => {
  const missing = requireChromium(); // fails every test without chromium, never skips

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), "sidecar-ui-browser-"));
    dagu = await startDagu({ ui: true });
    const built = await buildCredentials({
      users: [{ ...ADMIN }, { ...VIEWER }, { ...OPERATOR }, { ...DEVELOPER }, { ...MANAGER }],
      apiKeys: API_KEYS.map((k) => ({ ...k })),
      webhooks: [{ dagName: "hello", mode: "token" }],
    });
    const credsFile = join(dir, "credentials.json");
    await writeFile(credsFile, JSON.stringify(built.credentials));
    sidecar = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", credsFile, "--state-dir", join(dir, "state")] });

    context = await launchBrowser(dir, STEP_MS);
    page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (r: Request) => {
      const url = new URL(r.url());
      if (url.origin !== sidecar.url) return;
      requests.push({ method: r.method(), path: url.pathname, bearer: /^Bearer \S+$/.test(r.headers().authorization ?? "") });
    });
    page.on("response", (r) => {
      const url = new URL(r.url());
      const entry = requests.findLast((q) => q.method === r.request().method() && q.path === url.pathname && q.status === undefined);
      if (entry) entry.status = r.status();
    });
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    page.on("pageerror", (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await sidecar?.stop();
    await dagu?.stop();
    // Only the screenshot stays in the temporary directory (its path is printed), never in the repository.
    if (dir) for (const f of await readdir(dir)) if (!f.endsWith(".png")) await rm(join(dir, f), { recursive: true, force: true });
  });

  test("the sidecar serves Dagu's built UI, with getConfig() rewritten to builtin mode", async () => {
    const direct = await (await fetch(`${dagu.url}/`)).text();
    assert.match(direct, /authMode:\s*"none"/, "Dagu itself runs with auth off");
    const response = await fetch(`${sidecar.url}/`);
    const html = await response.text();
    assert.equal(response.status, 200);
    assert.match(html, /function getConfig\(\)/);
    assert.match(html, /authMode:\s*"builtin"/);
    assert.match(html, /apiURL:\s*"\/api\/v1"/);
    assert.match(html, /version:\s*"2\.15\.1"/);
    // The bundle is really there (a plain `go build` embeds an empty assets folder: 404).
    const bundle = await fetch(`${sidecar.url}/assets/bundle.js?v=${dagu.version}`);
    assert.equal(bundle.status, 200, "assets/bundle.js through the sidecar");
    assert.match(bundle.headers.get("content-type") ?? "", /javascript/);
    const size = (await bundle.arrayBuffer()).byteLength;
    assert.ok(size > 1_000_000, `bundle.js is ${size} bytes`);
  });

  test("opening the sidecar URL shows Dagu's login page; a wrong password is refused there", async () => {
    await page.goto(sidecar.url);
    await page.waitForURL(`${sidecar.url}/login`);
    await page.getByText("Sign in to your account").waitFor();
    await logIn({ username: VIEWER.username, password: "not-the-password" });
    await page.getByText("Invalid username or password").waitFor();
    assert.equal(await token(), null);
  });

  test("the viewer logs in: the dashboard loads, the user menu shows the user and the role", async () => {
    await logIn(VIEWER);
    await page.waitForURL(`${sidecar.url}/`);
    assert.ok(await token(), "the UI keeps the sidecar's JWT");
    // The Overview's timeline, filled from /dag-runs and the event stream.
    await page.getByRole("tab", { name: "Timeline" }).waitFor();
    await page.getByText(/No runs on /).waitFor();
    await openUserMenu(VIEWER.username);
    const menu = page.getByRole("menu");
    await menu.getByText(VIEWER.username, { exact: true }).waitFor();
    await menu.getByText("viewer", { exact: true }).waitFor();
    await page.keyboard.press("Escape");
  });

  test("the viewer's Start is refused by the sidecar (the UI shows it) and Dagu runs nothing", async () => {
    await page.goto(`${sidecar.url}/dags/hello`);
    await page.getByRole("heading", { name: "hello", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Start", exact: true }).click();
    const start = page.getByRole("dialog", { name: "Start the DAG" });
    assert.equal(await statusOf("POST", /^\/api\/v1\/dags\/hello\/start$/, () => start.getByRole("button", { name: "Start", exact: true }).click()), 403);
    await page.getByText("Insufficient permissions").first().waitFor();
    assert.equal((await helloRuns()).length, 0, "Dagu ran nothing");
  });

  test("each role sees Dagu's view of that role: Base Config from developer, Profiles & Secrets from manager, Administration for the admin", async () => {
    // Dagu v2.15.1's sidebar (ui/src/menu.tsx): an operator sees what a viewer sees (the server decides runs).
    const expected = (role: string) => ({
      "Base Config": ["developer", "manager", "admin"].includes(role),
      "Profiles & Secrets": ["manager", "admin"].includes(role),
      Administration: role === "admin",
    });
    const seen: Record<string, Record<string, boolean>> = {};
    const users = [VIEWER, OPERATOR, DEVELOPER, MANAGER];
    for (const [i, user] of users.entries()) {
      if (i > 0) {
        await signOut(users[i - 1]!.username);
        await logIn(user);
        await loggedIn();
      }
      await page.goto(`${sidecar.url}/dags`);
      await openUserMenu(user.username);
      await page.getByRole("menu").getByText(user.role, { exact: true }).waitFor();
      await page.keyboard.press("Escape");
      // Always there: the anchor that says the sidebar has rendered.
      await page.getByText("Search", { exact: true }).first().waitFor();
      seen[user.role] = {};
      for (const item of Object.keys(expected(user.role))) seen[user.role]![item] = (await page.getByText(item, { exact: true }).count()) > 0;
    }
    assert.deepEqual(seen, Object.fromEntries(users.map((u) => [u.role, expected(u.role)])));
    await signOut(MANAGER.username);
    await logIn(VIEWER);
    await loggedIn();
  });

  test("sign out, then the admin logs in; the admin's Start goes through and Dagu runs hello", async () => {
    await page.goto(`${sidecar.url}/`);
    await signOut(VIEWER.username);
    assert.equal(await token(), null);
    await logIn(ADMIN);
    await loggedIn();
    await openUserMenu(ADMIN.username);
    assert.deepEqual(await page.getByRole("menu").getByText("admin", { exact: true }).allTextContents(), ["admin", "admin"], "name and role");
    await page.keyboard.press("Escape");

    await page.goto(`${sidecar.url}/dags/hello`);
    await page.getByRole("heading", { name: "hello", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Start", exact: true }).click();
    const start = page.getByRole("dialog", { name: "Start the DAG" });
    assert.equal(await statusOf("POST", /^\/api\/v1\/dags\/hello\/start$/, () => start.getByRole("button", { name: "Start", exact: true }).click()), 200);
    await waitForAsync(async () => (await helloRuns()).length === 1, "hello's run in Dagu");
  });

  test("the admin's Users, API keys and webhooks pages: the cluster's resources, read-only, no license banner", async () => {
    await page.goto(`${sidecar.url}/dags`);
    await page.getByText("Administration", { exact: true }).first().waitFor();
    const noLicenseTalk = async () => assert.deepEqual(await licenseTalkShown(page), []);

    await page.goto(`${sidecar.url}/users`);
    await page.getByText("Managed in the cluster as DaguUser resources (kubectl get daguusers): read-only here.").waitFor();
    for (const u of [ADMIN, VIEWER, OPERATOR, DEVELOPER, MANAGER]) await page.getByRole("cell", { name: u.username }).first().waitFor();
    await noLicenseTalk();
    assert.equal(await page.getByRole("button", { name: "Add User" }).filter({ visible: true }).count(), 0, "no Add User");
    const actions = page.locator(`button[aria-label="Actions for ${VIEWER.username}"]`);
    assert.equal(await actions.count(), 1, "Dagu renders the row's menu");
    assert.equal(await actions.filter({ visible: true }).count(), 0, "hidden: every item would write");

    await page.goto(`${sidecar.url}/api-keys`);
    await page.getByText("Managed in the cluster as DaguApiKey resources (kubectl get daguapikeys): read-only here.").waitFor();
    for (const k of API_KEYS) {
      const row = page.getByRole("row").filter({ hasText: k.name });
      await row.waitFor();
      // The Surfaces column: each key's surfaces as Dagu shows them (REST for the REST API).
      await row.getByText("REST", { exact: true }).waitFor();
      await row.getByText(k.role, { exact: true }).waitFor();
    }
    await noLicenseTalk();
    assert.equal(await page.getByRole("button", { name: "Create API Key" }).filter({ visible: true }).count(), 0, "no Create API Key");
    assert.equal(await page.locator("table button[aria-haspopup=menu]").filter({ visible: true }).count(), 0, "no Edit or Revoke menu");

    await page.goto(`${sidecar.url}/webhooks`);
    await page.getByText("Managed in the cluster as DaguWebhook resources (kubectl get daguwebhooks): read-only here.").waitFor();
    const hook = page.getByRole("row").filter({ hasText: "hello" });
    await hook.waitFor();
    await noLicenseTalk();
    await hook.getByRole("button").last().click();
    await page.getByRole("menu").waitFor();
    assert.deepEqual(await page.getByRole("menuitem").filter({ visible: true }).allTextContents(), ["View DAG"], "no Regenerate Token or Delete");
    await page.keyboard.press("Escape");

    // hello's own Webhook tab: Dagu renders its buttons, the page hides them and says why.
    await page.goto(`${sidecar.url}/dags/hello/webhook`);
    await page.getByText("Managed in the cluster as DaguWebhook resources (kubectl get daguwebhooks): read-only here.").waitFor();
    // The webhook as the sidecar lists it (its metadata line), with its action buttons.
    await page.getByText(/^Auth: /).waitFor();
    for (const name of ["Regenerate Token", "Delete"]) {
      const button = page.locator("button").filter({ hasText: name });
      assert.ok((await button.count()) > 0, `Dagu renders ${name}`);
      assert.equal(await button.filter({ visible: true }).count(), 0, `${name} hidden`);
    }

    // Dagu's License page: what the sidecar gives, from its answer to the UI's poll of /license/status.
    const status = page.waitForResponse((r) => new URL(r.url()).pathname === `${API}/license/status`);
    await page.goto(`${sidecar.url}/license`);
    assert.equal((await status).status(), 200);
    await page.getByText("Active", { exact: true }).waitFor();
    await page.getByText("rbac, sso", { exact: true }).waitFor();
    assert.equal(await page.getByText("Deactivate License").count(), 0, "nothing to deactivate");
    const shot = join(dir, "sidecar-ui-api-keys.png");
    await page.goto(`${sidecar.url}/api-keys`);
    await page.getByRole("row").filter({ hasText: "release-bot" }).waitFor();
    await page.screenshot({ path: shot, fullPage: true });
    process.stderr.write(`screenshot: ${shot}\n`);
  });

  test("the change-password dialog works through the sidecar: the new password logs in, the old one is refused", async () => {
    await openUserMenu(ADMIN.username);
    await page.getByRole("menuitem", { name: "Change Password" }).click();
    const modal = page.getByRole("dialog", { name: "Change Password" });
    await modal.locator("#current-password").fill(ADMIN.password);
    await modal.locator("#new-password").fill(NEW_ADMIN_PASSWORD);
    await modal.locator("#confirm-password").fill(NEW_ADMIN_PASSWORD);
    const submit = () => modal.getByRole("button", { name: "Change Password" }).click();
    assert.equal(await statusOf("POST", /^\/api\/v1\/auth\/change-password$/, submit), 200);
    await modal.getByText("Password changed successfully!").waitFor();
    await modal.waitFor({ state: "hidden" });

    await signOut(ADMIN.username);
    await logIn(ADMIN);
    await page.getByText("Invalid username or password").waitFor();
    await logIn({ username: ADMIN.username, password: NEW_ADMIN_PASSWORD });
    await loggedIn();
    await page.goto(`${sidecar.url}/`);
    await page.getByRole("tab", { name: "Timeline" }).waitFor();
    // The admin's run of hello, on the timeline.
    await page.getByText("hello", { exact: true }).first().waitFor();
    const shot = join(dir, "sidecar-ui-dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok((await stat(shot)).size > 10_000);
    process.stderr.write(`screenshot: ${shot}\n`);
  });

  test("the API flow the UI performed went through the sidecar's /api/v1 with its token", (t) => {
    const api = requests.filter((r) => r.path.startsWith("/api/"));
    const flow = new Map<string, number>();
    for (const r of api) {
      const key = `${r.method} ${r.path.replace(/\/[0-9a-f-]{36}$/, "/{id}")} -> ${r.status ?? "?"}${r.bearer ? "" : " (no header)"}`;
      flow.set(key, (flow.get(key) ?? 0) + 1);
    }
    t.diagnostic(`API calls the UI made (count):\n${[...flow].map(([k, n]) => `  ${n} x ${k}`).join("\n")}`);
    assert.ok(api.length > 10, `${api.length} API requests`);
    assert.ok(!api.some((r) => !r.path.startsWith(`${API}/`)), "nothing outside /api/v1");
    // The event stream carries the token in ?token= (checked by the sidecar), everything else a header.
    const withoutHeader = api.filter((r) => !r.bearer).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual([...new Set(withoutHeader)].sort(), [`GET ${API}/events/stream`, `POST ${API}/auth/login`]);
    assert.ok(api.some((r) => r.path === `${API}/events/stream` && r.status === 200), "the event stream was opened");
    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  });
});

async function waitForAsync(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + STEP_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
