// Issue 10's "done means", end to end: kubectl applies a DaguAuth with spec.oidc (its client secret by
// Secret reference) to the real API server; the operator, under its own RBAC, materializes it; the sidecar
// in --kubernetes mode (under the ServiceAccount the operator made) fronts Dagu v2.15.1 with its real UI
// over HTTPS; headless chromium opens Dagu's login page, clicks the SSO button with the configured label,
// signs in at the real OpenID provider's login form and lands on Dagu's dashboard with the mapped role.
// Then an admin pins another role with kubectl (a DaguUser with the person's email and `sso: true`, ADR
// 0009): the second login in the browser gets it. Disabling that DaguUser with kubectl ends its token.
//
// Chromium is not optional: without /usr/bin/chromium this test fails with a message (CI installs it).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { kubectl } from "../../dev/kube.ts";
import { chromiumMissing } from "../harness/browser.ts";
import { startDagu } from "../harness/dagu.ts";
import { reservePort, startProvider } from "../harness/oidc-provider.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { credentials, GROUP, VERSION, waitReady, withOperator } from "../harness/resources.ts";
import { clickSsoButton, kubernetesSidecarArgs, launchSsoBrowser, startHttpsSidecar } from "../harness/sso.ts";

const CLIENT_SECRET = `kubectl-client-secret-${"k".repeat(16)}`;
const BUTTON_LABEL = "Sign in with the Cluster IdP";

