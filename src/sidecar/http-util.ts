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
  constructor(status: number, code: DaguErrorCode, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Reads a request body of at most `limit` bytes: a declared Content-Length above the limit is refused
 * before reading, a chunked body when it passes the limit (413 either way). The stream is left open (no
 * `for await`, which destroys it on an early exit) so the refusal can still be answered on this socket.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
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
    const settle = (error?: Error): void => {
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
