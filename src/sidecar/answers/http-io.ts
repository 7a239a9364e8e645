// Small HTTP helpers for the answers the sidecar gives itself, in Dagu's error shape `{code, message}`.
import type { IncomingMessage, ServerResponse } from "node:http";

/** Dagu's error codes (api.yaml ErrorCode). */
export type DaguErrorCode =
  | "forbidden"
  | "bad_request"
  | "not_found"
  | "internal_error"
  | "unauthorized"
  | "bad_gateway"
  | "already_exists"
  | "too_many_requests"
  | "service_unavailable"
  | "payload_too_large";

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": String(payload.length),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...headers,
  });
  res.end(payload);
}

export function sendError(res: ServerResponse, status: number, code: DaguErrorCode, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { code, message }, headers);
}

export class HttpError extends Error {
  readonly status: number;
  readonly code: DaguErrorCode;
  /** Sent with the answer (e.g. Retry-After). */
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, code: DaguErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * Bytes of request bodies the sidecar holds before it knows who sent them (a login's credentials, an
 * HMAC-signed webhook's body), all requests together. Each read reserves its declared length (its limit
 * when chunked) up front and gives it back when it ends, so slow or stalled bodies cannot pile up memory:
 * past the budget a new one is refused at once. One client address may hold at most CLIENT_SHARE of it,
 * so a single client stalling bodies cannot take it all from everyone else's logins.
 */
export class ByteBudget {
  static readonly CLIENT_SHARE = 1 / 8;
  readonly #total: number;
  readonly #byClient = new Map<string, number>();
  #held = 0;
  constructor(total: number) {
    this.#total = total;
  }
  get held(): number {
    return this.#held;
  }
  /** Reserves `bytes` for `client`; why not (nothing reserved) when the budget or the client's share cannot hold them. */
  take(bytes: number, client: string): "ok" | "client" | "total" {
    const mine = this.#byClient.get(client) ?? 0;
    if (mine + bytes > this.#total * ByteBudget.CLIENT_SHARE) return "client";
    if (this.#held + bytes > this.#total) return "total";
    this.#held += bytes;
    this.#byClient.set(client, mine + bytes);
    return "ok";
  }
  give(bytes: number, client: string): void {
    this.#held = Math.max(0, this.#held - bytes);
    const left = (this.#byClient.get(client) ?? 0) - bytes;
    if (left > 0) this.#byClient.set(client, left);
    else this.#byClient.delete(client);
  }
}

/** How the sidecar reads a body it must see before the caller is authenticated. */
export interface UnauthenticatedRead {
  readonly budget: ByteBudget;
  /** The whole body must have arrived within this many ms of the start of the read (408 after). */
  readonly timeoutMs: number;
}

/** Retry-After when the unauthenticated-body budget is full: stalled reads end within their timeout. */
export const BUDGET_RETRY_SECONDS = 1;

/**
 * Reads a request body of at most `limit` bytes: a declared Content-Length above the limit is refused
 * before reading, a chunked body when it passes the limit (413 either way). With `unauthenticated`, the
 * body's bytes are reserved from the budget first (at once: 429 past the client's share, 503 past the
 * whole) and must arrive within its timeout (408). The stream is left open (no `for await`, which destroys it on an early exit) so the
 * refusal can still be answered on this socket.
 */
export function readBody(req: IncomingMessage, limit: number, unauthenticated?: UnauthenticatedRead & { readonly client: string }): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  const reserved = declared !== undefined ? Number(declared) : limit;
  const taken = unauthenticated?.budget.take(reserved, unauthenticated.client);
  if (taken === "client") {
    return Promise.reject(new HttpError(429, "too_many_requests", "too many request bodies from this client are being received; try again shortly", { "Retry-After": String(BUDGET_RETRY_SECONDS) }));
  }
  if (taken === "total") {
    return Promise.reject(new HttpError(503, "service_unavailable", "too many request bodies are being received; try again shortly", { "Retry-After": String(BUDGET_RETRY_SECONDS) }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else settle(tooLarge(limit));
    };
    const onEnd = (): void => settle();
    const onError = (error: Error): void => settle(error);
    const onClose = (): void => settle(new Error("the client closed the connection before the body ended"));
    const timer = unauthenticated
      ? setTimeout(() => settle(new HttpError(408, "bad_request", `the request body did not arrive within ${unauthenticated.timeoutMs} ms`)), unauthenticated.timeoutMs)
      : undefined;
    timer?.unref();
    let settled = false;
    const settle = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unauthenticated?.budget.give(reserved, unauthenticated.client);
      req.off("data", onData).off("end", onEnd).off("error", onError).off("close", onClose);
      if (error) {
        req.pause();
        reject(error);
      } else resolve(Buffer.concat(chunks));
    };
    req.on("data", onData).on("end", onEnd).on("error", onError).on("close", onClose);
  });
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "payload_too_large", `request body too large (max ${limit} bytes)`);
}

/** How much of a refused request's body is still read, and for how long, before the answer. */
export const DISCARD_BUDGET = { bytes: 4 * 1024 * 1024, ms: 2_000 } as const;

/**
 * Reads and throws away the rest of a request's body, within a budget, before it is refused. Closing a
 * socket with unread bytes makes the kernel send a reset, and a client still uploading then sees EPIPE or
 * ECONNRESET instead of the 413/401 it was sent. Resolves whether the body ended; when it did not (too big,
 * too slow) the caller answers with `Connection: close`.
 */
export function discardBody(req: IncomingMessage, budget: { bytes: number; ms: number } = DISCARD_BUDGET): Promise<boolean> {
  if (req.complete || req.readableEnded) return Promise.resolve(true);
  if (req.destroyed) return Promise.resolve(false); // no event will come: nothing to wait for
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > budget.bytes) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > budget.bytes) done(false);
    };
    const onEnd = (): void => done(true);
    const onStop = (): void => done(false);
    const timer = setTimeout(onStop, budget.ms);
    timer.unref();
    const done = (ended: boolean): void => {
      clearTimeout(timer);
      req.off("data", onData).off("end", onEnd).off("error", onStop).off("close", onStop);
      if (!ended) req.pause();
      resolve(ended);
    };
    req.on("data", onData).on("end", onEnd).on("error", onStop).on("close", onStop);
    req.resume();
  });
}

/** Parses a JSON body; an empty body is `undefined`. */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    throw new HttpError(400, "bad_request", "request body is not valid JSON");
  }
}
