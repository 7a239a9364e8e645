// Dagu's real UI under a base path (DAGU_BASE_PATH=/dagu) through a sidecar that knows it (--dagu-base-path,
// ADR 0020), in headless chromium: the login page under the base path, the sidecar's login, and the DAG list
// that the UI loads from Dagu's API under the base path (getConfig().apiURL, left as Dagu rendered it) with
// the sidecar's JWT. Every request the browser sends stays under the base path; a viewer's Start is refused.
//
// Chromium is not optional: without /usr/bin/chromium this test fails with a message (CI installs it).
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { answerTo, launchBrowser, requireChromium } from "../harness/browser.ts";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, ROLE_USERS } from "../../dev/known-credentials.ts";

const BASE = "/dagu";
const API = `${BASE}/api/v1`;
const STEP_MS = 30_000;
const VIEWER = ROLE_USERS.find((u) => u.role === "viewer")!;

let dir: string;
let dagu: DaguInstance;
let sidecar: SidecarInstance;
let context: BrowserContext;
let page: Page;
const paths: string[] = [];

/** Does `action` and returns the sidecar's answer to the request it makes the UI send. */
const sidecarAnswer = (method: string, path: string, action: () => Promise<unknown>) => answerTo(page, sidecar.url, method, path, action);

describe("Dagu's real UI under a base path, through a sidecar with --dagu-base-path, in headless chromium", () => {
  const missing = requireChromium(); // fails every test without chromium, never skips

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), "sidecar-base-path-browser-"));
    dagu = await startDagu({ ui: true, basePath: BASE });
    const built = await buildCredentials({ users: ROLE_USERS.map((u) => ({ ...u })) });
    const file = join(dir, "credentials.json");
    await writeFile(file, JSON.stringify(built.credentials));
    sidecar = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", file, "--dagu-base-path", BASE] });
    context = await launchBrowser(dir, STEP_MS);
    page = context.pages()[0] ?? (await context.newPage());
    page.on("request", (r) => {
      const url = new URL(r.url());
      if (url.origin === sidecar.url) paths.push(url.pathname);
    });
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await sidecar?.stop();
    await dagu?.stop();
    if (dir) for (const f of await readdir(dir)) await rm(join(dir, f), { recursive: true, force: true });
  });

  test("the page under the base path keeps Dagu's basePath and apiURL, in builtin mode", async () => {
    const html = await (await fetch(`${sidecar.url}${BASE}/`)).text();
    assert.match(html, /authMode:\s*"builtin"/);
    assert.match(html, /basePath:\s*"\/dagu"/);
    assert.match(html, /apiURL:\s*"\/dagu\/api\/v1"/);
  });

  test("the viewer signs in under the base path and the DAG list loads through the sidecar", async () => {
    await page.goto(`${sidecar.url}${BASE}/`);
    await page.waitForURL(`${sidecar.url}${BASE}/login`);
    await page.locator("#username").fill(VIEWER.username);
    await page.locator("#password").fill(VIEWER.password);
    const login = await sidecarAnswer("POST", `${API}/auth/login`, () => page.getByRole("button", { name: "Sign In" }).click());
    assert.equal(login.status(), 200);
    await page.waitForURL((url) => url.pathname !== `${BASE}/login`);
    const list = await sidecarAnswer("GET", `${API}/dags`, () => page.goto(`${sidecar.url}${BASE}/dags`));
    assert.equal(list.status(), 200);
    assert.match(list.request().headers().authorization ?? "", /^Bearer \S+$/, "the UI sends the sidecar's token");
    await page.getByText("hello", { exact: true }).first().waitFor();
  });

  test("the viewer's Start is refused by the sidecar under the base path", async () => {
    await page.goto(`${sidecar.url}${BASE}/dags/hello`);
    await page.getByRole("heading", { name: "hello", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Start", exact: true }).click();
    const start = page.getByRole("dialog", { name: "Start the DAG" });
    const answer = await sidecarAnswer("POST", `${API}/dags/hello/start`, () => start.getByRole("button", { name: "Start", exact: true }).click());
    assert.equal(answer.status(), 403);
  });

  test("every request the browser sent stayed under the base path", () => {
    assert.ok(paths.length > 5, `${paths.length} requests`);
    assert.deepEqual(paths.filter((p) => p !== BASE && !p.startsWith(`${BASE}/`)), []);
  });
});
