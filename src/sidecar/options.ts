// `dagu-auth sidecar` options: parsed from argv and the environment, validated with zod, and turned
// into clear errors that name the option.
import { parseArgs } from "node:util";
import { z } from "zod";
import { isCidr } from "../api/common.ts";
import { DAGU_API_VERSIONS } from "./routes/dagu-api.ts";
import { basePathProblem } from "../api/base-path.ts";
import { DEFAULTS } from "./server.ts";

export const SIDECAR_USAGE = `usage: dagu-auth sidecar --upstream http://127.0.0.1:8080 [options]

  --upstream URL            Dagu's address (auth mode none, bound to 127.0.0.1)
  --listen HOST:PORT        where the sidecar listens (default 127.0.0.1:8443)
  --credentials-file FILE   the credentials document (watched; changes apply within ~1 s)
  --config FILE             Dagu's own config (its auth: block) instead; DAGU_AUTH_* variables also count
  --state-dir DIR           keeps a generated token secret, password changes and (with --config / DAGU_AUTH_*)
                            the users, API keys and webhooks created through Dagu's API, across restarts
  --dagu-api v1|v2          skip detection: v1 = Dagu 2.x (/api/v1), v2 = Dagu 1.x (/api/v2)
  --dagu-base-path /PATH    Dagu runs under this base path (its basePath / DAGU_BASE_PATH): UI and API below it,
                            nothing outside it served; with --config, Dagu's base_path there (or DAGU_BASE_PATH)
  --metrics-listen HOST:PORT|off  /metrics (and /healthz, /readyz) on their own address, never on --listen
                            (default ${DEFAULTS.metricsListen.host}:${DEFAULTS.metricsListen.port}; off: no metrics)
  --tls-cert FILE --tls-key FILE  serve HTTPS (or DAGU_CERT_FILE / DAGU_KEY_FILE); reloaded on change
  --trusted-proxy CIDR      with --config: a peer whose X-Forwarded-For is believed (repeatable)
  --kubernetes              read the operator's <auth>-credentials Secret through the API (in a pod: its
                            ServiceAccount, the one the operator creates for the DaguAuth)
  --auth NAME               with --kubernetes: the DaguAuth's name
  --namespace NS            with --kubernetes: its namespace (default $POD_NAMESPACE)
  --kubeconfig FILE         with --kubernetes: outside a pod
  --tls-secret NAME         with --kubernetes: serve HTTPS from this kubernetes.io/tls Secret (watched)
  --egress-listen HOST:PORT with --kubernetes: where Dagu reaches its remote nodes through the sidecar (loopback
                            only; Dagu's api_base_url http://HOST:PORT/<node>/api/v1, docs/remote-nodes.md)
  --max-body-bytes N        largest request body proxied (default ${DEFAULTS.maxBodyBytes})
  --max-header-bytes N      largest request head (default ${DEFAULTS.maxHeaderBytes}; larger: 431)
  --headers-timeout S       seconds a client has to send a request's head (default ${DEFAULTS.headersTimeoutSeconds}; then 408),
                            and a body the sidecar reads before knowing the caller (login, signed webhook)
  --request-timeout S       seconds a client has to send a whole request, body included (default ${DEFAULTS.requestTimeoutSeconds})
  --max-connections N       open client connections in all (default ${DEFAULTS.maxConnections}; more are closed at once)
  --max-connections-per-client N  open connections per client address (default ${DEFAULTS.maxConnectionsPerClient};
                            trusted proxies are exempt)
  --max-unauthenticated-body-bytes N  bytes of bodies read before the caller is known, all requests
                            together (default ${DEFAULTS.maxUnauthenticatedBodyBytes}; past it: 503 at once)
  --log-level LEVEL         fatal, error, warn, info, debug (default info)

Without --credentials-file or --config, the DAGU_AUTH_* variables alone configure the sidecar (builtin or basic).
With --config or DAGU_AUTH_* in builtin mode, users, API keys and webhooks are created through Dagu's own UI and
API (and its setup page, without an initial admin); --state-dir keeps them, without it they cannot be created.`;

const HostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be HOST:PORT, e.g. 127.0.0.1:8443 or [::]:8443")
  .transform((value) => {
    const colon = value.lastIndexOf(":");
    return { host: value.slice(0, colon).replace(/^\[(.*)\]$/, "$1"), port: Number(value.slice(colon + 1)) };
  })
  .refine((hp) => hp.port <= 65535, "port must be at most 65535");

