// A real OpenID provider for tests: the npm `oidc-provider` (OpenID Certified), in this process, on
// 127.0.0.1 behind an HTTPS front of the harness's own CA (as a TLS-terminating proxy would put it; the
// front can also play a network attacker who swaps or rewrites the token response). Accounts, emails and
// groups are the test's; people log in through the provider's own login form (its dev interactions),
// driven by `authorize()` below or by a browser. Consent is granted automatically (a first-party client).
import { randomBytes } from "node:crypto";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair } from "jose";
import Provider, { type Configuration } from "oidc-provider";
import { Agent, fetch as undiciFetch } from "undici";
import { freePort } from "../../dev/control-plane.ts";
import { createCa, issueCert, type Ca } from "../../dev/pki.ts";

export interface TestAccount {
  email?: string | undefined;
  email_verified?: boolean | string | undefined;
  preferred_username?: string;
  name?: string;
  groups?: unknown;
  [claim: string]: unknown;
}

export interface TestClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

export interface TestProvider {
  readonly issuer: string;
  readonly ca: Ca;
  /** Accounts by login name (what the login form takes); edit them between logins. */
  readonly accounts: Map<string, TestAccount>;
  /** Seconds an ID token lives (1 with a slow network makes one expire on the way). */
  idTokenTtl: number;
  /** The next token response passes through this (the attacker on the network). */
  tamperNextToken(change: (body: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>, delayMs?: number): void;
  /** Token responses seen, newest last (their ID tokens, for replay by a test). */
  readonly tokenResponses: Record<string, unknown>[];
  /** The front stops answering (connections refused) or starts again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** A fetch that trusts the harness CA, for driving the provider outside a browser. */
export function caFetch(ca: Ca): typeof fetch {
  const dispatcher = new Agent({ connect: { ca: ca.certPem } });
  return ((url: string | URL, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch;
}

export async function startProvider(options: {
  clients: TestClient[];
  accounts?: Record<string, TestAccount>;
  ca?: Ca;
  /** The issuer's host name (default 127.0.0.1; "localhost" puts the provider on another site than a 127.0.0.1 client). */
  host?: "127.0.0.1" | "localhost";
}): Promise<TestProvider> {
  const ca = options.ca ?? (await createCa("oidc-test-ca"));
  const cert = await issueCert(ca, { commonName: "127.0.0.1", ips: ["127.0.0.1"], dnsNames: ["localhost"], usage: "server" });
  const frontPort = await freePort();
  const issuer = `https://${options.host ?? "127.0.0.1"}:${frontPort}`;
  const accounts = new Map(Object.entries(options.accounts ?? {}));
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), kid: `k-${randomBytes(4).toString("hex")}`, use: "sig", alg: "RS256" };
  let idTokenTtl = 3600;

  const configuration: Configuration = {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      client_secret: c.clientSecret,
      redirect_uris: c.redirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    })),
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["preferred_username", "name", "groups", "realm_access", "department", "padding"] },
    findAccount: (_ctx, id) => {
      const account = accounts.get(id);
      if (!account) return undefined;
      return { accountId: id, claims: () => ({ sub: id, ...account }) };
    },
    // A first-party client: the person is not asked to consent.
    loadExistingGrant: async (ctx) => {
      const accountId = ctx.oidc.session?.accountId;
      const clientId = ctx.oidc.client?.clientId;
      if (!accountId || !clientId) return undefined;
      const grant = new ctx.oidc.provider.Grant({ accountId, clientId });
      grant.addOIDCScope(String(ctx.oidc.params?.scope ?? "openid"));
      await grant.save();
      return grant;
    },
    pkce: { required: () => true },
    ttl: { IdToken: () => idTokenTtl, AccessToken: 600, AuthorizationCode: 60, Session: 3600, Interaction: 600, Grant: 3600 },
    features: { devInteractions: { enabled: true } },
    renderError: (ctx, out) => {
      ctx.type = "html";
      ctx.body = `<p>${String(out.error)}</p>`;
    },
  };
  const provider = new Provider(issuer, configuration);
  provider.proxy = true;
  const inner: Server = provider.listen(0, "127.0.0.1");
  await new Promise<void>((resolve) => inner.once("listening", () => resolve()));
  const innerPort = (inner.address() as AddressInfo).port;

  const tokenResponses: Record<string, unknown>[] = [];
  let tamper: { change: (body: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>; delayMs: number } | undefined;

  const front: HttpsServer = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const headers = { ...req.headers, "x-forwarded-proto": "https", "x-forwarded-host": new URL(issuer).host };
    const upstream = httpRequest({ host: "127.0.0.1", port: innerPort, method: req.method, path: req.url, headers }, (answer) => {
      const isToken = req.method === "POST" && (req.url ?? "").startsWith("/token");
      if (!isToken) {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        return;
      }
      const chunks: Buffer[] = [];
      answer.on("data", (c: Buffer) => chunks.push(c));
      answer.on("end", () => {
        void (async () => {
          let text = Buffer.concat(chunks).toString("utf8");
          const current = tamper;
          tamper = undefined;
          try {
            const body = JSON.parse(text) as Record<string, unknown>;
            tokenResponses.push(body);
            if (current) {
              text = JSON.stringify(await current.change(body));
              if (current.delayMs) await new Promise((r) => setTimeout(r, current.delayMs));
            }
          } catch {
            // not JSON: passed as it is
          }
          const out = { ...answer.headers, "content-length": String(Buffer.byteLength(text)) };
          delete out["transfer-encoding"];
          res.writeHead(answer.statusCode ?? 502, out);
          res.end(text);
        })();
      });
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  const listen = () => new Promise<void>((resolve) => front.listen(frontPort, "127.0.0.1", () => resolve()));
  await listen();

  return {
    issuer,
    ca,
    accounts,
    get idTokenTtl() {
      return idTokenTtl;
    },
    set idTokenTtl(value: number) {
      idTokenTtl = value;
    },
    tamperNextToken: (change, delayMs = 0) => {
      tamper = { change, delayMs };
    },
    tokenResponses,
    down: () =>
      new Promise<void>((resolve) => {
        front.close(() => resolve());
        front.closeAllConnections();
      }),
    up: listen,
    stop: async () => {
      await new Promise<void>((resolve) => {
        front.close(() => resolve());
        front.closeAllConnections();
      });
      await new Promise<void>((resolve) => {
        inner.close(() => resolve());
        inner.closeAllConnections();
      });
    },
  };
}

/**
 * A loopback port held by a placeholder listener until release(): the provider's redirect URIs name the
 * sidecar's port before the sidecar listens, and no other process on the machine takes it meanwhile.
 */
export async function reservePort(): Promise<{ port: number; release(): Promise<void> }> {
  const holder = createServer((_req, res) => res.writeHead(503).end());
  await new Promise<void>((resolve, reject) => {
    holder.once("error", reject);
    holder.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (holder.address() as AddressInfo).port;
  return {
    port,
    release: () =>
      new Promise<void>((resolve) => {
        holder.close(() => resolve());
        holder.closeAllConnections();
      }),
  };
}

// ------------------------------------------------------------------------------------------------
// A browser-less person: a cookie jar per origin, redirects followed by hand.

export class Browser {
  readonly #jar = new Map<string, Map<string, string>>();
  readonly #fetch: typeof fetch;

  constructor(ca: Ca) {
    this.#fetch = caFetch(ca);
  }

  cookies(origin: string): Map<string, string> {
    let jar = this.#jar.get(origin);
    if (!jar) this.#jar.set(origin, (jar = new Map()));
    return jar;
  }

  async get(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; location?: string; text: string; headers: Headers }> {
    const target = new URL(url);
    const jar = this.cookies(target.origin);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const response = await this.#fetch(url, { method: init.method ?? "GET", redirect: "manual", headers: { ...(cookie ? { cookie } : {}), ...init.headers }, ...(init.body !== undefined ? { body: init.body } : {}) });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0/i.test(line) || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    const location = response.headers.get("location");
    return { status: response.status, ...(location ? { location: new URL(location, url).href } : {}), text: await response.text(), headers: response.headers };
  }
}

/**
 * Logs `login` in at the provider: from an authorization URL through the login form to the redirect back
 * to the client; returns that URL (code and state), not followed.
 */
export async function authorize(browser: Browser, authorizationUrl: string, login: string, redirectPrefix: string): Promise<string> {
  let url = authorizationUrl;
  for (let step = 0; step < 12; step++) {
    if (url.startsWith(redirectPrefix)) return url;
    const page = await browser.get(url);
    if (page.location) {
      url = page.location;
      continue;
    }
    const action = /<form[^>]*action="([^"]+)"/.exec(page.text)?.[1];
    if (page.status !== 200 || !action) throw new Error(`the provider answered ${page.status} at ${new URL(url).pathname}: ${page.text.slice(0, 200)}`);
    const form = new URLSearchParams({ prompt: "login", login, password: "any-password" });
    const posted = await browser.get(new URL(action.replaceAll("&amp;", "&"), url).href, { method: "POST", body: form.toString(), headers: { "content-type": "application/x-www-form-urlencoded" } });
    if (!posted.location) throw new Error(`the login form answered ${posted.status}`);
    url = posted.location;
  }
  throw new Error("too many redirects at the provider");
}
