// Debian's chromium driven by playwright-core, for the tests that look at Dagu's UI as a person would.
// Chromium is not optional: without it those tests fail with `chromiumMissing()` (CI installs it).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

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
