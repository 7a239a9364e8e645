// Debian's chromium driven by playwright-core, for the tests that look at Dagu's UI as a person would.
// Chromium is not optional: without it those tests fail with `chromiumMissing()` (CI installs it).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeEach } from "node:test";
import { chromium, type BrowserContext, type Page, type Response } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Why the browser tests cannot run, or undefined when chromium is there. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y --no-install-recommends chromium); this test drives Dagu's real UI in it`;
}

/**
 * Fail, never skip: in the calling suite, every test fails when chromium is missing (checked in beforeEach,
 * where a failing `before` would only mark the tests cancelled). Returns whether it is, for the suite's
 * `before` to return early.
 */
export function requireChromium(): boolean {
  const missing = chromiumMissing();
  beforeEach(() => {
    if (missing) throw new Error(missing);
  });
  return missing !== undefined;
}

/**
 * Does `action` and returns the answer to the request it makes the page send to `origin` (waited for, not
 * read from a log whose events may come after what the page shows).
 */
export async function answerTo(page: Page, origin: string, method: string, path: string | RegExp, action: () => Promise<unknown>): Promise<Response> {
  const matches = (pathname: string) => (typeof path === "string" ? pathname === path : path.test(pathname));
  const [response] = await Promise.all([page.waitForResponse((r) => r.request().method() === method && new URL(r.url()).origin === origin && matches(new URL(r.url()).pathname)), action()]);
  return response;
}

export interface BrowserOptions {
  /** Accept the harness CA's certificates (not in chromium's store). */
  readonly ignoreHTTPSErrors?: boolean;
  /** Host names resolved to the loopback address (another site than 127.0.0.1, for cross-site flows). */
  readonly loopbackHosts?: readonly string[];
}

/** A headless chromium with its profile under `dir`, every step waiting at most `stepMs`. */
export async function launchBrowser(dir: string, stepMs: number, options: BrowserOptions = {}): Promise<BrowserContext> {
  const hosts = options.loopbackHosts ?? [];
  const context = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS, ...(hosts.length > 0 ? [`--host-resolver-rules=${hosts.map((h) => `MAP ${h} 127.0.0.1`).join(",")}`] : [])],
    viewport: { width: 1280, height: 800 },
    ...(options.ignoreHTTPSErrors ? { ignoreHTTPSErrors: true } : {}),
  });
  context.setDefaultTimeout(stepMs);
  return context;
}

/** Dagu v2.15.1's license talk that is false behind the sidecar (docs/adr/0017). */
const LICENSE_TALK = [/require a\s+license or trial/, /Community installs can manage/, /License Required/];

/** Which of Dagu's license texts the page shows (none, behind the sidecar). */
export async function licenseTalkShown(page: Page): Promise<string[]> {
  const shown: string[] = [];
  for (const text of LICENSE_TALK) if ((await page.getByText(text).filter({ visible: true }).count()) > 0) shown.push(text.source);
  return shown;
}
