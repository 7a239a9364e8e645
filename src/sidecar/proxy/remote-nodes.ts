// The sidecar's egress to Dagu's remote nodes (ADR 0012, docs/remote-nodes.md). Dagu's config names
// each remote node with `api_base_url: http://127.0.0.1:<egress port>/<name>/api/v1` and no auth; Dagu
// sends the requests it proxies (`?remoteNode=<name>`) here, and the sidecar forwards them to the node's
// URL (the remote's own sidecar) with the node's key as `Authorization: Bearer`. The key comes from a
// Secret the sidecar watches (the DaguApiKey's consumer Secret), so a rotated key is sent within about
// a second and never sits in Dagu's configuration, which DAG code can read.
// Listens on loopback only. Forwards only to the nodes of the credentials document, only below their
// URL (no dot segments, no encoded separators), and passes no cookie, client credential or forwarding
// header of the browser's request on.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Agent, request, type Dispatcher } from "undici";
import type { CredentialRemoteNode } from "../../api/credentials.ts";
import type { CredentialStore } from "../credentials/credential-store.ts";
import type { HostPort } from "../server.ts";

/** Values of Secret keys, kept current (sources/kubernetes-secret-values.ts). */
export interface SecretValues {
  /** Watch exactly these Secrets from now on. */
  follow(secretNames: readonly string[]): void;
  value(secretName: string, key: string): string | undefined;
  stop(): Promise<void>;
}

/** Headers of the browser's request that must not reach another Dagu: hop-by-hop, credentials, identity. */
const DROPPED = new Set(["host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "authorization", "cookie", "forwarded", "x-real-ip", "x-api-key"]);
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);
const UNSAFE_PATH = /(^|\/)\.{1,2}(\/|$)|%2e|%2f|%5c|\\/i;

export class RemoteNodeEgress {
  readonly #server: Server;
  readonly #store: CredentialStore;
  readonly #secrets: SecretValues;
  readonly #log: Logger;
  readonly #listen: HostPort;
  /** One connection pool per node and CA. */
  readonly #agents = new Map<string, Agent>();

  constructor(options: { listen: HostPort; store: CredentialStore; secrets: SecretValues; logger: Logger }) {
    this.#listen = options.listen;
    this.#store = options.store;
    this.#secrets = options.secrets;
    this.#log = options.logger;
    this.#server = createServer((req, res) => void this.#handle(req, res));
    const follow = () => this.#secrets.follow(secretsOf(this.#store.snapshot()?.credentials.remoteNodes ?? []));
    this.#store.on("loaded", follow);
    follow();
  }

  async start(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#listen.port, this.#listen.host, () => resolve());
    });
    return this.#server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.all([...this.#agents.values()].map((a) => a.close()));
    await this.#secrets.stop();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const match = /^\/([a-z0-9-]{1,63})(\/.*)?$/.exec(path);
    const nodes = this.#store.snapshot()?.credentials.remoteNodes ?? [];
    const node = match ? nodes.find((n) => n.name === match[1]) : undefined;
    if (!node) return fail(req, res, 404, "not_found", `no remote node ${JSON.stringify(match?.[1] ?? path)} in the DaguAuth's spec.remoteNodes`);
    const rest = match![2] ?? "/";
    if (UNSAFE_PATH.test(rest)) return fail(req, res, 400, "bad_request", "the path has dot segments or encoded separators");
    const token = this.#secrets.value(node.token.secretName, node.token.key)?.trim();
    if (!token) return fail(req, res, 503, "unavailable", `the key of remote node ${node.name} is not available yet (Secret ${node.token.secretName})`);
    let ca: string | undefined;
    if (node.ca) {
      ca = this.#secrets.value(node.ca.secretName, node.ca.key);
      if (!ca) return fail(req, res, 503, "unavailable", `the CA of remote node ${node.name} is not available yet (Secret ${node.ca.secretName})`);
    }
    const base = new URL(node.url);
    const target = `${base.origin}${base.pathname.replace(/\/+$/, "")}${rest}${q < 0 ? "" : url.slice(q)}`;
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !DROPPED.has(name) && !name.startsWith("x-forwarded-")) headers[name] = value;
    headers.authorization = `Bearer ${token}`;
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    try {
      const answer = await request(target, {
        method: (req.method ?? "GET") as Dispatcher.HttpMethod,
        headers,
        ...(hasBody ? { body: req } : {}),
        dispatcher: this.#agent(node, ca),
        headersTimeout: 30_000,
        bodyTimeout: 0, // event streams stay open
      });
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      res.writeHead(answer.statusCode, out);
      for await (const chunk of answer.body) if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
      res.end();
      this.#log.debug({ remoteNode: node.name, method: req.method, status: answer.statusCode }, "remote node request");
    } catch (err) {
      this.#log.warn({ remoteNode: node.name, error: err instanceof Error ? err.message : String(err) }, "remote node unreachable");
      if (!res.headersSent) fail(req, res, 502, "bad_gateway", `remote node ${node.name} did not answer`);
      else res.destroy();
    }
  }

  #agent(node: CredentialRemoteNode, ca: string | undefined): Agent {
    const id = `${node.name}\n${node.url}\n${ca ?? ""}`;
    let agent = this.#agents.get(id);
    if (!agent) {
      for (const [k, a] of this.#agents) {
        if (!k.startsWith(`${node.name}\n`)) continue;
        this.#agents.delete(k); // the node's URL or CA changed
        void a.close();
      }
      agent = new Agent({ keepAliveTimeout: 30_000, connect: { timeout: 10_000, ...(ca ? { ca } : {}) } });
      this.#agents.set(id, agent);
    }
    return agent;
  }
}

export function secretsOf(nodes: readonly CredentialRemoteNode[]): string[] {
  return [...new Set(nodes.flatMap((n) => [n.token.secretName, ...(n.ca ? [n.ca.secretName] : [])]))];
}

/** Dagu's error shape, so its remote-node proxy relays the message. */
function fail(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string): void {
  req.resume();
  const body = JSON.stringify({ code, message });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
