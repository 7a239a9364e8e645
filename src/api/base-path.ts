// Dagu's base path (its `basePath` / DAGU_BASE_PATH) as the sidecar can guard it (ADR 0020): where its UI
// and API are mounted. One rule for the sidecar's --dagu-base-path, Dagu's own config read by a standalone
// sidecar, and DaguAuth spec.basePath.

/** Segments of Dagu 2's routes outside the API that are no UI pages: refused wherever they appear. */
export const DAGU2_RESERVED_SEGMENTS = ["mcp", "oidc-login", "oidc-callback", "proxy-login"] as const;

/** Longest base path accepted: far beyond any real mount point, short enough to bound every path built on it. */
export const MAX_BASE_PATH_LENGTH = 128;

/** The shape alone (segments of unreserved characters, no trailing slash); the rest is basePathProblem's. */
export const BASE_PATH_PATTERN = /^(\/[A-Za-z0-9\-._~]+)+$/;

/**
 * Why a base path cannot be Dagu's, or undefined when it can (`""` is the root). Segments are unreserved
 * characters only (no escapes to decode differently here and in Dagu), no dot segments, no trailing slash,
 * and none that the sidecar refuses in any path (`api`, Dagu 2's `mcp` and SSO routes, in any case): the
 * base path must not make a refused segment look like a mount point.
 */
export function basePathProblem(basePath: string): string | undefined {
  if (basePath === "") return undefined;
  if (basePath.length > MAX_BASE_PATH_LENGTH) return `must be at most ${MAX_BASE_PATH_LENGTH} characters`;
  if (!basePath.startsWith("/")) return 'must start with "/", e.g. /dagu';
  if (basePath.endsWith("/")) return 'must not end with "/" (the root is no base path: leave it out)';
  const segments = basePath.slice(1).split("/");
  if (segments.some((s) => s === "")) return "must not contain empty segments (//)";
  if (segments.some((s) => s === "." || s === "..")) return "must not contain . or .. segments";
  if (!BASE_PATH_PATTERN.test(basePath)) return "segments may hold only letters, digits and - . _ ~";
  const reserved = new Set<string>(["api", ...DAGU2_RESERVED_SEGMENTS]);
  const bad = segments.find((s) => reserved.has(s.toLowerCase()));
  if (bad !== undefined) return `must not contain a segment ${JSON.stringify(bad)} (refused in every path the sidecar serves)`;
  return undefined;
}

/**
 * A base path as Dagu cleans its setting (`cleanServerBasePath`): a missing leading slash added, trailing
 * slashes dropped, `/` is the root (`""`). Not validated: basePathProblem says what the sidecar refuses.
 */
export function cleanDaguBasePath(raw: string): string {
  return (raw.startsWith("/") ? raw : `/${raw}`).replace(/\/+$/, "");
}
