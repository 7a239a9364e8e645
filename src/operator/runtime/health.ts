// The operator's probe and metrics endpoint:
//   /healthz  the process is alive and its event loop answers;
//   /readyz   every readiness check passes (informers synced, leader election fine);
//   /metrics  the Prometheus registry.
// `?verbose` lists every check on /readyz, as the API server does.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A named check: true when fine, otherwise why not. */
export interface ReadinessCheck {
  name: string;
  check(): true | string;
}

export interface HealthServerOptions {
  /** "host:port", ":port" (all interfaces) or "[::1]:port". Default ":8081". */
  address?: string;
  registry?: Registry;
  readiness?: ReadinessCheck[];
}

export interface HealthServer {
  /** The bound port (useful with port 0). */
  readonly port: number;
  readonly url: string;
  addReadinessCheck(check: ReadinessCheck): void;
  close(): Promise<void>;
}

export function parseAddress(address: string): { host: string | undefined; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (!match) throw new Error(`health server: address ${JSON.stringify(address)} is not host:port`);
  const port = Number(match[3]);
  if (port > 65535) throw new Error(`health server: port ${port} is out of range`);
  return { host: match[1] ?? (match[2] || undefined), port };
}

export async function startHealthServer(options: HealthServerOptions = {}): Promise<HealthServer> {
  const { host, port } = parseAddress(options.address ?? ":8081");
  const checks = [...(options.readiness ?? [])];
  const registry = options.registry;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://probe");
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "method not allowed\n");
    switch (url.pathname) {
      case "/healthz":
      case "/livez":
        return send(res, 200, "ok\n");
      case "/readyz": {
        const results = checks.map((c) => ({ name: c.name, result: runCheck(c) }));
        const failed = results.filter((r) => r.result !== true);
        const lines = (url.searchParams.has("verbose") ? results : failed).map((r) =>
          r.result === true ? `[+]${r.name} ok` : `[-]${r.name} failed: ${r.result}`,
        );
        const verdict = failed.length === 0 ? "ok" : "not ready";
        return send(res, failed.length === 0 ? 200 : 503, [...lines, verdict].join("\n") + "\n");
      }
      case "/metrics":
        if (!registry) return send(res, 404, "no metrics registry\n");
        return send(res, 200, await registry.metrics(), registry.contentType);
      default:
        return send(res, 404, "not found\n");
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, `${err instanceof Error ? err.message : String(err)}\n`));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const urlHost = host === undefined ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  return {
    port: bound,
    url: `http://${urlHost}:${bound}`,
    addReadinessCheck: (check) => void checks.push(check),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function runCheck(check: ReadinessCheck): true | string {
  try {
    return check.check();
  } catch (err) {
    return `check threw: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function send(res: ServerResponse, status: number, body: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

/** Ready once every informer has listed its resources. */
export function informersSynced(informers: readonly { readonly synced: boolean }[], name = "informers"): ReadinessCheck {
  return {
    name,
    check: () => {
      const pending = informers.filter((i) => !i.synced).length;
      return pending === 0 ? true : `${pending} of ${informers.length} informers have not synced`;
    },
  };
}

/** Ready while leader election works, whether this process leads or follows. */
export function leaderElectionHealthy(elector: { health(): true | string }, name = "leader-election"): ReadinessCheck {
  return { name, check: () => elector.health() };
}
