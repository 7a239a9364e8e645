// `npm run demo` as a new user runs it: the script starts (its own control plane, the operator, Dagu
// v2.15.1 with its web UI, the sidecar) and prints what to do; what it prints works: the page it names
// renders Dagu's UI in chromium and the printed admin logs in to the dashboard (and sees the cluster's users
// on Dagu's Users page, read-only, without license banners), the printed API key and
// webhook curl targets answer under /api/v1. Ctrl-C (SIGINT) stops everything and the script exits 0.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { BrowserContext } from "playwright-core";
import { launchBrowser, licenseTalkShown, requireChromium } from "../harness/browser.ts";
import { repoRoot } from "../../dev/components.ts";
import { freePort } from "../../dev/control-plane.ts";

const STEP_MS = 30_000;

describe("npm run demo", () => {
  const missing = requireChromium(); // fails every test without chromium, never skips

  let demo: ChildProcess | undefined;
  let output = "";
  let dir: string;
  let context: BrowserContext | undefined;
  let url: string;

  before(async () => {
    if (missing) return;
    dir = await mkdtemp(join(tmpdir(), "demo-ui-"));
    const port = await freePort();
    demo = spawn(process.execPath, [join(repoRoot, "scripts", "demo.ts")], {
      env: { ...process.env, DAGU_AUTH_DEMO_PORT: String(port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    demo.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
    demo.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d));
    const deadline = Date.now() + 300_000;
    while (!output.includes("Press Ctrl-C")) {
      if (demo.exitCode !== null || Date.now() > deadline) throw new Error(`the demo did not get ready:\n${output.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    url = `http://127.0.0.1:${port}`;
    context = await launchBrowser(dir, STEP_MS);
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    if (demo && demo.exitCode === null) {
      demo.kill("SIGKILL");
      await new Promise((r) => demo!.once("exit", r));
    }
    if (dir) for (const f of await readdir(dir)) if (!f.endsWith(".png")) await rm(join(dir, f), { recursive: true, force: true });
  });

  const printed = (pattern: RegExp): string => {
    const m = pattern.exec(output);
    assert.ok(m, `the demo printed nothing like ${pattern}:\n${output.slice(-2000)}`);
    return m[1]!;
  };

  test("the printed URL serves Dagu's UI: the login page renders and the printed admin reaches the dashboard", async () => {
    assert.ok(output.includes(`Dagu, protected:   ${url}/`), output.slice(-2000));
    const bundle = await fetch(`${url}/assets/bundle.js`);
    assert.equal(bundle.status, 200, "the demo serves the built UI");
    await bundle.arrayBuffer();
    const adminPassword = printed(/log in: +admin \/ (\S+)/);
    const page = context!.pages()[0] ?? (await context!.newPage());
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(`${url}/`);
    await page.waitForURL(`${url}/login`);
    await page.getByText("Sign in to your account").waitFor();
    await page.locator("#username").fill("admin");
    await page.locator("#password").fill(adminPassword);
    await page.getByRole("button", { name: "Sign In" }).click();
    await page.waitForURL((u) => u.pathname !== "/login");
    await page.getByRole("tab", { name: "Timeline" }).waitFor();
    await page.getByRole("button", { name: "admin", exact: true }).waitFor();
    const shot = join(dir, "demo-dashboard.png");
    await page.screenshot({ path: shot });
    assert.ok((await stat(shot)).size > 10_000);
    process.stderr.write(`screenshot: ${shot}\n`);
    // The demo's users are DaguUsers: Dagu's Users page lists them read-only, with no license banner.
    await page.goto(`${url}/users`);
    await page.getByText("Managed in the cluster as DaguUser resources (kubectl get daguusers): read-only here.").waitFor();
    await page.getByRole("cell", { name: "admin", exact: true }).first().waitFor();
    assert.deepEqual(await licenseTalkShown(page), []);
    assert.deepEqual(pageErrors, []);
  });

  test("the printed curls use /api/v1 and work: the API key lists DAGs, the webhook starts hello", async () => {
    const apiKey = printed(/curl -H "Authorization: Bearer (dagu_\w+)" \S+\/api\/v1\/dags/);
    const dags = await fetch(`${url}/api/v1/dags`, { headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(dags.status, 200);
    assert.ok(((await dags.json()) as { dags: { fileName: string }[] }).dags.some((d) => d.fileName === "hello"));
    const webhookToken = printed(/curl -X POST \S+\/api\/v1\/webhooks\/hello -H "Authorization: Bearer (dagu_wh_\w+)"/);
    const fired = await fetch(`${url}/api/v1/webhooks/hello`, {
      method: "POST",
      headers: { authorization: `Bearer ${webhookToken}`, "content-type": "application/json" },
      body: JSON.stringify({ payload: { from: "demo-test" } }),
    });
    assert.equal(fired.status, 200, await fired.clone().text());
    assert.equal(((await fired.json()) as { dagName: string }).dagName, "hello");
    assert.doesNotMatch(output, /\/api\/v2\//, "no Dagu 1 paths in what the demo prints");
  });

  test("Ctrl-C stops everything and the demo exits 0", async () => {
    const exited = new Promise<number | null>((r) => demo!.once("exit", (code) => r(code)));
    demo!.kill("SIGINT");
    assert.equal(await exited, 0);
    assert.match(output, /stopping the sidecar, Dagu, the operator and the control plane/);
  });
});
