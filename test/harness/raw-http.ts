// HTTP/1.1 at the byte level: requests a client library would clean up (dot segments, duplicate headers,
// absolute targets, broken framing), and what fetch cannot show: whether a server answers before a request's body
// has been sent (does it read the body before deciding?), the exact answer head, and connections from a
// chosen loopback source address (Linux accepts any 127.0.0.0/8 address as a source) to stand for
// distinct clients.
import { connect, type Socket } from "node:net";

export interface RawAnswer {
  /** The server answered while the body was still withheld. */
  readonly answeredBeforeBody: boolean;
  readonly status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A connected socket; later errors (a reset by the server) just close it. */
export function rawConnect(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: "127.0.0.1", localAddress });
    socket.once("connect", () => {
      socket.off("error", reject);
      socket.on("error", () => socket.destroy());
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/**
 * Sends `head` (request line and headers, without the final blank line; `Connection: close` is added),
 * waits up to `withholdMs` before sending `body`, and reads the answer until the server closes.
 */
export async function rawExchange(options: { port: number; head: string; body?: string; withholdMs?: number; localAddress?: string }): Promise<RawAnswer> {
  const socket = await rawConnect(options.port, options.localAddress);
  const chunks: Buffer[] = [];
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.write(`${options.head}\r\nConnection: close\r\n\r\n`);
  if (options.withholdMs) await Promise.race([closed, new Promise((r) => setTimeout(r, options.withholdMs))]);
  const answeredBeforeBody = chunks.length > 0;
  if (options.body && !socket.destroyed) socket.write(options.body);
  await closed;
  const text = Buffer.concat(chunks).toString("utf8");
  const split = text.indexOf("\r\n\r\n");
  const [statusLine = "", ...lines] = text.slice(0, split < 0 ? text.length : split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { answeredBeforeBody, status: Number(statusLine.split(" ")[1]), headers, body: split < 0 ? "" : text.slice(split + 4) };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends raw bytes to 127.0.0.1:`port` and reads one response (the connection is closed after it). */
export function raw(request: string | Buffer, port: number): Promise<RawResponse> {
  const isHead = (typeof request === "string" ? request : request.toString("latin1")).startsWith("HEAD ");
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const text = data.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = text.slice(0, end).split("\r\n");
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers["content-length"] ?? "0");
      if (isHead || data.length - (end + 4) >= length || headers["content-length"] === undefined) {
        socket.destroy();
        resolve({ status: Number(head[0]!.split(" ")[1]), headers, body: data.subarray(end + 4, end + 4 + length).toString("utf8") });
      }
    });
    // The sidecar answers a refused upload before the client has finished writing it; a write error then
    // must not hide an answer that arrived, so errors are judged when the socket closes.
    let failure: Error | undefined;
    socket.on("error", (error) => (failure = error));
    socket.on("close", () => reject(failure ?? new Error(`connection closed without a whole response (${data.length} bytes)`)));
    socket.write(request);
  });
}

/** A request as text with Host and Connection: close, and a Content-Length for a body. */
export function httpText(method: string, target: string, headers: [string, string][] = [], body = ""): string {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: dagu.test", "Connection: close", ...headers.map(([k, v]) => `${k}: ${v}`)];
  if (body && !headers.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k))) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}
