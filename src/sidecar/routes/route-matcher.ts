// Compiles the route table into a matcher for raw request paths. Path normalization is a security
// boundary: the matcher never rewrites a path, it accepts only paths that are already in normal form and
// refuses the rest, so the string it checked is exactly the string the proxy forwards to Dagu.
//
// Input: the whole raw request path as received (`/api/v1/dags/x`, without `?query` or `#fragment`;
// the caller splits the query off the request target first). Matching follows Dagu's router (chi):
// - case-sensitive, static segments compared in their raw (still percent-encoded) form, as chi routes on
//   `URL.RawPath`: `/api/v1/d%61gs` is not `/api/v1/dags`;
// - a static segment wins over a parameter, and when the static branch has no handler for the method the
//   parameter branch is tried (chi backtracks per method): `GET /dag-runs/enqueue` is
//   `listDAGRunsByName` with `name = "enqueue"`;
// - a parameter matches one whole segment and is percent-decoded once for its value;
// - an escape of an unreserved character (`%61` for `a`, `%2E` for `.`) is refused anywhere: no client
//   needs one (encodeURIComponent and Go's PathEscape never write them), and each is a second spelling of
//   a path: `/dags/%6Cabels` reaches chi's `{fileName}` route while its decoded form `/dags/labels` is a
//   static route of its own, a split that only obfuscation uses;
// - `%25` (an encoded `%`) is refused anywhere: Dagu may decode a value twice (when the raw path is the
//   canonical encoding of its decoded form, Go leaves URL.RawPath empty, chi routes on the decoded path and
//   oapi-codegen's parameter binding unescapes the value again), so `%252F..` would reach a handler as
//   `/..` after passing checks made on the once-decoded `%2F..`. Without `%25` no `%` survives the first
//   decoding, and a second one changes nothing: the value checked is the value Dagu uses;
// - a trailing slash never matches (Dagu's RedirectSlashes answers 301 to the path without it);
// - HEAD and OPTIONS are not GET: chi answers 405 for them (no GetHead middleware), so they match nothing.
import { DAGU_ROUTES, type DaguRoute } from "../../dagu/routes.ts";

export type MatchError = "not_found" | "bad_path";

export interface RouteMatch {
  readonly route: DaguRoute;
  /** Path parameters, percent-decoded once. */
  readonly params: Readonly<Record<string, string>>;
  /** The accepted path; always identical to the input (the matcher never rewrites). */
  readonly normalizedPath: string;
}

export type MatchResult = RouteMatch | { readonly error: MatchError };

export interface RouteMatcherOptions {
  /** Mount point of Dagu's API, no trailing slash (Dagu: basePath + apiBasePath). Default `/api/v1`. */
  readonly prefix?: string;
  /** Longest path accepted; longer ones are `bad_path`. Default 4096. */
  readonly maxPathLength?: number;
}

export type RouteMatcher = (method: string, rawPath: string) => MatchResult;

export const DEFAULT_API_PREFIX = "/api/v1";
export const DEFAULT_MAX_PATH_LENGTH = 4096;

const NOT_FOUND: { readonly error: MatchError } = Object.freeze({ error: "not_found" });
const BAD_PATH: { readonly error: MatchError } = Object.freeze({ error: "bad_path" });

/**
 * Characters allowed raw in a path: RFC 3986 `pchar` and `/`, minus `;` (matrix parameters: never sent
 * by Dagu's UI, which encodes path parameters with encodeURIComponent, and read differently by some
 * servers). `%` must start a valid escape, checked separately.
 */
const RAW_PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,=:@%/]*$/;
const VALID_ESCAPES = /%(?![0-9A-Fa-f]{2})/;
const ENCODED_BACKSLASH = /%5c/i;
const ENCODED_SLASH = /%2f/i;
// An encoded `%`: the start of a double encoding (see the header).
const ENCODED_PERCENT = "%25";
// Escapes of RFC 3986 unreserved characters: ALPHA, DIGIT, `-`, `.`, `_`, `~`.
const ENCODED_UNRESERVED = /%(?:3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|2[DdEe]|5[Ff]|7[Ee])/;
// C0 controls and DEL; also refused after decoding.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

interface EndpointEntry {
  readonly route: DaguRoute;
  /** Parameter names in path order. */
  readonly paramNames: readonly string[];
  readonly slashParams: ReadonlySet<string>;
}

interface TrieNode {
  readonly statics: Map<string, TrieNode>;
  param: TrieNode | undefined;
  readonly endpoints: Map<string, EndpointEntry>;
}

function newNode(): TrieNode {
  return { statics: new Map(), param: undefined, endpoints: new Map() };
}

const PARAM_SEGMENT = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const STATIC_SEGMENT = /^[A-Za-z0-9\-._~]+$/;

function compileTrie(routes: readonly DaguRoute[]): TrieNode {
  const root = newNode();
  for (const route of routes) {
    if (!route.path.startsWith("/") || route.path.length < 2 || route.path.endsWith("/")) {
      throw new Error(`route ${route.operationId}: bad template ${JSON.stringify(route.path)}`);
    }
    let node = root;
    const paramNames: string[] = [];
    for (const segment of route.path.slice(1).split("/")) {
      const param = PARAM_SEGMENT.exec(segment);
      if (param) {
        const name = param[1]!;
        if (paramNames.includes(name)) {
          throw new Error(`route ${route.operationId}: parameter ${name} appears twice`);
        }
        paramNames.push(name);
        node.param ??= newNode();
        node = node.param;
      } else if (STATIC_SEGMENT.test(segment) && segment !== "." && segment !== "..") {
        let next = node.statics.get(segment);
        if (!next) {
          next = newNode();
          node.statics.set(segment, next);
        }
        node = next;
      } else {
        throw new Error(`route ${route.operationId}: bad segment ${JSON.stringify(segment)} in ${route.path}`);
      }
    }
    for (const name of route.slashParams ?? []) {
      if (!paramNames.includes(name)) {
        throw new Error(`route ${route.operationId}: slash parameter ${name} is not in ${route.path}`);
      }
    }
    if (node.endpoints.has(route.method)) {
      throw new Error(`duplicate route ${route.method} ${route.path}`);
    }
    node.endpoints.set(route.method, {
      route,
      paramNames,
      slashParams: new Set(route.slashParams ?? []),
    });
  }
  return root;
}

