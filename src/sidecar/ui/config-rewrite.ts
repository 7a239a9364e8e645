// Dagu's UI reads its settings from `function getConfig()` in the HTML page Dagu renders. Dagu behind
// the sidecar runs with auth off and says `authMode: "none"`; the sidecar rewrites that page so the UI
// runs as with Dagu's own auth: builtin mode (login page, JWT in localStorage, roles from /auth/me) or
// basic mode (the browser's Basic prompt). Setup is required only where Dagu would ask for it and the
// sidecar can do it (a standalone sidecar without any user); the SSO button shows when the credentials
// carry OIDC settings (the sidecar answers /oidc-login). The license the UI reads says what the sidecar
// gives every cluster (roles and SSO: no community limits, no banners; docs/adr/0017). Where users, API keys
// and webhooks are resources in the cluster, a small script makes their pages say so and hides the write
// buttons that would only be refused. Everything else in the page stays as Dagu rendered it.
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";

export interface UiRewrite {
  readonly authMode: "builtin" | "basic";
  /** Dagu's first-run setup page: only a standalone sidecar without any user asks for it. */
  readonly setupRequired?: boolean;
  /** The SSO button's label, when single sign-on is configured. */
  readonly oidcButtonLabel?: string;
  /**
   * Users, API keys and webhooks are DaguUser, DaguApiKey and DaguWebhook resources (no management API
   * here): their pages say so and offer no write.
   */
  readonly managedInCluster?: boolean;
}

/**
 * Dagu 2's license status (getConfig().license and GET /license/status) as the sidecar answers it: valid,
 * with the features the sidecar itself provides (roles for users and API keys, SSO). `community: true`
 * keeps Dagu's license banner and its "Deactivate" section away and leaves the features that Dagu's own
 * server licenses (audit pages, incident management) marked as unlicensed, which is true of the Dagu
 * behind the sidecar.
 */
export const SIDECAR_LICENSE = {
  valid: true,
  plan: "dagu-auth",
  expiry: "",
  features: ["rbac", "sso"],
  gracePeriod: false,
  graceEndsAt: "",
  community: true,
  source: "dagu-auth",
  warningCode: "",
  error: "",
} as const;

/** Largest HTML page rewritten; a bigger one is not Dagu's index page and passes unchanged. */
export const MAX_REWRITE_BYTES = 2 * 1024 * 1024;

