// Raw HTTP/1.1 on a socket, for requests a client library would clean up (dot segments, duplicate
// headers, absolute targets, broken framing).
import { connect } from "node:net";

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

