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
 * True when a path outside the active API prefix must not pass as a UI page: one of its segments is, in
 * any case or percent-encoding, `api` or one of `reserved` (a profile's own non-UI routes: Dagu 2's `mcp`,
 * which exposes its API as MCP tools, and its OIDC routes). Any segment, not only the first: Dagu mounts
 * its API at `<basePath>/api/...` and the sidecar cannot know the base path, so `/<base>/api/v2/dags`
 * passed as a page and reached Dagu's API without a credential. `/api/...` itself is Dagu 1.30.3's
 * unauthenticated legacy API when auth is off. The cost: a UI page whose path has such a segment (a DAG
 * named `api`) cannot be loaded directly; the UI's own navigation still reaches it.
 */
export function isReservedPath(path: string, reserved: readonly string[]): boolean {
  const names = new Set(["api", ...reserved]);
  for (const segment of path.split("/")) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return true;
    }
    if (names.has(decoded.toLowerCase())) return true;
  }
  return false;
}
