// The two generations of Dagu's HTTP API the sidecar can sit in front of, named by their path:
// - "v1": Dagu 2.x (the product's target, v2.15.1), `/api/v1`, five roles (routes.ts);
// - "v2": Dagu 1.x (v1.30.3, what this machine can build), `/api/v2`, four roles (routes-dagu1.ts).
// The generation is detected at start from the health endpoints, or forced with `--dagu-api`.
import { z } from "zod";
import type { Role } from "../../api/common.ts";
import { createRouteMatcher, type RouteMatcher } from "./route-matcher.ts";
import { DAGU_ROUTES, type DaguRoute } from "../../dagu/routes.ts";
import { DAGU1_API_PREFIX, DAGU1_ROUTES } from "../../dagu/routes-dagu1.ts";
import { basePathProblem, DAGU2_RESERVED_SEGMENTS } from "../../api/base-path.ts";

export const DAGU_API_VERSIONS = ["v1", "v2"] as const;
export type DaguApiVersion = (typeof DAGU_API_VERSIONS)[number];

export interface DaguApiProfile {
  readonly version: DaguApiVersion;
  /** Dagu's major version behind this API. */
  readonly daguMajor: 1 | 2;
  /** Dagu's base path ("" at the root; `--dagu-base-path`): the UI lives under it, nothing outside it is served. */
  readonly basePath: string;
  /** Where the API is mounted: the base path, then the generation's own prefix. */
  readonly prefix: string;
  readonly routes: readonly DaguRoute[];
  readonly matcher: RouteMatcher;
  /** The role name this generation's UI understands (Dagu 1's UI knows no developer). */
  uiRole(role: Role): string;
  /** Dagu 2 passes WEBHOOK_HEADERS and falls back to the raw body as payload; Dagu 1 does neither. */
  readonly webhookHeadersParam: boolean;
  /** Dagu 2's UI reads `setupRequired` and `oidcEnabled` from getConfig(). */
  readonly uiHasSetup: boolean;
  /**
   * Path segments of Dagu's routes outside the API prefix that are not UI pages, refused wherever they
   * appear in a path (besides `api`): with auth off they would answer anyone.
   */
  readonly reservedSegments: readonly string[];
  /** Dagu 2's MCP endpoint, served to credentials allowed on the MCP surface (mcp.ts, beside it); Dagu 1 has none. */
  readonly mcpPath?: string;
}

type Generation = Omit<DaguApiProfile, "basePath" | "prefix" | "matcher">;

const dagu1: Generation = Object.freeze({
  version: "v2",
  daguMajor: 1,
  routes: DAGU1_ROUTES,
  // Dagu 1's manager is what our developer is (DAG write and execute); its UI ranks unknown roles as none.
  uiRole: (role: Role) => (role === "developer" ? "manager" : role),
  webhookHeadersParam: false,
  uiHasSetup: false,
  reservedSegments: [],
});

const dagu2: Generation = Object.freeze({
  version: "v1",
  daguMajor: 2,
  routes: DAGU_ROUTES,
  uiRole: (role: Role) => role,
  webhookHeadersParam: true,
  uiHasSetup: true,
  // /mcp serves Dagu's API as MCP tools (run DAGs...) and authenticates itself only when auth is on: the
  // sidecar serves it at exactly mcpPath, with each tool call's role (mcp.ts, beside it), and refuses `mcp` anywhere
  // else; the trusted-proxy and OIDC logins would mint Dagu's own sessions. The conformance test lists
  // Dagu's routes.
  reservedSegments: DAGU2_RESERVED_SEGMENTS,
  mcpPath: "/mcp",
});

/** Each generation's API prefix below the base path (Dagu's default apiBasePath). */
export const API_PREFIXES: Readonly<Record<DaguApiVersion, string>> = { v1: "/api/v1", v2: DAGU1_API_PREFIX };

const profiles = new Map<string, DaguApiProfile>();

/**
 * The profile of one API generation under a base path (`""`: Dagu at the root). The base path must be
 * valid (api/base-path.ts); the matcher, MCP path and health probes all sit below it.
 */
export function daguApiProfile(version: DaguApiVersion, basePath = ""): DaguApiProfile {
  const key = `${version} ${basePath}`;
  let profile = profiles.get(key);
  if (!profile) {
    const problem = basePathProblem(basePath);
    if (problem) throw new Error(`bad base path ${JSON.stringify(basePath)}: ${problem}`);
    const generation = version === "v2" ? dagu1 : dagu2;
    const prefix = `${basePath}${API_PREFIXES[version]}`;
    profile = Object.freeze({
      ...generation,
      basePath,
      prefix,
      matcher: createRouteMatcher(generation.routes, { prefix }),
      ...(generation.mcpPath !== undefined ? { mcpPath: `${basePath}${generation.mcpPath}` } : {}),
    });
    profiles.set(key, profile);
  }
  return profile;
}

const Health = z.looseObject({ status: z.string(), version: z.string().optional() });

/** Major version of a Dagu version string ("1.30.3", "v2.15.1"); undefined for "dev" and the like. */
function majorOf(version: string | undefined): number | undefined {
  const m = version ? /^v?(\d+)\./.exec(version) : null;
  return m ? Number(m[1]) : undefined;
}

export type HealthProbe = (path: string) => Promise<{ status: number; body: string } | undefined>;

/**
 * Detects the API generation by the prefix that answers with Dagu's health document, not by the version
 * it reports (a build from source reports 0.0.0 unless its build sets the version). Dagu 1.x serves
 * `/api/v2` (and, with auth off, a legacy `/api/v1` too); Dagu 2.x serves only `/api/v1` (its UI answers
 * `/api/v2/health` with the HTML page, which is no health document). So `/api/v2` answering means Dagu 1,
 * and otherwise `/api/v1` answering means Dagu 2. The version is read only to break one tie: a server that
 * answers on both and says it is 2.x or later on `/api/v2` is taken as Dagu 2.
 */
export async function detectDaguApi(probe: HealthProbe, basePath = ""): Promise<DaguApiVersion> {
  const read = async (path: string): Promise<{ major: number | undefined } | undefined> => {
    const answer = await probe(path);
    if (!answer || answer.status !== 200) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(answer.body);
    } catch {
      return undefined;
    }
    const health = Health.safeParse(json);
    return health.success ? { major: majorOf(health.data.version) } : undefined;
  };
  const v2 = await read(`${basePath}/api/v2/health`);
  const claimsDagu2 = v2?.major !== undefined && v2.major >= 2;
  if (v2 && !claimsDagu2) return "v2";
  if (await read(`${basePath}/api/v1/health`)) return "v1";
  if (v2) return "v2";
  throw new Error(
    `cannot tell which Dagu API the upstream serves: neither ${basePath}/api/v2/health (Dagu 1.x) nor ${basePath}/api/v1/health ` +
      `(Dagu 2.x) answered with Dagu's health document; is --upstream right${basePath ? "" : " (and does Dagu run under a base path: --dagu-base-path)"}? (--dagu-api skips detection)`,
  );
}
