// The child processes of `npm run bench:sidecar` (scripts/bench-sidecar.ts), one role each so that no
// two share an event loop:
//   upstream               a small fast HTTP server answering a fixed JSON body (what the proxies forward to);
//   proxy <upstream-url>   the "naive proxy" baseline: node:http + undici Pool keep-alive, no auth, streaming;
//   relay <upstream-url>   a TCP relay (each client connection piped to one of its own to the upstream): the
//                          least a process hop can cost, with no HTTP at all;
//   load <json>            an undici load generator: open loop at a fixed rate (for p99 at 1,000 req/s), or
//                          closed loop with N connections (only used when wrk is not available).
// `upstream`, `proxy` and `relay` print `{"port": N}` on their first stdout line; `load` prints its LoadResult as
// JSON on its last line. Each role exits on SIGTERM/SIGINT.
import { createServer, Server as HttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { Pool, type Dispatcher } from "undici";

/** The upstream's answer to everything but health: about the size of a small Dagu listing. */
export const UPSTREAM_BODY = JSON.stringify({
  dags: [
    {
      fileName: "hello",
      dag: { name: "hello", group: "", schedule: [], description: "benchmark", params: [], tags: [] },
      latestDAGRun: { dagRunId: "0197c2b6-0000-7000-8000-000000000000", status: 4, statusLabel: "succeeded" },
      suspended: false,
      errors: [],
    },
  ],
  errors: [],
  pagination: { totalRecords: 1, currentPage: 1, totalPages: 1, nextPage: 1, prevPage: 1 },
});

/** Dagu v2.15.1's health document, on /api/v1 only, so that the sidecar's API detection would also pick the Dagu 2 table. */
const HEALTH_BODY = JSON.stringify({ status: "healthy", version: "2.15.1", uptime: 1, timestamp: "2026-01-01T00:00:00Z" });

export interface LoadOptions {
  mode: "open" | "closed";
  url: string;
  /** Extra request headers, e.g. { authorization: "Bearer ..." }. */
  headers: Record<string, string>;
  warmupSeconds: number;
  seconds: number;
  /** Open loop: requests per second, sent on schedule whatever is still outstanding. */
  rate?: number;
  /** Closed loop: connections, each sending its next request when the previous answer has arrived. */
  connections?: number;
}

export interface LoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Open loop only: latency measured from the request's scheduled time (includes the generator's lag). */
  scheduledP50Ms?: number;
  scheduledP99Ms?: number;
  /** Open loop only: how late requests left compared with their schedule (the generator's own delay). */
  lagP99Ms?: number;
  /** Answers other than 200, and transport errors: anything but 0 makes the figure meaningless. */
  errors: number;
  firstError?: string;
}

const percentile = (sorted: Float64Array, p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!);

/** A growable list of latencies in milliseconds. */
class Samples {
  #data = new Float64Array(1 << 16);
  #n = 0;
  push(value: number): void {
    if (this.#n === this.#data.length) {
      const next = new Float64Array(this.#data.length * 2);
      next.set(this.#data);
      this.#data = next;
    }
    this.#data[this.#n++] = value;
  }
  get length(): number {
    return this.#n;
  }
  sorted(): Float64Array {
    return this.#data.slice(0, this.#n).sort();
  }
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"]);

function copyHeaders(from: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(from)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

function runUpstream(): void {
  const body = Buffer.from(UPSTREAM_BODY);
  const health = Buffer.from(HEALTH_BODY);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const answer = req.url === "/api/v1/health" ? health : body;
    req.resume();
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": answer.length });
    res.end(answer);
  });
  server.keepAliveTimeout = 60_000;
  listen(server);
}

/** What a reasonable person writes as a keep-alive reverse proxy in Node, configured like the sidecar's pool. */
function runProxy(target: string): void {
  const pool = new Pool(target, { connections: 128, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, headersTimeout: 60_000, bodyTimeout: 0 });
  const host = new URL(target).host;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const length = req.headers["content-length"];
      const hasBody = req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
      try {
        const answer = await pool.request({
          method: (req.method ?? "GET") as Dispatcher.HttpMethod,
          path: req.url ?? "/",
          headers: { ...copyHeaders(req.headers), host },
          body: hasBody ? req : undefined,
        });
        res.writeHead(answer.statusCode, copyHeaders(answer.headers));
        await pipeline(answer.body, res);
      } catch {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end();
      }
    })();
  });
  server.keepAliveTimeout = 30_000;
  listen(server, () => pool.close());
}