/** `kubectl apply --server-side` of these manifests in `ns`, as an admin does from Git. */
async function apply(ns: string, ...items: Record<string, unknown>[]): Promise<void> {
  const result = await kubectl(["apply", "--server-side", "--field-manager", "gitops", "-n", ns, "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items }));
  assert.equal(result.code, 0, `kubectl apply: ${result.stderr}`);
}

const ours = (kind: string, name: string, spec: Record<string, unknown>) => ({ apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec });

/** Dagu's UI after the handoff: on the dashboard, its token in localStorage; the role the API and the user menu show. */
async function dashboardRole(page: Page, sidecarUrl: string, username: string): Promise<{ token: string; role: string }> {
  await page.waitForURL(`${sidecarUrl}/`);
  await page.getByRole("tab", { name: "Timeline" }).waitFor();
  const token = await page.evaluate<string | null>("localStorage.getItem('dagu_auth_token')");
  assert.ok(token, "Dagu's UI holds the sidecar's token");
  const me = await page.request.get(`${sidecarUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(me.status(), 200);
  const user = ((await me.json()) as { user: { username: string; role: string } }).user;
  assert.equal(user.username, username);
  await page.getByRole("button", { name: username, exact: true }).click();
  const menu = page.getByRole("menu");
  await menu.getByText(username, { exact: true }).waitFor();
  await menu.getByText(user.role, { exact: true }).waitFor();
  await page.keyboard.press("Escape");
  return { token, role: user.role };
}

test("kubectl applies a DaguAuth with spec.oidc: Dagu's UI gets a working SSO button; kubectl pins a role and disables the user", async (t) => {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const ns = await testNamespace(t, "sso-ui");
  const reserved = await reservePort();
  const sidecarUrl = `https://127.0.0.1:${reserved.port}`;
  // The provider on another site (https://localhost) than Dagu (https://127.0.0.1): the flow is cross-site.
  const provider = await startProvider({ host: "localhost", clients: [{ clientId: "dagu", clientSecret: CLIENT_SECRET, redirectUris: [`${sidecarUrl}/oidc-callback`] }] });
  t.after(() => provider.stop());
  provider.accounts.set("maya", { email: "maya@example.com", email_verified: true, preferred_username: "maya", groups: ["ops"] });
  await withOperator(t);

  const started = Date.now();
  await apply(
    ns,
    { apiVersion: "v1", kind: "Secret", metadata: { name: "admin-pw" }, stringData: { password: "admin-password-1" } },
    { apiVersion: "v1", kind: "Secret", metadata: { name: "oidc-client" }, stringData: { secret: CLIENT_SECRET } },
    ours("DaguAuth", "dagu", {
      builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } },
      oidc: {
        issuer: provider.issuer,
        clientId: "dagu",
        clientSecretRef: { name: "oidc-client", key: "secret" },
        clientUrl: sidecarUrl,
        buttonLabel: BUTTON_LABEL,
        allowedDomains: ["example.com"],
        caBundle: provider.ca.certPem,
        roleMapping: { groupMappings: { ops: "operator" } },
      },
    }),
  );
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  t.diagnostic(`kubectl apply to Ready (Materialized): ${Date.now() - started} ms`);
  assert.equal((await credentials(ns, "dagu")).oidc?.clientSecret, CLIENT_SECRET, "the client secret reached the credentials Secret");

  const dagu = await startDagu({ ui: true });
  t.after(() => dagu.stop());
  const dir = await mkdtemp(join(tmpdir(), "sso-k8s-browser-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const args = await kubernetesSidecarArgs(dir, ns, "dagu", String(auth.status!.serviceAccountName));
  await reserved.release();
  const sidecar = await startHttpsSidecar({ upstream: dagu.url, port: reserved.port, dir, ca: provider.ca, args });
  t.after(() => sidecar.stop());
  const { context, page } = await launchSsoBrowser(dir);
  t.after(() => context.close().catch(() => undefined));
  const at = { sidecarUrl, issuer: provider.issuer, buttonLabel: BUTTON_LABEL };

  // First login: Dagu's login page, the button, the provider's form, Dagu's dashboard as an operator.
  const first = Date.now();
  const landed = await clickSsoButton(page, at, "maya");
  assert.equal(landed.pathname, "/login");
  assert.equal(landed.searchParams.get("welcome"), "true", "a new user");
  assert.match(landed.hash, /^#token=/);
  const mapped = await dashboardRole(page, sidecarUrl, "maya");
  t.diagnostic(`first SSO login in chromium, button to dashboard: ${Date.now() - first} ms`);
  assert.equal(mapped.role, "operator", "the ops group maps to operator");

  // The admin pins maya's role in Git: a DaguUser with her email, marked SSO. Her record's token ends.
  await apply(ns, ours("DaguUser", "maya", { authRef: { name: "dagu" }, username: "maya", email: "maya@example.com", sso: true, role: "developer" }));
  await waitReady(ns, "daguusers", "maya", "Materialized");
  await eventually("the record's token is refused once a DaguUser pins maya", async () => ((await page.request.get(`${sidecarUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${mapped.token}` } })).status() === 401 ? true : undefined), 30_000, 100);

  // Second login, signed out of Dagu's UI and of the provider: the pinned role.
  await page.evaluate("localStorage.clear()");
  await context.clearCookies();
  const again = await clickSsoButton(page, at, "maya");
  assert.equal(again.searchParams.get("welcome"), null, "a known user is not welcomed");
  const pinned = await dashboardRole(page, sidecarUrl, "maya");
  assert.equal(pinned.role, "developer", "the role the DaguUser pins");

  // Disabled by kubectl: the token stops working at once.
  const patched = await kubectl(["patch", "-n", ns, "daguuser", "maya", "--type", "merge", "-p", JSON.stringify({ spec: { disabled: true } })]);
  assert.equal(patched.code, 0, patched.stderr);
  const disabled = Date.now();
  await eventually("the disabled user's token is refused", async () => ((await page.request.get(`${sidecarUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${pinned.token}` } })).status() === 401 ? true : undefined), 30_000, 50);
  t.diagnostic(`kubectl patch disabled=true to the token refused: ${Date.now() - disabled} ms`);
  assert.equal(sidecar.output().includes(CLIENT_SECRET), false, "no client secret in the sidecar's logs");
});
