// The connection pool to Dagu (undici, keep-alive) and the few requests the sidecar makes on its own
// behalf (health probes for API detection, the webhook trigger's look-ups and enqueue).
import { Pool } from "undici";

export interface UpstreamOptions {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  connections?: number;
}

export interface UpstreamJson {
  readonly status: number;
  readonly json: unknown;
}

export class Upstream {
  readonly origin: string;
  readonly host: string;
  readonly pool: Pool;

  constructor(options: UpstreamOptions) {
    const url = new URL(options.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`--upstream must be http(s)://host:port, got ${options.url}`);
    if (url.pathname !== "/" || url.search || url.hash) throw new Error(`--upstream must have no path or query, got ${options.url}`);
    this.origin = url.origin;
    this.host = url.host;
    this.pool = new Pool(this.origin, {
      connections: options.connections ?? 128,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 120_000,
      // Streams (SSE, long logs) must not be cut by a body timeout; headers must come reasonably fast.
      headersTimeout: 60_000,
      bodyTimeout: 0,
      connect: { timeout: 10_000 },
    });
  }

  /** A small request whose answer is read whole (bounded) and parsed as JSON when it is JSON. */
  async requestJson(method: "GET" | "POST", path: string, body?: unknown, limit = 4 * 1024 * 1024): Promise<UpstreamJson> {
    const response = await this.pool.request({
      method,
      path,
      headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        response.body.destroy();
        throw new Error(`Dagu's answer to ${method} ${path} is larger than ${limit} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.statusCode, json };
  }

  /** GET `path`: status and body text, or undefined when Dagu is not reachable. */
  async probe(path: string): Promise<{ status: number; body: string } | undefined> {
    try {
      const response = await this.pool.request({ method: "GET", path, headersTimeout: 5_000, bodyTimeout: 5_000 });
      const body = await response.body.text();
      return { status: response.statusCode, body: body.slice(0, 64 * 1024) };
    } catch {
      return undefined;
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
