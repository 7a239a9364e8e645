// Paths as the sidecar reasons about them outside the route table: what may be logged, and what is
// an API path even when it is not the active API's.

/**
 * A request path for the audit log. Matched API routes are logged as their template; other paths as
 * sent, except segments that look like credentials (a token pasted into a URL must not reach the log).
 */
export function loggablePath(path: string): string {
  const short = path.length > 256 ? `${path.slice(0, 256)}...` : path;
  return short
    .split("/")
    .map((segment) => (/^(dagu_|eyJ)|[A-Za-z0-9_-]{40,}/.test(segment) ? "[redacted]" : segment))
    .join("/");
}

/**
 * True when a path outside the active API prefix must not pass as a UI page: it is, in any case or
 * percent-encoding, one of `reserved` or below it. `/api` is always reserved (Dagu 1.30.3 serves an
 * unauthenticated legacy API under `/api/v1` with auth off); a profile adds Dagu's own non-API routes
 * (Dagu 2's `/mcp`, which exposes its API as MCP tools, and its OIDC routes).
 */
export function isReservedPath(path: string, reserved: readonly string[]): boolean {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    return true;
  }
  const lower = decoded.toLowerCase();
  return ["/api", ...reserved].some((prefix) => lower === prefix || lower.startsWith(`${prefix}/`));
}
