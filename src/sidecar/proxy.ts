// Forwards an authorized request to Dagu. Request and response bodies are streamed in both directions
// (SSE and large logs flow as they come; nothing is buffered), except Dagu's HTML page, which is read
// whole (bounded) to rewrite getConfig(). WebSocket upgrades are forwarded as a raw byte pipe after the
// server has authenticated them.
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { connect as tlsConnect } from "node:tls";
import { errors as undiciErrors } from "undici";
import { filterResponseHeaders } from "./headers.ts";
import { HttpError } from "./http-util.ts";
import { decodeBody, isHtml, MAX_REWRITE_BYTES, rewriteGetConfig, type UiRewrite } from "./ui.ts";
import type { Upstream } from "./upstream.ts";

export interface ProxyCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path and query to request from Dagu (the checked path, with the sidecar's own parameters removed). */
  readonly target: string;
  /** From forwardRequestHeaders(). */
  readonly headers: string[];
  readonly maxBodyBytes: number;
  /** Set for UI pages: HTML answers get their getConfig() rewritten. */
  readonly ui?: UiRewrite;
  /** Called when Dagu's response headers arrive. */
  readonly onUpstreamHeaders?: (status: number) => void;
}

/** Counts request bytes and fails the stream past the limit (a chunked body has no declared length). */
class BodyLimit extends Transform {
  #seen = 0;
  readonly #limit: number;
  constructor(limit: number) {
    super();
    this.#limit = limit;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) callback(new HttpError(413, "payload_too_large", `request body too large (max ${this.#limit} bytes)`));
    else callback(null, chunk);
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
}

/** Proxies one request; resolves with the status sent to the client. */
export async function proxyHttp(upstream: Upstream, call: ProxyCall): Promise<number> {
  const { req, res } = call;
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > call.maxBodyBytes) {
    throw new HttpError(413, "payload_too_large", `request body too large (max ${call.maxBodyBytes} bytes)`);
  }
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort();
  };
  res.on("close", onClose);

  let limited: BodyLimit | undefined;
  let bodyError: unknown;
  if (hasBody(req)) {
    const counter = new BodyLimit(call.maxBodyBytes);
    limited = counter;
    // pipe(), not pipeline(): on 413 the client's socket must stay open for the answer.
    req.pipe(counter);
    req.once("error", (error) => counter.destroy(error));
    counter.on("error", (error) => {
      bodyError = error;
      abort.abort();
    });
  }

  let response: Awaited<ReturnType<typeof upstream.pool.request>>;
  try {
    response = await upstream.pool.request({
      method: req.method as "GET",
      path: call.target,
      headers: [...call.headers, "Host", upstream.host],
      body: limited,
      signal: abort.signal,
    });
  } catch (error) {
    if (bodyError instanceof HttpError) throw bodyError;
    if (abort.signal.aborted && res.destroyed) return 499;
    throw new HttpError(502, "bad_gateway", `Dagu is not reachable: ${describeUndiciError(error)}`);
  }
  call.onUpstreamHeaders?.(response.statusCode);
  const headers = filterResponseHeaders(response.headers);

  if (call.ui && isHtml(headers["content-type"])) {
    const length = Number(headers["content-length"] ?? NaN);
    if (Number.isNaN(length) || length <= MAX_REWRITE_BYTES) {
      return sendRewritten(res, response.statusCode, headers, await readLimited(response.body, MAX_REWRITE_BYTES), call.ui);
    }
  }

  res.writeHead(response.statusCode, headers);
  // A stream's headers go out at once: an SSE client must see them before the first event.
  if (headers["content-length"] === undefined) res.flushHeaders();
  try {
    await pipeline(response.body, res);
  } catch {
    // The client went away or Dagu cut the stream: nothing more can be said on this response.
    res.destroy();
  } finally {
    res.off("close", onClose);
  }
  return response.statusCode;
}

async function readLimited(body: AsyncIterable<unknown> & { destroy(): void }, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sendRewritten(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer | undefined,
  ui: UiRewrite,
): number {
  if (body === undefined) throw new HttpError(502, "bad_gateway", "Dagu's page is larger than the sidecar rewrites");
  const encoding = headers["content-encoding"];
  const decoded = decodeBody(body, Array.isArray(encoding) ? encoding.join(",") : encoding);
  const rewritten = decoded === undefined ? undefined : rewriteGetConfig(decoded.toString("utf8"), ui);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    // The body changes: its length, encoding and validators change with it.
    if (rewritten !== undefined && (n === "content-length" || n === "content-encoding" || n === "etag" || n === "last-modified")) continue;
    if (n === "content-length") continue;
    out[name] = value;
  }
  const payload = rewritten !== undefined ? Buffer.from(rewritten, "utf8") : body;
  out["content-length"] = String(payload.length);
  if (rewritten !== undefined) out["cache-control"] = "no-store";
  res.writeHead(status, out);
  res.end(payload);
  return status;
}

function describeUndiciError(error: unknown): string {
  if (error instanceof undiciErrors.UndiciError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return `${(error as NodeJS.ErrnoException).code ?? error.name}: ${error.message}`;
  return String(error);
}

/**
 * Forwards an authenticated WebSocket upgrade: writes the request to Dagu on a new connection and joins
 * the two sockets. Dagu's own answer (101 or an error) reaches the client unchanged.
 */
export function proxyUpgrade(upstream: Upstream, req: IncomingMessage, client: Duplex, head: Buffer, target: string, headers: string[]): void {
  const url = new URL(upstream.origin);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const server: Socket =
    url.protocol === "https:" ? tlsConnect({ host: url.hostname, port, servername: url.hostname }) : netConnect({ host: url.hostname, port });
  const fail = () => {
    client.destroy();
    server.destroy();
  };
  server.once("error", () => {
    if (client.writable) client.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    fail();
  });
  client.once("error", fail);
  server.once(url.protocol === "https:" ? "secureConnect" : "connect", () => {
    const lines = [`${req.method} ${target} HTTP/1.1`, `Host: ${upstream.host}`];
    for (let i = 0; i + 1 < headers.length; i += 2) lines.push(`${headers[i]}: ${headers[i + 1]}`);
    server.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length > 0) server.write(head);
    server.pipe(client);
    client.pipe(server);
  });
  server.once("close", () => client.destroy());
  client.once("close", () => server.destroy());
}
