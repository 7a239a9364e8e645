// Dagu's UI reads its settings from `function getConfig()` in the HTML page Dagu renders. Dagu behind
// the sidecar runs with auth off and says `authMode: "none"`; the sidecar rewrites that page so the UI
// runs as with Dagu's own auth: builtin mode (login page, JWT in localStorage, roles from /auth/me) or
// basic mode (the browser's Basic prompt). Setup is required only where Dagu would ask for it and the
// sidecar can do it (a standalone sidecar without any user); the SSO button shows when the credentials
// carry OIDC settings (the sidecar answers /oidc-login). Everything else in the page stays as Dagu rendered it.
import { brotliDecompressSync, gunzipSync, inflateSync } from "node:zlib";

export interface UiRewrite {
  readonly authMode: "builtin" | "basic";
  /** Dagu's first-run setup page: only a standalone sidecar without any user asks for it. */
  readonly setupRequired?: boolean;
  /** The SSO button's label, when single sign-on is configured. */
  readonly oidcButtonLabel?: string;
}

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
  return html.slice(0, start) + body + html.slice(stop);
}

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
