// Client connections and their requests in flight, for a graceful stop: a connection with no request
// in flight can be closed at once, one with a response still streaming is left to finish. Node's own
// closeIdleConnections() misses connections that never carried a request (browsers and HTTP clients
// open them ahead of time), so idleness is tracked here.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

export class ConnectionTracker {
  readonly #inFlight = new Map<Socket, number>();

  /** Starts tracking a server's connections (`secureConnection` for HTTPS: requests see the TLS socket). */
  attach(server: Server, event: "connection" | "secureConnection"): void {
    server.on(event, (socket: Socket) => {
      this.#inFlight.set(socket, 0);
      socket.once("close", () => this.#inFlight.delete(socket));
    });
  }

  requestStarted(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#inFlight.set(socket, (this.#inFlight.get(socket) ?? 0) + 1);
    res.once("close", () => {
      const n = this.#inFlight.get(socket);
      if (n !== undefined) this.#inFlight.set(socket, Math.max(0, n - 1));
    });
  }

  /** An upgraded connection (WebSocket) stays busy until it closes; the grace period bounds it. */
  upgraded(req: IncomingMessage): void {
    this.#inFlight.set(req.socket, Number.POSITIVE_INFINITY);
  }

  /** Closes every connection with nothing in flight. */
  closeIdle(): void {
    for (const [socket, inFlight] of this.#inFlight) if (inFlight === 0) socket.destroy();
  }
}
