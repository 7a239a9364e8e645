// Forwards an authorized request to Dagu. Request and response bodies are streamed in both directions
// (SSE and large logs flow as they come; nothing is buffered), except Dagu's HTML page, which is read
// whole (bounded) to rewrite getConfig(). WebSocket upgrades are forwarded as a raw byte pipe after the
// server has authenticated them.
import type { IncomingMessage, ServerResponse } from "node:http";
import { connect as netConnect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Transform, type TransformCallback } from "node:stream";
import { connect as tlsConnect } from "node:tls";
import type { IncomingHttpHeaders } from "node:http";
import { errors as undiciErrors, type Dispatcher } from "undici";
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
export function proxyHttp(upstream: Upstream, call: ProxyCall): Promise<number> {
  const { req } = call;
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > call.maxBodyBytes) {
    throw new HttpError(413, "payload_too_large", `request body too large (max ${call.maxBodyBytes} bytes)`);
  }
  let body: BodyLimit | undefined;
  if (hasBody(req)) {
    body = new BodyLimit(call.maxBodyBytes);
    // pipe(), not pipeline(): on 413 the client's socket must stay open for the answer. undici aborts the
    // request when its body stream fails.
    req.pipe(body);
    req.once("error", (error) => body!.destroy(error));
  }
  call.headers.push("Host", upstream.host);
  return new Promise<number>((resolve, reject) => {
    upstream.pool.dispatch(
      { method: req.method as "GET", path: call.target, headers: call.headers, body },
      new ForwardHandler(call, resolve, reject),
    );
  });
}

/**
 * Receives Dagu's answer through undici's dispatcher API and writes it straight to the client's response:
 * no intermediate stream or abort signal per request (this is the hot path), with backpressure from the
 * client's socket (pause/resume) and the upstream request aborted when the client goes away.
 */
class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #call: ProxyCall;
  readonly #resolve: (status: number) => void;
  readonly #reject: (error: unknown) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #clientGone = false;
  #status = 0;
  /** Set while an HTML page is collected for the getConfig() rewrite. */
  #page: { chunks: Buffer[]; size: number; headers: Record<string, string | string[]> } | undefined;

  constructor(call: ProxyCall, resolve: (status: number) => void, reject: (error: unknown) => void) {
    this.#call = call;
    this.#resolve = resolve;
    this.#reject = reject;
    call.res.once("close", this.#onClientClose);
  }

  readonly #onClientClose = (): void => {
    if (this.#call.res.writableFinished) return;
    this.#clientGone = true;
    this.#controller?.abort(new Error("client went away"));
  };

  readonly #onDrain = (): void => this.#controller?.resume();

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The client may have left while the request waited for a free connection.
    if (this.#clientGone) controller.abort(new Error("client went away"));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, upstreamHeaders: IncomingHttpHeaders): void {
    this.#status = statusCode;
    this.#call.onUpstreamHeaders?.(statusCode);
    const headers = filterResponseHeaders(upstreamHeaders);
    if (this.#call.ui && isHtml(headers["content-type"])) {
      const length = Number(headers["content-length"] ?? NaN);
      if (Number.isNaN(length) || length <= MAX_REWRITE_BYTES) {
        this.#page = { chunks: [], size: 0, headers };
        return;
      }
    }
    const res = this.#call.res;
    res.writeHead(statusCode, headers);
    // A stream's headers go out at once: an SSE client must see them before the first event.
    if (headers["content-length"] === undefined) res.flushHeaders();
    res.on("drain", this.#onDrain);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const page = this.#page;
    if (page) {
      page.size += chunk.length;
      if (page.size > MAX_REWRITE_BYTES) controller.abort(new HttpError(502, "bad_gateway", "Dagu's page is larger than the sidecar rewrites"));
      else page.chunks.push(chunk);
      return;
    }
    if (!this.#call.res.write(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.#detach();
    const page = this.#page;
    if (page) {
      try {
        this.#resolve(sendRewritten(this.#call.res, this.#status, page.headers, Buffer.concat(page.chunks, page.size), this.#call.ui!));
      } catch (error) {
        this.#reject(error);
      }
      return;
    }
    this.#call.res.end();
    this.#resolve(this.#status);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#detach();
    const res = this.#call.res;
    if (error instanceof HttpError) this.#reject(error); // the body limit (413) or the page limit (502)
    else if (this.#clientGone) this.#resolve(499);
    else if (res.headersSent) {
      // Dagu cut the stream: nothing more can be said on this response.
      res.destroy();
      this.#resolve(this.#status);
    } else this.#reject(new HttpError(502, "bad_gateway", `Dagu is not reachable: ${describeUndiciError(error)}`));
  }

  #detach(): void {
    this.#call.res.off("close", this.#onClientClose);
    this.#call.res.off("drain", this.#onDrain);
  }
}

function sendRewritten(
  res: ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer,
  ui: UiRewrite,
): number {
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
