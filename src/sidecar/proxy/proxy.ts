// Forwards an authorized request to Dagu. Request and response bodies are streamed in both directions
// (SSE and large logs flow as they come; nothing is buffered), except Dagu's HTML page, which is read
// whole (bounded) to rewrite getConfig(). WebSocket upgrades are forwarded as a raw byte pipe after the
// server has authenticated them and Dagu has switched protocols.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { Transform, type TransformCallback } from "node:stream";
import type { IncomingHttpHeaders } from "node:http";
import { errors as undiciErrors, type Dispatcher } from "undici";
import { filterResponseHeaders } from "./headers.ts";
import { HttpError } from "../answers/http-io.ts";
import { decodeBody, isHtml, MAX_REWRITE_BYTES, rewriteGetConfig, type UiRewrite } from "../ui/config-rewrite.ts";
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
  /** The whole body, when the sidecar had to read it before deciding (MCP); otherwise it is streamed. */
  readonly body?: Buffer;
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
  let body: BodyLimit | Buffer | undefined;
  if (call.body !== undefined) {
    // Sent as read: its own length, whatever framing the client used.
    body = call.body;
    for (let i = call.headers.length - 2; i >= 0; i -= 2) {
      if (/^(content-length|transfer-encoding)$/i.test(call.headers[i]!)) call.headers.splice(i, 2);
    }
    call.headers.push("Content-Length", String(body.length));
  } else if (hasBody(req)) {
    body = new BodyLimit(call.maxBodyBytes);
    // pipe(), not pipeline(): on 413 the client's socket must stay open for the answer. undici aborts the
    // request when its body stream fails.
    const limited = body;
    req.pipe(limited);
    req.once("error", (error) => limited.destroy(error));
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

/** The Upgrade header names exactly the WebSocket protocol (RFC 6455 §4.2.1: case-insensitive). */
export function isWebSocketUpgrade(upgrade: string | undefined): boolean {
  return upgrade?.trim().toLowerCase() === "websocket";
}

/** How long Dagu may take to answer an upgrade (as the server's own headersTimeout). */
const UPGRADE_ANSWER_MS = 30_000;

/**
 * Forwards an authenticated WebSocket upgrade on a connection of its own and resolves with the status
 * relayed to the client (499 when the client left first). The sockets are joined only after Dagu has
 * answered `101` with `Upgrade: websocket`; until then nothing of the client's (not even bytes already
 * sent after its request head) reaches Dagu. Any other answer is relayed with `Connection: close` and both
 * sockets are closed: a joined socket after a keep-alive 404 would let further requests reach Dagu
 * unchecked. Rejects with an HttpError (nothing written yet) when Dagu cannot be reached or answers
 * something that is not HTTP or not a WebSocket.
 */
export function proxyUpgrade(upstream: Upstream, req: IncomingMessage, client: Duplex, head: Buffer, target: string, headers: string[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // The client may have gone during authentication ("close" already emitted): nothing to forward.
    if (client.destroyed) return resolve(499);
    const secure = upstream.origin.startsWith("https:");
    const request = (secure ? httpsRequest : httpRequest)(`${upstream.origin}${target}`, {
      method: req.method,
      // Raw [name, value, ...] pairs as forwarded; agent false: a connection of its own, never pooled.
      headers: ["Host", upstream.host, ...headers],
      setHost: false,
      agent: false,
    });
    let settled = false;
    const settle = (outcome: number | HttpError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (typeof outcome === "number") resolve(outcome);
      else reject(outcome);
    };
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${UPGRADE_ANSWER_MS} ms`)), UPGRADE_ANSWER_MS);
    const clientGone = (): void => {
      request.destroy();
      settle(499);
    };
    // A client that leaves (or fails) mid-handshake cancels it; after a join these also tear down Dagu's side.
    client.once("close", clientGone);
    client.on("error", () => client.destroy());
    request.on("error", (error) => {
      // Before an answer the server still tells the client (502); after one, the relay is cut.
      if (settled) client.destroy();
      else settle(new HttpError(502, "bad_gateway", `Dagu did not answer the upgrade: ${describeUndiciError(error)}`));
    });

    request.once("upgrade", (answer: IncomingMessage, server: Socket, upstreamHead: Buffer) => {
      server.on("error", () => {
        server.destroy();
        client.destroy();
      });
      // Node reports any 101 with Upgrade/Connection here; only a WebSocket may follow.
      if (!isWebSocketUpgrade(answer.headers.upgrade)) {
        server.destroy();
        settle(new HttpError(502, "bad_gateway", "Dagu switched to a protocol other than WebSocket"));
        return;
      }
      if (client.destroyed) return server.destroy();
      client.write(rawHead(answer, answer.rawHeaders));
      if (upstreamHead.length > 0) client.write(upstreamHead);
      if (head.length > 0) server.write(head);
      // pipe(): backpressure both ways and half-close passed on; errors and closes are handled above/here.
      server.pipe(client);
      client.pipe(server);
      server.once("close", () => client.destroy());
      client.once("close", () => server.destroy());
      settle(101);
    });

    request.once("response", (answer: IncomingMessage) => {
      // A 101 without Upgrade/Connection: upgrade comes here; the client cannot use it.
      if (answer.statusCode! < 200) {
        request.destroy();
        settle(new HttpError(502, "bad_gateway", "Dagu answered the upgrade with an incomplete 101"));
        return;
      }
      // Relayed whole (the body streams with backpressure; without a Content-Length it ends at the close),
      // then both sockets close: the client's connection is never reused, nothing more flows.
      const kept = filterResponseHeaders(answer.headers);
      const pairs = Object.entries(kept).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).flatMap((v) => [name, v]));
      client.write(rawHead(answer, [...pairs, "Connection", "close"]));
      answer.pipe(client);
      answer.on("error", () => client.destroy());
      client.once("finish", () => {
        client.destroy();
        request.destroy();
      });
      settle(answer.statusCode!);
    });
    request.end();
  });
}

/** A response head from a parsed status and raw [name, value, ...] pairs (values already CR/LF-free). */
function rawHead(answer: IncomingMessage, pairs: readonly string[]): string {
  const lines = [`HTTP/1.1 ${answer.statusCode} ${answer.statusMessage ?? ""}`];
  for (let i = 0; i + 1 < pairs.length; i += 2) lines.push(`${pairs[i]}: ${pairs[i + 1]}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}
