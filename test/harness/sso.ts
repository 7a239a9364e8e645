// What the SSO tests share: the sidecar over HTTPS with a certificate of the provider's CA (the flow's
// __Host- cookie needs a secure origin), the sidecar's arguments in --kubernetes mode under the
// DaguAuth's ServiceAccount, chromium set up for the cross-site flow, and the person's steps in it:
// Dagu's SSO button, then the provider's login form.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { serviceAccountKubeConfig } from "../../dev/kube.ts";
import { issueCert, type Ca } from "../../dev/pki.ts";
import { launchBrowser } from "./browser.ts";
import { startSidecar, type SidecarInstance } from "./sidecar.ts";

/** Playwright's wait for one UI step; the first page load fetches a 7 MiB bundle. */
export const SSO_STEP_MS = 30_000;

/** The real sidecar over HTTPS on `port` (a certificate for 127.0.0.1 from `ca`, written under `dir`), once it listens. */
export async function startHttpsSidecar(options: { upstream: string; port: number; dir: string; ca: Ca; args: string[] }): Promise<SidecarInstance & { httpsUrl: string }> {
  const cert = await issueCert(options.ca, { commonName: "127.0.0.1", ips: ["127.0.0.1"], usage: "server" });
  await writeFile(join(options.dir, "tls.crt"), cert.certPem);
  await writeFile(join(options.dir, "tls.key"), cert.keyPem, { mode: 0o600 });
  const sidecar = await startSidecar({
    upstream: options.upstream,
    port: options.port,
    args: [...options.args, "--tls-cert", join(options.dir, "tls.crt"), "--tls-key", join(options.dir, "tls.key")],
    // The harness waits on plain http; this one answers HTTPS only.
    wait: "none",
  });
  for (let i = 0; i < 400 && !sidecar.output().includes("sidecar listening"); i++) {
    if (sidecar.process.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!sidecar.output().includes("sidecar listening")) {
    await sidecar.stop("SIGKILL");
    throw new Error(`the HTTPS sidecar did not listen:\n${sidecar.output()}`);
  }
  return Object.assign(sidecar, { httpsUrl: `https://127.0.0.1:${options.port}` });
}

/** `--kubernetes` arguments: the DaguAuth's credentials read under its ServiceAccount (a kubeconfig written under `dir`). */
export async function kubernetesSidecarArgs(dir: string, namespace: string, auth: string, serviceAccount: string): Promise<string[]> {
  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, (await serviceAccountKubeConfig(namespace, serviceAccount)).exportConfig(), { mode: 0o600 });
  return ["--kubernetes", "--namespace", namespace, "--auth", auth, "--kubeconfig", kubeconfig];
}

/** Chromium for the flow: the harness CA is not in its store; localhost (the provider's site) is the loopback address. */
export async function launchSsoBrowser(dir: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await launchBrowser(dir, SSO_STEP_MS, { ignoreHTTPSErrors: true, loopbackHosts: ["localhost"] });
  return { context, page: context.pages()[0] ?? (await context.newPage()) };
}

/** At the provider's login form: fills it in and signs in. */
export async function providerSignIn(page: Page, login: string): Promise<void> {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("any-password");
  await page.getByRole("button", { name: "Sign-in" }).click();
}

/** Dagu's login page, its SSO button (`buttonLabel`) clicked, the provider's form filled in; resolves with where the callback sent the browser. */
export async function clickSsoButton(page: Page, at: { sidecarUrl: string; issuer: string; buttonLabel: string }, login: string): Promise<URL> {
  await page.goto(`${at.sidecarUrl}/login`);
  await page.getByText("Sign in to your account").waitFor();
  await page.getByRole("button", { name: at.buttonLabel }).click();
  await page.waitForURL((url) => url.origin === at.issuer);
  const [callback] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).origin === at.sidecarUrl && new URL(r.url()).pathname === "/oidc-callback"),
    providerSignIn(page, login),
  ]);
  assert.equal(callback.status(), 302);
  return new URL(callback.headers().location ?? "", at.sidecarUrl);
}
