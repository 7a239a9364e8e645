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
 * before reading, a chunked body when it passes the limit (413 either way).
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) throw new HttpError(413, "payload_too_large", `request body too large (max ${limit} bytes)`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) throw new HttpError(413, "payload_too_large", `request body too large (max ${limit} bytes)`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
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
