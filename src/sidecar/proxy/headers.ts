// Header hygiene between client, sidecar and Dagu. Dagu runs with auth off and trusts what reaches it,
// so a client must never be able to speak for the sidecar: identity and forwarding headers a client
// sends are dropped (also in their underscore spellings, which Node keeps as separate header names and
// some stacks fold into the dashed ones), hop-by-hop headers are dropped, and the sidecar sets
// X-Forwarded-For/-Proto/-Host itself. The client address comes from X-Forwarded-For only when the peer
// is a trusted proxy.
import { BlockList, isIP } from "node:net";

/** RFC 9110 §7.6.1 connection-specific headers, plus the non-standard ones proxies also drop. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

const IDENTITY_EXACT = new Set([
  "forwarded",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "x-original-forwarded-for",
  "x-originating-ip",
  "remote-user",
  "x-proxy-user",
  "x-webauth-user",
  "x-email",
  "x-dagu-user",
  "x-dagu-role",
]);
const IDENTITY_PREFIXES = ["x-forwarded-", "x-remote-", "x-auth", "x-user", "x-original-"];

/** Header names as compared here: lower case, `_` read as `-`. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll("_", "-");
}

/** True for a header a client may not send through the sidecar (identity, forwarding, credentials). */
export function isStrippedRequestHeader(name: string): boolean {
  const n = canonicalHeaderName(name);
  return (
    HOP_BY_HOP.has(n) ||
    IDENTITY_EXACT.has(n) ||
    IDENTITY_PREFIXES.some((p) => n.startsWith(p)) ||
    // The sidecar's own credential: Dagu does not need it and must not log it.
    n === "authorization" ||
    // The sidecar sets Host to the upstream and handles 100-continue itself.
    n === "host" ||
    n === "expect"
  );
}

export interface ForwardingContext {
  /** The client address as decided by clientAddress(). */
  clientAddress: string;
  /** "https" when the sidecar terminated TLS. */
  proto: "http" | "https";
  /** The Host the client asked for (for X-Forwarded-Host), if any. */
  host: string | undefined;
  /** Headers named in the request's Connection header are hop-by-hop too. */
  connectionTokens?: ReadonlySet<string>;
  /** Keep `Upgrade`/`Connection: upgrade` (WebSocket forwarding). */
  keepUpgrade?: boolean;
}

/**
 * The headers to send upstream, from Node's `rawHeaders` (name/value pairs as received, duplicates and
 * spellings preserved), as a flat [name, value, ...] list.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[], ctx: ForwardingContext): string[] {
  const connection = ctx.connectionTokens ?? connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const n = canonicalHeaderName(name);
    if (isStrippedRequestHeader(name) || connection.has(n)) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  if (ctx.keepUpgrade) out.push("Connection", "Upgrade", "Upgrade", headerValue(rawHeaders, "upgrade") ?? "websocket");
  out.push("X-Forwarded-For", ctx.clientAddress, "X-Forwarded-Proto", ctx.proto);
  if (ctx.host !== undefined && /^[A-Za-z0-9.\-:[\]]{1,255}$/.test(ctx.host)) out.push("X-Forwarded-Host", ctx.host);
  return out;
}

/** Lower-cased names listed in Connection headers (their headers are hop-by-hop). */
export function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (canonicalHeaderName(rawHeaders[i]!) !== "connection") continue;
    for (const token of rawHeaders[i + 1]!.split(",")) tokens.add(canonicalHeaderName(token.trim()));
  }
  tokens.delete("");
  return tokens;
}

/** The first value of a header in rawHeaders (case-insensitive, exact spelling, no underscore folding). */
export function headerValue(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) return rawHeaders[i + 1];
  return undefined;
}

/** How many times a header appears (exact name, case-insensitive). */
export function headerCount(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}

/** Response headers from Dagu minus hop-by-hop ones (and those its Connection header names). */
export function filterResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = new Set<string>();
  const connection = headers.connection;
  for (const value of Array.isArray(connection) ? connection : connection ? [connection] : []) {
    for (const token of value.split(",")) named.add(token.trim().toLowerCase());
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(n) || named.has(n)) continue;
    out[name] = value;
  }
  return out;
}

/** Trusted proxy CIDRs; IPv4-mapped IPv6 peers (`::ffff:10.0.0.1`) are read as IPv4. */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split("/");
      const family = isIP(address ?? "");
      if (!address || family === 0 || prefix === undefined) throw new Error(`not a CIDR: ${JSON.stringify(cidr)}`);
      this.#list.addSubnet(address, Number(prefix), family === 4 ? "ipv4" : "ipv6");
    }
    this.#empty = cidrs.length === 0;
  }

  has(address: string): boolean {
    if (this.#empty) return false;
    const a = normalizeAddress(address);
    const family = isIP(a);
    return family !== 0 && this.#list.check(a, family === 4 ? "ipv4" : "ipv6");
  }
}

export function normalizeAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/**
 * The client's address: the peer, unless the peer is a trusted proxy; then X-Forwarded-For is walked from
 * the right (the entries the trusted proxies appended) and the first address that is not itself a trusted
 * proxy is the client. Malformed entries stop the walk at the last trusted hop (never believed).
 */
export function clientAddress(peer: string, forwardedFor: readonly string[], trusted: TrustedProxies): string {
  let client = normalizeAddress(peer);
  if (!trusted.has(client)) return client;
  const hops = forwardedFor.flatMap((v) => v.split(",")).map((s) => s.trim()).filter((s) => s !== "");
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]!);
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!trusted.has(hop)) return hop;
  }
  return client;
}

/**
 * The scheme the client used: the sidecar's own, unless the peer is a trusted proxy that says otherwise in
 * one X-Forwarded-Proto of "http" or "https" (it terminated TLS). Anyone else's claim is ignored.
 */
export function clientProto(peer: string, rawHeaders: readonly string[], trusted: TrustedProxies, own: "http" | "https"): "http" | "https" {
  if (!trusted.has(normalizeAddress(peer))) return own;
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === "x-forwarded-proto") values.push(rawHeaders[i + 1]!.trim().toLowerCase());
  return values.length === 1 && (values[0] === "http" || values[0] === "https") ? values[0] : own;
}

/** All values of X-Forwarded-For as sent (exact header name only: never the underscore spelling). */
export function forwardedForValues(rawHeaders: readonly string[]): string[] {
  const values: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === "x-forwarded-for") values.push(rawHeaders[i + 1]!);
  return values;
}
