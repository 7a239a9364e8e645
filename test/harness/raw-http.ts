// HTTP/1.1 at the byte level: requests a client library would clean up (dot segments, duplicate headers,
// absolute targets, broken framing), and what fetch cannot show: whether a server answers before a request's body
// has been sent (does it read the body before deciding?), the exact answer head, and connections from a
// chosen loopback source address (Linux accepts any 127.0.0.0/8 address as a source) to stand for
// distinct clients.
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";

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

export interface TcpTap {
  /** Where to connect instead of the target. */
  readonly url: string;
  /** Every byte clients sent through the tap so far (latin1): what the target was given, framing and all. */
  sent(): string;
  clear(): void;
  stop(): Promise<void>;
}

/**
 * A TCP forwarder that keeps the bytes sent to `target` (`http://host:port`): the proof, below any HTTP
 * parser, that a smuggled request never reached it (a parser in between could mend or split a request).
 */
export async function startTcpTap(target: string): Promise<TcpTap> {
  const to = new URL(target);
  let sent: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    const upstream = connect({ host: to.hostname, port: Number(to.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.once("close", () => sockets.delete(s));
    }
    client.on("data", (chunk: Buffer) => sent.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sent: () => Buffer.concat(sent).toString("latin1"),
    clear: () => void (sent = []),
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Writes `request` (any bytes: several pipelined requests, broken framing) on one connection and reads
 * every answer until the server closes, or stays silent for `quietMs` after an answer (15 s before the first).
 * `closed`: the server closed.
 */
export async function rawConversation(options: { port: number; request: string | Buffer; localAddress?: string; quietMs?: number }): Promise<{ answers: RawResponse[]; closed: boolean }> {
  const socket = await rawConnect(options.port, options.localAddress);
  const chunks: Buffer[] = [];
  let closed = false;
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout;
    const quiet = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(resolve, ms);
    };
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      quiet(options.quietMs ?? 500);
    });
    socket.once("close", () => {
      closed = true;
      clearTimeout(timer);
      resolve();
    });
    socket.write(options.request);
    // The first answer may take a password hash on a loaded machine: silence counts only after it.
    quiet(15_000);
  });
  socket.destroy();
  return { answers: parseResponses(Buffer.concat(chunks)), closed };
}

/** HTTP/1.1 responses one after another (Content-Length, chunked, or up to the end); 100 Continue included. */
export function parseResponses(data: Buffer): RawResponse[] {
  const answers: RawResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf("\r\n\r\n", at, "latin1");
    if (end < 0) break;
    const [statusLine = "", ...lines] = data.subarray(at, end).toString("latin1").split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const status = Number(statusLine.split(" ")[1]);
    let bodyEnd: number;
    let body: Buffer;
    if (status < 200 || status === 204 || status === 304) {
      bodyEnd = end + 4;
      body = Buffer.alloc(0);
    } else if (headers["content-length"] !== undefined) {
      bodyEnd = end + 4 + Number(headers["content-length"]);
      body = data.subarray(end + 4, bodyEnd);
    } else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const parts: Buffer[] = [];
      let p = end + 4;
      for (;;) {
        const lineEnd = data.indexOf("\r\n", p, "latin1");
        if (lineEnd < 0) break;
        const size = parseInt(data.subarray(p, lineEnd).toString("latin1"), 16);
        p = lineEnd + 2;
        if (!size) {
          p = data.indexOf("\r\n\r\n", p - 2, "latin1") + 4;
          break;
        }
        parts.push(data.subarray(p, p + size));
        p += size + 2;
      }
      bodyEnd = p;
      body = Buffer.concat(parts);
    } else {
      bodyEnd = data.length;
      body = data.subarray(end + 4);
    }
    answers.push({ status, headers, body: body.toString("utf8") });
    at = bodyEnd;
  }
  return answers;
}
