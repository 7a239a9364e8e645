// The sidecar for tests: the real CLI (`src/cli.ts sidecar ...`) as a child process on a loopback port,
// its pino output captured; a recording forwarder to put between the sidecar and Dagu (to prove what did
// or did not reach Dagu); and a small stand-in for a Dagu 2.x upstream (/api/v1, SSE, WebSocket), which
// this machine cannot build. Credentials documents with known secrets: dev/known-credentials.ts.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { repoRoot } from "../../dev/components.ts";
import { freePort } from "../../dev/control-plane.ts";

// ------------------------------------------------------------------------------------------------
// The sidecar process

export interface SidecarInstance {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far (pino lines and errors). */
  output(): string;
  /** Parsed pino lines of stdout. */
  lines(): Record<string, unknown>[];
  /** Where /metrics is served (its own loopback port: never the main one), once the sidecar listens. */
  metricsUrl(): string;
  /** SIGTERM (default) and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export const CLI = join(repoRoot, "src", "cli.ts");

export async function startSidecar(options: {
  upstream: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Wait for /readyz 200 (default), only /healthz, or not at all. */
  wait?: "ready" | "live" | "none";
  port?: number;
}): Promise<SidecarInstance> {
  const port = options.port ?? (await freePort());
  // The metrics listener's default port (9090) would collide between sidecars running at once.
  const metricsArgs = options.args?.includes("--metrics-listen") ? [] : ["--metrics-listen", "127.0.0.1:0"];
  const child = spawn(process.execPath, [CLI, "sidecar", "--upstream", options.upstream, "--listen", `127.0.0.1:${port}`, ...metricsArgs, ...(options.args ?? [])], {
    env: options.env ?? { PATH: process.env.PATH ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let stdout = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    stdout += d;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const instance: SidecarInstance = {
    url,
    port,
    process: child,
    output: () => out,
    lines: () =>
      stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    metricsUrl: () => {
      const listening = instance.lines().find((l) => l.msg === "sidecar listening");
      const metrics = listening?.metrics as { address?: string; port?: number } | undefined;
      if (!metrics?.port) throw new Error(`the sidecar has no metrics listener (yet):\n${out}`);
      return `http://${metrics.address}:${metrics.port}`;
    },
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null && !child.killed) child.kill(signal);
      return exited;
    },
  };
  const wait = options.wait ?? "ready";
  if (wait === "none") return instance;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sidecar exited with ${child.exitCode}:\n${out}`);
    try {
      const response = await fetch(`${url}${wait === "ready" ? "/readyz" : "/healthz"}`);
      await response.arrayBuffer();
      // Ready is answered before stdout's "sidecar listening" line may have arrived here: wait for it
      // (metricsUrl() reads it) unless metrics are off.
      const at = options.args?.indexOf("--metrics-listen") ?? -1;
      const metricsOff = at >= 0 && options.args?.[at + 1] === "off";
      if (response.ok && (metricsOff || instance.lines().some((l) => l.msg === "sidecar listening"))) return instance;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await instance.stop("SIGKILL");
  throw new Error(`sidecar did not become ${wait} on ${url}:\n${out}`);
}

// ------------------------------------------------------------------------------------------------
// A recording forwarder: sidecar -> recorder -> Dagu

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  /** The whole body arrived. */
  complete: boolean;
}

export interface Recorder {
  readonly url: string;
  readonly requests: RecordedRequest[];
  clear(): void;
  stop(): Promise<void>;
}

/** An HTTP server that records every request, then forwards it (streaming) to `target`, if any. */
export async function startRecorder(target?: string): Promise<Recorder> {
  const requests: RecordedRequest[] = [];
  const upstream = target ? new URL(target) : undefined;
  const server = createServer((req, res) => {
    const entry: RecordedRequest = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, rawHeaders: [...req.rawHeaders], complete: false };
    requests.push(entry);
    req.on("end", () => (entry.complete = true));
    if (!upstream) {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ recorded: true }));
      });
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== "connection") headers[k] = v;
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(forward);
  });
  const url = await listenLoopback(server);
  return {
    url,
    requests,
    clear: () => void requests.splice(0),
    stop: () => closeServer(server),
  };
}

// ------------------------------------------------------------------------------------------------
// A stand-in for a Dagu 2.x upstream (/api/v1): health, an SSE stream whose end the test decides, and a
// WebSocket echo (Dagu registers its terminal WebSocket only with its own auth on, never behind the sidecar).

export interface FakeDagu2 extends Recorder {
  /** Ends the open SSE streams (they otherwise wait for it). */
  releaseStreams(): void;
}

export async function startFakeDagu2(): Promise<FakeDagu2> {
  const requests: RecordedRequest[] = [];
  const streams: IncomingMessage[] = [];
  let release: () => void = () => undefined;
  let released = new Promise<void>((resolve) => (release = resolve));
  const server = createServer((req, res) => {
    const entry: RecordedRequest = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, rawHeaders: [...req.rawHeaders], complete: false };
    requests.push(entry);
    req.resume();
    req.on("end", () => (entry.complete = true));
    const path = (req.url ?? "").split("?")[0];
    if (path === "/api/v1/health") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "healthy", version: "2.15.1" }));
      return;
    }
    if (path === "/api/v1/events/stream") {
      streams.push(req);
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.write("event: hello\ndata: first\n\n");
      void released.then(() => {
        res.write("event: bye\ndata: last\n\n");
        res.end();
      });
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ path }));
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers }, rawHeaders: [...req.rawHeaders], complete: true });
    socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    if (head.length) socket.write(head);
    socket.pipe(socket); // echo the raw bytes
  });
  const url = await listenLoopback(server);
  return {
    url,
    requests,
    clear: () => void requests.splice(0),
    releaseStreams: () => {
      release();
      released = new Promise<void>((resolve) => (release = resolve));
    },
    stop: () => {
      release();
      return closeServer(server);
    },
  };
}

async function listenLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
