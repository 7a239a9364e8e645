// Dagu v2.15.1's real UI in headless chromium in front of a standalone sidecar (`--config` without
// initial_admin, `--state-dir`): Dagu's setup page creates the first admin, and there, unlike the Kubernetes
// mode (sidecar-ui-browser.test.ts), the Users and API keys pages manage through the sidecar's own API: their
// buttons are offered and work, past Dagu's community limit of two keys, with no license banner.
//
// Chromium is not optional: without /usr/bin/chromium this test fails with a message (CI installs it).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { launchBrowser, licenseTalkShown, requireChromium } from "../harness/browser.ts";
import { repoRoot } from "../../dev/components.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";

const API = "/api/v1";
const ROOT = { username: "root", password: "root-password-1" };
const STEP_MS = 30_000;
/** The configuration page's example without initial_admin (test/fixtures/convert). */
const CONFIG = join(repoRoot, "test", "fixtures", "convert", "page-builtin-no-admin.yaml");

let dir: string;
let dagu: DaguInstance;
let sidecar: SidecarInstance;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

interface StoredState {
  users: Record<string, { username: string; role: string }>;
  apiKeys: Record<string, { name: string; role: string; allowedSurfaces: string[] }>;
}
const state = async () => JSON.parse(await readFile(join(dir, "state", "sidecar-state.json"), "utf8")) as StoredState;

const noLicenseTalk = async () => assert.deepEqual(await licenseTalkShown(page), []);

describe("Dagu's real UI in front of a standalone sidecar, in headless chromium", () => {
  const missing = requireChromium(); // fails every test without chromium, never skips

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), "sidecar-ui-standalone-"));
    dagu = await startDagu({ ui: true });
    sidecar = await startSidecar({ upstream: dagu.url, args: ["--config", CONFIG, "--state-dir", join(dir, "state")] });
    context = await launchBrowser(dir, STEP_MS);
    page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await sidecar?.stop();
    await dagu?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("Dagu's setup page creates the first admin, who lands on the dashboard", async () => {
    await page.goto(sidecar.url);
    await page.waitForURL(`${sidecar.url}/setup`);
    await page.locator("#username").fill(ROOT.username);
    await page.locator("#password").fill(ROOT.password);
    await page.locator("#confirmPassword").fill(ROOT.password);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL((url) => url.pathname !== "/setup");
    await page.getByRole("button", { name: ROOT.username, exact: true }).waitFor();
    assert.deepEqual(Object.values((await state()).users).map((u) => [u.username, u.role]), [[ROOT.username, "admin"]]);
  });

  test("the Users page offers Add User, and it works (kept in --state-dir); no license banner, no read-only notice", async () => {
    await page.goto(`${sidecar.url}/users`);
    await page.getByRole("cell", { name: ROOT.username }).first().waitFor();
    await noLicenseTalk();
    assert.equal(await page.getByText(/Managed in the cluster/).count(), 0, "management works here");
    await page.getByRole("button", { name: "Add User" }).click();
    const dialog = page.getByRole("dialog", { name: "Create User" });
    await dialog.locator("#username").fill("nina");
    await dialog.locator("#password").fill("nina-password-1");
    // Dagu's form starts with no workspace granted; the sidecar's roles hold in every workspace.
    await dialog.getByRole("combobox").last().click();
    await page.getByRole("option", { name: "All workspaces" }).click();
    await dialog.getByRole("button", { name: "Create" }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.getByRole("cell", { name: "nina" }).first().waitFor();
    assert.ok(Object.values((await state()).users).some((u) => u.username === "nina"), "nina is in the state directory");
  });

  test("the API keys page creates a third key (past Dagu's community limit of two), its Surfaces filled", async () => {
    const login = await fetch(`${sidecar.url}${API}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ROOT) });
    const { token } = (await login.json()) as { token: string };
    for (const name of ["first", "second"]) {
      const created = await fetch(`${sidecar.url}${API}/api-keys`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ name, role: "viewer", allowedSurfaces: ["rest_api"], attributionClass: "service_account" }),
      });
      assert.equal(created.status, 201, await created.clone().text());
    }
    await page.goto(`${sidecar.url}/api-keys`);
    await page.getByRole("row").filter({ hasText: "second" }).waitFor();
    await noLicenseTalk();
    await page.getByRole("button", { name: "Create API Key" }).click();
    const dialog = page.getByRole("dialog", { name: "Create API Key" });
    await dialog.locator("#name").fill("third");
    await dialog.getByRole("button", { name: "Create Key" }).click();
    await page.getByRole("dialog", { name: "API Key Created" }).waitFor();
    await page.getByRole("button", { name: "Done" }).click();
    for (const name of ["first", "second", "third"]) await page.getByRole("row").filter({ hasText: name }).getByText("REST", { exact: true }).waitFor();
    assert.deepEqual(Object.values((await state()).apiKeys).map((k) => k.name).sort(), ["first", "second", "third"]);
    await noLicenseTalk();
    assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  });
});
