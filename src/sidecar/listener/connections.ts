// Client connections and their requests in flight, for a graceful stop: a connection with no request
// in flight can be closed at once, one with a response still streaming is left to finish. Node's own
// closeIdleConnections() misses connections that never carried a request (browsers and HTTP clients
// open them ahead of time), so idleness is tracked here.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { normalizeAddress } from "../proxy/headers.ts";

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

/**
 * Caps open connections, in all and per client address, before a byte is parsed: a slowloris client
 * holding sockets open (each costs a file descriptor and parser state until the headers timeout ends it)
 * cannot take every slot. The address is the TCP peer; trusted proxies (the ingress, which multiplexes
 * many users) are exempt from the per-address cap, not from the total. A refused socket is closed at once.
 */
export class ConnectionLimiter {
  readonly #perAddress = new Map<string, number>();
  /** Every accepted socket, TLS handshakes included (the server's own list knows only HTTP connections). */
  readonly #sockets = new Set<Socket>();
  readonly #maxTotal: number;
  readonly #maxPerAddress: number;
  readonly #exempt: (address: string) => boolean;
  readonly #refused: (reason: "total" | "per_client") => void;
  #open = 0;
  #peak = 0;

  constructor(options: { maxTotal: number; maxPerAddress: number; exempt: (address: string) => boolean; refused: (reason: "total" | "per_client") => void }) {
    this.#maxTotal = options.maxTotal;
    this.#maxPerAddress = options.maxPerAddress;
    this.#exempt = options.exempt;
    this.#refused = options.refused;
  }

  get open(): number {
    return this.#open;
  }

  /** The most connections open at once since the start: a sampled gauge misses a burst's peak. */
  get peak(): number {
    return this.#peak;
  }

  /** The end of a graceful stop: whatever is still open (a stalled TLS handshake too) is closed. */
  closeAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  /** On the raw TCP `connection` event (before TLS), so the cap holds for handshakes too. */
  attach(server: Server): void {
    server.on("connection", (socket: Socket) => {
      const address = normalizeAddress(socket.remoteAddress ?? "");
      const exempt = this.#exempt(address);
      const held = this.#perAddress.get(address) ?? 0;
      const over = this.#open >= this.#maxTotal ? "total" : !exempt && held >= this.#maxPerAddress ? "per_client" : undefined;
      if (over) {
        this.#refused(over);
        socket.destroy();
        return;
      }
      this.#open++;
      if (this.#open > this.#peak) this.#peak = this.#open;
      this.#sockets.add(socket);
      if (!exempt) this.#perAddress.set(address, held + 1);
      socket.once("close", () => {
        this.#open--;
        this.#sockets.delete(socket);
        if (exempt) return;
        const n = (this.#perAddress.get(address) ?? 1) - 1;
        if (n <= 0) this.#perAddress.delete(address);
        else this.#perAddress.set(address, n);
      });
    });
  }
}