/** `--metrics-listen off` turns the metrics listener off. */
const MetricsListen = z.union([z.literal("off"), HostPort], { error: "must be HOST:PORT (e.g. 127.0.0.1:9090) or off" });

const Count = (name: string, min: number, max: number, unit: string) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number of ${unit}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

const PositiveInt = (name: string) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number of bytes`)
    .transform(Number)
    .refine((n) => n >= 1024 && n <= 1024 ** 3, `${name} must be between 1024 and 1073741824`);

export const SidecarArgs = z
  .object({
    upstream: z.url({ protocol: /^https?$/, error: "--upstream must be an http(s) URL such as http://127.0.0.1:8080" }),
    listen: HostPort.default({ host: "127.0.0.1", port: 8443 }),
    credentialsFile: z.string().min(1).optional(),
    config: z.string().min(1).optional(),
    stateDir: z.string().min(1).optional(),
    daguApi: z.enum(DAGU_API_VERSIONS, { error: "--dagu-api must be v1 (Dagu 2.x) or v2 (Dagu 1.x)" }).optional(),
    daguBasePath: z
      .string()
      .refine((value) => value !== "" && basePathProblem(value) === undefined, { error: (issue) => `${basePathProblem(String(issue.input)) ?? "must not be empty (leave it out at the root)"}, e.g. /dagu` })
      .optional(),
    metricsListen: MetricsListen.default(DEFAULTS.metricsListen),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    kubernetes: z.boolean().default(false),
    kubeconfig: z.string().min(1).optional(),
    namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name").optional(),
    auth: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be the DaguAuth's name").optional(),
    tlsSecret: z.string().min(1).optional(),
    egressListen: HostPort.refine((hp) => ["127.0.0.1", "::1", "localhost"].includes(hp.host), "--egress-listen must be a loopback address: only Dagu, in the same pod, may use it").optional(),
    trustedProxy: z.array(z.string().refine(isCidr, "--trusted-proxy must be a CIDR such as 10.0.0.0/8")).default([]),
    maxBodyBytes: PositiveInt("--max-body-bytes").optional(),
    maxHeaderBytes: PositiveInt("--max-header-bytes").optional(),
    headersTimeout: Count("--headers-timeout", 1, 3600, "seconds").default(DEFAULTS.headersTimeoutSeconds),
    requestTimeout: Count("--request-timeout", 1, 86_400, "seconds").default(DEFAULTS.requestTimeoutSeconds),
    maxConnections: Count("--max-connections", 1, 1_000_000, "connections").default(DEFAULTS.maxConnections),
    maxConnectionsPerClient: Count("--max-connections-per-client", 1, 1_000_000, "connections").default(DEFAULTS.maxConnectionsPerClient),
    maxUnauthenticatedBodyBytes: PositiveInt("--max-unauthenticated-body-bytes").default(DEFAULTS.maxUnauthenticatedBodyBytes),
    logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
  })
  .superRefine((a, ctx) => {
    if (a.credentialsFile && a.config) ctx.addIssue({ code: "custom", message: "use --credentials-file or --config, not both", path: ["config"] });
    if (a.kubernetes && (a.credentialsFile || a.config)) ctx.addIssue({ code: "custom", message: "--kubernetes reads the operator's Secret: no --credentials-file or --config with it", path: ["kubernetes"] });
    if (a.kubernetes && !a.auth) ctx.addIssue({ code: "custom", message: "--kubernetes needs --auth (the DaguAuth's name)", path: ["auth"] });
    if (a.kubernetes && !a.namespace) ctx.addIssue({ code: "custom", message: "--kubernetes needs --namespace (or $POD_NAMESPACE)", path: ["namespace"] });
    if (a.egressListen && !a.kubernetes) ctx.addIssue({ code: "custom", message: "--egress-listen needs --kubernetes (the remote nodes' keys come from Secrets)", path: ["egressListen"] });
    if (a.tlsSecret && !a.kubernetes) ctx.addIssue({ code: "custom", message: "--tls-secret needs --kubernetes (use --tls-cert/--tls-key for files)", path: ["tlsSecret"] });
    if (a.tlsSecret && a.tlsCert) ctx.addIssue({ code: "custom", message: "use --tls-secret or --tls-cert/--tls-key, not both", path: ["tlsSecret"] });
    if (Boolean(a.tlsCert) !== Boolean(a.tlsKey)) ctx.addIssue({ code: "custom", message: "--tls-cert and --tls-key go together", path: ["tlsKey"] });
    if (a.headersTimeout > a.requestTimeout) ctx.addIssue({ code: "custom", message: "must not be longer than --request-timeout", path: ["headersTimeout"] });
    if (a.metricsListen !== "off" && a.metricsListen.port !== 0 && a.metricsListen.port === a.listen.port && hostsOverlap(a.metricsListen.host, a.listen.host)) {
      ctx.addIssue({ code: "custom", message: "must be another address than --listen: metrics are never served where users connect", path: ["metricsListen"] });
    }
    if (a.credentialsFile && a.trustedProxy.length > 0) {
      ctx.addIssue({ code: "custom", message: "--trusted-proxy is for --config; a credentials file carries trustedProxies itself", path: ["trustedProxy"] });
    }
  });
export type SidecarArgs = z.infer<typeof SidecarArgs>;

/** Two listen hosts that would bind the same port on a common address (a wildcard overlaps everything). */
function hostsOverlap(a: string, b: string): boolean {
  const wildcard = (h: string) => h === "0.0.0.0" || h === "::" || h === "";
  return a === b || wildcard(a) || wildcard(b);
}

const FLAG_NAMES: Record<string, string> = {
  credentialsFile: "--credentials-file",
  stateDir: "--state-dir",
  daguApi: "--dagu-api",
  daguBasePath: "--dagu-base-path",
  metricsListen: "--metrics-listen",
  tlsCert: "--tls-cert",
  tlsKey: "--tls-key",
  trustedProxy: "--trusted-proxy",
  tlsSecret: "--tls-secret",
  egressListen: "--egress-listen",
  maxBodyBytes: "--max-body-bytes",
  maxHeaderBytes: "--max-header-bytes",
  headersTimeout: "--headers-timeout",
  requestTimeout: "--request-timeout",
  maxConnections: "--max-connections",
  maxConnectionsPerClient: "--max-connections-per-client",
  maxUnauthenticatedBodyBytes: "--max-unauthenticated-body-bytes",
  logLevel: "--log-level",
};

export class UsageError extends Error {}

/** Parses `dagu-auth sidecar ...`; DAGU_CERT_FILE/DAGU_KEY_FILE stand in for --tls-cert/--tls-key. */
export function parseSidecarArgs(argv: readonly string[], env: NodeJS.ProcessEnv): SidecarArgs {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        upstream: { type: "string" },
        listen: { type: "string" },
        "credentials-file": { type: "string" },
        config: { type: "string" },
        "state-dir": { type: "string" },
        "dagu-api": { type: "string" },
        "dagu-base-path": { type: "string" },
        "metrics-listen": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "trusted-proxy": { type: "string", multiple: true },
        kubernetes: { type: "boolean" },
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        auth: { type: "string" },
        "tls-secret": { type: "string" },
        "egress-listen": { type: "string" },
        "max-body-bytes": { type: "string" },
        "max-header-bytes": { type: "string" },
        "headers-timeout": { type: "string" },
        "request-timeout": { type: "string" },
        "max-connections": { type: "string" },
        "max-connections-per-client": { type: "string" },
        "max-unauthenticated-body-bytes": { type: "string" },
        "log-level": { type: "string" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const camel = Object.fromEntries(Object.entries(values).map(([k, v]) => [k.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase()), v]));
  camel.tlsCert ??= env.DAGU_CERT_FILE || undefined;
  camel.tlsKey ??= env.DAGU_KEY_FILE || undefined;
  if (camel.kubernetes) camel.namespace ??= env.POD_NAMESPACE || undefined;
  if (camel.upstream === undefined) throw new UsageError("--upstream is required (Dagu's address, e.g. http://127.0.0.1:8080)");
  const parsed = SidecarArgs.safeParse(camel);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? "");
      const flag = FLAG_NAMES[key] ?? (key ? `--${key}` : "options");
      return `${flag}: ${issue.message}`;
    });
    throw new UsageError(lines.join("\n"));
  }
  return parsed.data;
}