const GET_CONFIG = /function\s+getConfig\s*\(\s*\)\s*\{/;

/**
 * Rewrites the getConfig() settings of a Dagu HTML page; undefined when the page has no getConfig()
 * (then it passes unchanged). Replaces only inside the function's returned object literal.
 */
export function rewriteGetConfig(html: string, rewrite: UiRewrite): string | undefined {
  const start = html.search(GET_CONFIG);
  if (start < 0) return undefined;
  const end = html.indexOf("</script>", start);
  const stop = end < 0 ? html.length : end;
  let body = html.slice(start, stop);
  body = replaceValue(body, "authMode", JSON.stringify(rewrite.authMode), true);
  body = replaceValue(body, "setupRequired", rewrite.setupRequired ? "true" : "false", false);
  body = replaceValue(body, "oidcEnabled", rewrite.oidcButtonLabel !== undefined ? "true" : "false", false);
  if (rewrite.oidcButtonLabel !== undefined) body = replaceValue(body, "oidcButtonLabel", scriptString(rewrite.oidcButtonLabel), false);
  body = replaceLicense(body);
  // The notice script runs after getConfig() is defined (it reads basePath), in its own element.
  const closing = end < 0 ? "" : "</script>";
  const notice = rewrite.managedInCluster && end >= 0 ? `\n    <script>${MANAGED_IN_CLUSTER_SCRIPT}</script>` : "";
  return html.slice(0, start) + body + closing + notice + html.slice(stop + closing.length);
}

/** Dagu 2's `license: { ... }` object (Dagu 1 has none: left alone). */
function replaceLicense(body: string): string {
  const pattern = /(\blicense\s*:\s*)\{[\s\S]*?\n\s*\}(?=\s*,)/;
  return pattern.test(body) ? body.replace(pattern, (_m, prefix: string) => `${prefix}${JSON.stringify(SIDECAR_LICENSE)}`) : body;
}

/**
 * Runs in Dagu's page when users, API keys and webhooks are cluster resources: on /users, /api-keys,
 * /webhooks and a DAG's Webhook tab a line names the resource and the kubectl command, and the buttons and menu items that
 * create, change or delete are hidden (the sidecar refuses those writes anyway, with the same words).
 * Plain DOM, no dependency; re-applied as React renders. Texts are Dagu v2.15.1's.
 */
const MANAGED_IN_CLUSTER_SCRIPT = `(function () {
  var base = String(getConfig().basePath || "").replace(/\\/$/, "");
  var pages = {
    "/users": ["Users", "DaguUser", "daguusers", true],
    "/api-keys": ["API Keys", "DaguApiKey", "daguapikeys", true],
    "/webhooks": ["Webhooks", "DaguWebhook", "daguwebhooks", false]
  };
  var writes = ["Add User", "Create API Key", "Edit", "Delete", "Revoke", "Disable", "Enable", "Reset Password", "Regenerate Token"];
  var dagWebhook = /^\\/dags\\/[^/]+\\/webhook$/;
  var dagWebhookWrites = ["Create Webhook", "Regenerate Token", "Delete", "Save HMAC Settings", "Regenerate HMAC Secret", "Disable HMAC", "Keep Token and Add HMAC", "Use HMAC Only"];
  function note(kind, plural) { return "Managed in the cluster as " + kind + " resources (kubectl get " + plural + "): read-only here."; }
  function hide(el) { if (el.style.display !== "none") el.style.setProperty("display", "none", "important"); }
  function hideButtons(texts, selector) {
    document.querySelectorAll(selector).forEach(function (el) {
      if (texts.indexOf(el.textContent.trim()) >= 0) hide(el);
    });
  }
  function apply() {
    var path = location.pathname.slice(base.length).replace(/\\/$/, "");
    if (dagWebhook.test(path)) {
      // A DAG's Webhook tab: its buttons go, one line above its cards says why.
      hideButtons(dagWebhookWrites, "button");
      var card = document.querySelector("[data-slot=card]");
      if (card && !document.querySelector("[data-dagu-auth=managed]")) {
        var p = document.createElement("p");
        p.setAttribute("data-dagu-auth", "managed");
        p.className = "text-sm text-muted-foreground";
        p.textContent = note("DaguWebhook", "daguwebhooks");
        card.parentNode.insertBefore(p, card);
      }
      return;
    }
    var page = pages[path];
    if (!page) return;
    document.querySelectorAll("h1").forEach(function (h1) {
      var sub = h1.nextElementSibling;
      if (h1.textContent.trim() !== page[0] || !sub || sub.getAttribute("data-dagu-auth") === "managed") return;
      sub.setAttribute("data-dagu-auth", "managed");
      sub.textContent = note(page[1], page[2]);
    });
    hideButtons(writes, "button, [role=menuitem]");
    // A row's menu would be empty (webhooks keep theirs: "View DAG").
    if (page[3]) document.querySelectorAll("table button[aria-haspopup=menu]").forEach(hide);
    document.querySelectorAll("div > span").forEach(function (span) {
      if (/require a\\s+license or trial/.test(span.textContent)) hide(span.parentElement);
    });
  }
  new MutationObserver(apply).observe(document.documentElement, { childList: true, subtree: true });
  addEventListener("popstate", apply);
})();`;

/** A JavaScript string literal that cannot end the <script> element or a line (JSON plus escapes). */
function scriptString(value: string): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/**
 * `key: <value>,` -> `key: <replacement>,` for a value that is a string literal, a boolean, or a simple
 * expression up to the end of the line (Dagu renders e.g. `"{{ x }}" === "true"`).
 */
function replaceValue(body: string, key: string, replacement: string, insertIfMissing: boolean): string {
  const pattern = new RegExp(`(\\b${key}\\s*:\\s*)([^,\\n}]*)`);
  if (pattern.test(body)) return body.replace(pattern, (_m, prefix: string) => `${prefix}${replacement}`);
  if (!insertIfMissing) return body;
  // No such key: add it first in the returned object.
  return body.replace(/return\s*\{/, (m) => `${m}\n          ${key}: ${replacement},`);
}

/** Decodes a Content-Encoding the sidecar can rewrite through; undefined for unknown encodings. */
export function decodeBody(body: Buffer, encoding: string | undefined): Buffer | undefined {
  const e = (encoding ?? "").trim().toLowerCase();
  try {
    if (e === "" || e === "identity") return body;
    if (e === "gzip" || e === "x-gzip") return gunzipSync(body, { maxOutputLength: MAX_REWRITE_BYTES * 4 });
    if (e === "deflate") return inflateSync(body, { maxOutputLength: MAX_REWRITE_BYTES * 4 });
    if (e === "br") return brotliDecompressSync(body, { maxOutputLength: MAX_REWRITE_BYTES * 4 });
  } catch {
    return undefined;
  }
  return undefined;
}

export function isHtml(contentType: string | string[] | undefined): boolean {
  const value = Array.isArray(contentType) ? contentType[0] : contentType;
  return value !== undefined && /^\s*text\/html\b/i.test(value);
}