/** Percent-decodes once; undefined for invalid escapes or invalid UTF-8 (overlong forms included). */
function decodeSegment(raw: string): string | undefined {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

function isDotSegment(value: string): boolean {
  return value === "." || value === "..";
}

/** A decoded value that may carry `/`: no empty, `.` or `..` parts, no leading or trailing slash. */
function isSafeSlashValue(value: string): boolean {
  return value.split("/").every((part) => part !== "" && !isDotSegment(part));
}

interface Walk {
  readonly entry: EndpointEntry;
  /** Indexes (into the segment list) of the parameter segments, in path order. */
  readonly paramIndexes: readonly number[];
}

function walk(node: TrieNode, segments: readonly string[], index: number, method: string, paramIndexes: number[]): Walk | undefined {
  if (index === segments.length) {
    const entry = node.endpoints.get(method);
    return entry ? { entry, paramIndexes: [...paramIndexes] } : undefined;
  }
  const segment = segments[index]!;
  const staticChild = node.statics.get(segment);
  if (staticChild) {
    const found = walk(staticChild, segments, index + 1, method, paramIndexes);
    if (found) return found;
  }
  if (node.param) {
    paramIndexes.push(index);
    const found = walk(node.param, segments, index + 1, method, paramIndexes);
    paramIndexes.pop();
    if (found) return found;
  }
  return undefined;
}

/** Compiles a route table (default: Dagu v2.15.1's) into a matcher. Throws on a malformed table. */
export function createRouteMatcher(routes: readonly DaguRoute[] = DAGU_ROUTES, options: RouteMatcherOptions = {}): RouteMatcher {
  const prefix = options.prefix ?? DEFAULT_API_PREFIX;
  const maxPathLength = options.maxPathLength ?? DEFAULT_MAX_PATH_LENGTH;
  if (!/^(\/[A-Za-z0-9\-._~]+)+$/.test(prefix) || prefix.split("/").some(isDotSegment)) {
    throw new Error(`bad API prefix ${JSON.stringify(prefix)}: want e.g. "/api/v1"`);
  }
  const root = compileTrie(routes);

  return function matchRoute(method: string, rawPath: string): MatchResult {
    // 1. Shape of the whole path: anything malformed is bad_path, wherever it is.
    if (typeof rawPath !== "string" || typeof method !== "string") return BAD_PATH;
    if (rawPath.length === 0 || rawPath.length > maxPathLength || !rawPath.startsWith("/")) return BAD_PATH;
    if (!RAW_PATH_CHARS.test(rawPath) || VALID_ESCAPES.test(rawPath)) return BAD_PATH;
    if (ENCODED_BACKSLASH.test(rawPath) || rawPath.includes("//")) return BAD_PATH;
    if (rawPath.includes(ENCODED_PERCENT) || ENCODED_UNRESERVED.test(rawPath)) return BAD_PATH;

    const segments = rawPath.slice(1).split("/");
    const trailingSlash = rawPath.length > 1 && rawPath.endsWith("/");
    if (trailingSlash) segments.pop();
    for (const segment of segments) {
      const decoded = decodeSegment(segment);
      if (decoded === undefined || isDotSegment(segment) || isDotSegment(decoded) || CONTROL_CHARS.test(decoded)) {
        return BAD_PATH;
      }
    }
    const hasEncodedSlash = ENCODED_SLASH.test(rawPath);

    // 2. Routing: prefix (raw, case-sensitive), then the trie.
    const prefixSegments = prefix.slice(1).split("/");
    const prefixMatches =
      !trailingSlash &&
      segments.length > prefixSegments.length &&
      prefixSegments.every((part, i) => segments[i] === part);
    const found = prefixMatches ? walk(root, segments.slice(prefixSegments.length), 0, method, []) : undefined;
    if (!found) {
      // An encoded slash is refused unless a slash-carrying parameter accepted it.
      return hasEncodedSlash ? BAD_PATH : NOT_FOUND;
    }

    // 3. Parameter values.
    const params: Record<string, string> = {};
    const routeSegments = segments.slice(prefixSegments.length);
    for (const [i, name] of found.entry.paramNames.entries()) {
      const raw = routeSegments[found.paramIndexes[i]!]!;
      const value = decodeSegment(raw)!;
      if (value.includes("\\")) return BAD_PATH;
      if (value.includes("/")) {
        if (!found.entry.slashParams.has(name) || !isSafeSlashValue(value)) return BAD_PATH;
      }
      params[name] = value;
    }
    // Any %2F must have been inside a slash parameter (static segments never contain one: they would
    // not have matched).
    return { route: found.entry.route, params: Object.freeze(params), normalizedPath: rawPath };
  };
}

/** Matches against Dagu v2.15.1's table mounted at `/api/v1`. */
export const matchRoute: RouteMatcher = createRouteMatcher();
