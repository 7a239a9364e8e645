// The OIDC part of a DaguAuth reconcile: the role expression must compile (jq cannot be checked at
// admission), the client secret comes from its Secret into the credentials document, the provider's
// discovery is probed in the background (condition OIDCProviderReachable; password logins never wait
// for it), and the users SSO created are read for status. See docs/adr/0009.
import { oidcSettingsOf, parseSsoUsers, SSO_USERS_KEY, MAX_LISTED_SSO_USERS, type CredentialUser, type OidcSettings, type OidcSpec, type SsoUsers } from "../api/index.ts";
import { Jq } from "../common/jq.ts";
import { describeProviderError, discoverProvider } from "../common/oidc-client.ts";
import { shadowedBy } from "../common/sso-overlay.ts";
import type { OtherCondition, ReadyState } from "./conditions.ts";
import { type OperatorContext } from "./context.ts";
import { secretData } from "../common/kube/secret-data.ts";
import type { KubeObject } from "../common/kube/client.ts";

export const OIDC_CONDITION = "OIDCProviderReachable";
/** A provider that answered is asked again this often; one that did not, sooner. */
const PROBE_OK_MS = 5 * 60_000;
const PROBE_FAILED_MS = 30_000;

let jq: Jq | undefined;
const compiled = new Map<string, string | undefined>();

/** jq's complaint about `expression`, or undefined when it compiles (remembered per expression). */
export async function roleExpressionError(expression: string): Promise<string | undefined> {
  if (compiled.has(expression)) return compiled.get(expression);
  jq ??= new Jq();
  const error = await jq.compileError(expression);
  if (compiled.size > 256) compiled.clear();
  compiled.set(expression, error);
  return error;
}

export async function closeOidcChecks(): Promise<void> {
  await jq?.close();
  jq = undefined;
}

interface Probe {
  key: string;
  ok: boolean | undefined;
  message: string;
  checkedAt: number;
  running: boolean;
}
/** Per DaguAuth key ("namespace/name"): the provider's last probe. */
const probes = new Map<string, Probe>();

export function forgetOidc(authKey: string): void {
  probes.delete(authKey);
}

export interface OidcPlan {
  /** The expression does not compile: nothing is written until it is fixed. */
  invalid?: ReadyState;
  /** Why SSO is off for now (the rest of the document is still written). */
  problem?: ReadyState;
  settings?: OidcSettings;
  condition?: OtherCondition;
  /** When to look at the provider again. */
  requeueAfterMs?: number;
}

/** What planning single sign-on needs: the Secret cache, a log line and the DaguAuth queue (a probe that ends re-queues). */
export type OidcAccess = Pick<OperatorContext, "secrets" | "log" | "enqueue">;

export async function planOidc(ctx: OidcAccess, authKey: string, namespace: string, spec: OidcSpec | undefined): Promise<OidcPlan> {
  if (!spec) {
    probes.delete(authKey);
    return {};
  }
  const expression = spec.roleMapping.roleAttributePath;
  if (expression) {
    const error = await roleExpressionError(expression);
    if (error) return { invalid: { ready: false, reason: "InvalidRoleAttributePath", message: `spec.oidc.roleMapping.roleAttributePath does not compile: ${error}` } };
  }
  let clientSecret: string | undefined;
  if (spec.clientSecretRef) {
    const ref = spec.clientSecretRef;
    const secret = await ctx.secrets.get(namespace, ref.name);
    const value = secretData(secret)[ref.key];
    if (!secret || value === undefined || value === "") {
      const problem: ReadyState = secret
        ? { ready: false, reason: "SecretKeyNotFound", message: `Secret ${ref.name} has no key ${ref.key} (spec.oidc.clientSecretRef.key); single sign-on is off` }
        : { ready: false, reason: "SecretNotFound", message: `Secret ${ref.name} (spec.oidc.clientSecretRef) does not exist; single sign-on is off` };
      return { problem };
    }
    clientSecret = value;
  }
  const settings = oidcSettingsOf(spec, clientSecret);
  const probe = probeProvider(ctx, authKey, settings);
  return { settings, condition: probe.condition, requeueAfterMs: probe.requeueAfterMs };
}

/** Starts a discovery in the background when one is due; the DaguAuth is queued again when it ends. */
function probeProvider(ctx: OidcAccess, authKey: string, settings: OidcSettings): { condition: OtherCondition; requeueAfterMs: number } {
  const key = JSON.stringify([settings.issuer, settings.clientId, settings.caBundle ?? ""]);
  let probe = probes.get(authKey);
  if (!probe || probe.key !== key) {
    probe = { key, ok: undefined, message: "", checkedAt: 0, running: false };
    probes.set(authKey, probe);
  }
  const now = Date.now();
  const every = probe.ok ? PROBE_OK_MS : PROBE_FAILED_MS;
  if (!probe.running && now - probe.checkedAt >= every) {
    const current = probe;
    current.running = true;
    void discoverProvider({ issuer: settings.issuer, clientId: settings.clientId, caBundle: settings.caBundle }).then(
      () => ({ ok: true, message: `discovery document of ${settings.issuer} read` }),
      (error: unknown) => ({ ok: false, message: `discovery of ${settings.issuer} failed: ${describeProviderError(error)}` }),
    ).then((r) => {
      const changed = current.ok !== r.ok || current.message !== r.message;
      Object.assign(current, r, { checkedAt: Date.now(), running: false });
      if (probes.get(authKey) !== current) return;
      if (!r.ok) ctx.log.warn({ daguAuth: authKey, issuer: settings.issuer, error: r.message }, "OIDC provider not reachable");
      if (changed) ctx.enqueue.auth(authKey);
    });
  }
  const condition: OtherCondition =
    probe.ok === undefined
      ? { status: "Unknown", reason: "Checking", message: `reading the discovery document of ${settings.issuer}` }
      : probe.ok
        ? { status: "True", reason: "Discovered", message: probe.message }
        : { status: "False", reason: "DiscoveryFailed", message: `${probe.message}; password logins work, the SSO button shows an error until it answers` };
  const due = Math.max(1000, (probe.ok ? PROBE_OK_MS : PROBE_FAILED_MS) - (now - probe.checkedAt));
  return { condition, requeueAfterMs: probe.ok === undefined ? PROBE_FAILED_MS : due };
}

/** The users SSO created, for status: the count, and the first ones by username with who pins them. */
export function ssoUsersStatus(secret: KubeObject | undefined, declared: readonly CredentialUser[]): { ssoUsers: number; provisionedUsers?: unknown[] } {
  const text = secretData(secret)[SSO_USERS_KEY];
  const parsed = text ? parseSsoUsers(text) : undefined;
  const users: SsoUsers = parsed?.success ? parsed.data : {};
  const list = Object.values(users)
    .sort((a, b) => (a.username < b.username ? -1 : a.username > b.username ? 1 : 0))
    .slice(0, MAX_LISTED_SSO_USERS)
    .map((u) => {
      const pin = shadowedBy(u, declared);
      return {
        username: u.username,
        ...(u.email ? { email: u.email } : {}),
        role: pin?.role ?? u.role,
        ...(u.disabled || pin?.disabled ? { disabled: true } : {}),
        createdAt: u.createdAt,
        ...(pin ? { pinnedBy: pin.username } : {}),
      };
    });
  return { ssoUsers: Object.keys(users).length, ...(list.length > 0 ? { provisionedUsers: list } : {}) };
}