/** One process hop and nothing else: bytes copied both ways, so its added latency is the machine's cost of a hop. */
function runRelay(target: string): void {
  const { hostname, port } = new URL(target);
  const open = new Set<Socket>();
  const server = createTcpServer({ noDelay: true }, (client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    const upstream = connect({ host: hostname, port: Number(port), noDelay: true });
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  process.once("SIGTERM", () => open.forEach((c) => c.destroy()));
  listen(server);
}

function listen(server: Server, onClose?: () => Promise<void>): void {
  server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
  const stop = () => {
    if (server instanceof HttpServer) server.closeAllConnections();
    server.close(() => void (onClose?.() ?? Promise.resolve()).finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const connections = options.mode === "open" ? 256 : (options.connections ?? 32);
  const pool = new Pool(url.origin, { connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const path = url.pathname + url.search;
  const headers = options.headers;
  const start = performance.now();
  const measureFrom = start + options.warmupSeconds * 1000;
  const end = measureFrom + options.seconds * 1000;
  const latency = new Samples();
  const scheduled = new Samples();
  const lag = new Samples();
  let errors = 0;
  let firstError: string | undefined;
  const fail = (what: string) => {
    errors++;
    firstError ??= what;
  };

  /** One request; resolves with its latency from `sent`, or undefined when it failed. */
  const once = async (): Promise<number | undefined> => {
    const sent = performance.now();
    try {
      const answer = await pool.request({ method: "GET", path, headers });
      await answer.body.arrayBuffer();
      if (answer.statusCode !== 200) {
        fail(`HTTP ${answer.statusCode}`);
        return undefined;
      }
      return performance.now() - sent;
    } catch (error) {
      fail((error as Error).message);
      return undefined;
    }
  };

  if (options.mode === "open") {
    const rate = options.rate ?? 1000;
    const interval = 1000 / rate;
    const inFlight = new Set<Promise<void>>();
    let next = start;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        while (next <= now && next < end) {
          const due = next;
          const measured = due >= measureFrom;
          const sentAt = performance.now();
          const p: Promise<void> = once().then((ms) => {
            inFlight.delete(p);
            if (measured && ms !== undefined) {
              latency.push(ms);
              scheduled.push(sentAt - due + ms);
              lag.push(sentAt - due);
            }
          });
          inFlight.add(p);
          next += interval;
        }
        if (next >= end) resolve();
        else setTimeout(tick, Math.max(0, next - performance.now()));
      };
      tick();
    });
    await Promise.all(inFlight);
  } else {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < end) {
          const sent = performance.now();
          const ms = await once();
          if (ms !== undefined && sent >= measureFrom && sent + ms <= end) latency.push(ms);
        }
      }),
    );
  }
  await pool.close();
  const sorted = latency.sorted();
  const result: LoadResult = {
    requests: sorted.length,
    rps: sorted.length / options.seconds,
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
    errors,
    firstError,
  };
  if (options.mode === "open") {
    const s = scheduled.sorted();
    result.scheduledP50Ms = percentile(s, 0.5);
    result.scheduledP99Ms = percentile(s, 0.99);
    result.lagP99Ms = percentile(lag.sorted(), 0.99);
  }
  return result;
}

// Only as a process of its own: bench-sidecar.ts imports this module for its types and body.
const main = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
const [role, arg] = main ? process.argv.slice(2) : [];
if (role === "upstream") runUpstream();
else if (role === "proxy" && arg) runProxy(arg);
else if (role === "relay" && arg) runRelay(arg);
else if (role === "load" && arg) {
  const result = await runLoad(JSON.parse(arg) as LoadOptions);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else if (role !== undefined) {
  process.stderr.write("usage: bench-sidecar-upstream.ts upstream | proxy <upstream-url> | relay <upstream-url> | load <json>\n");
  process.exit(2);
}
