// The sidecar's HTTP(S) server: listeners, TLS, health and metrics endpoints, graceful stop, and per
// request the decision (admission.ts), then the sidecar's own answer (auth API, webhook trigger) or the
// proxy to Dagu. Every decision gets one audit line and is counted.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { prepareDummyHash } from "../common/password-hash.ts";
import { admit, authorize, MCP_ROUTE, type Admission, type Facts } from "./routes/admission.ts";
import { handlerProblems } from "./routes/handlers.ts";
import { AuthApi } from "./answers/auth-api.ts";
import { audit, auditLogger, type AuditEntry } from "./telemetry/audit-log.ts";
import type { ApiKeySurface } from "./auth/api-key-auth.ts";
import { Authenticator, type AuthResult, type Principal } from "./auth/authenticators.ts";
import { CHECK_INTERVAL_MS, OpenStreams } from "./auth/open-streams.ts";
import { SsoLogin, ssoBasePath, ssoRouteOf } from "./auth/oidc/sso-login.ts";
import type { CredentialSource } from "./credentials/credential-source.ts";
import { ConnectionLimiter, ConnectionTracker } from "./listener/connections.ts";
import { CredentialStore, type CredentialSnapshot } from "./credentials/credential-store.ts";
import { DAGU_API_VERSIONS, daguApiProfile, detectDaguApi, type DaguApiProfile, type DaguApiVersion } from "./routes/dagu-api.ts";
import { clientAddress, clientProto, connectionTokens, forwardedForValues, forwardRequestHeaders, TrustedProxies } from "./proxy/headers.ts";
import { ByteBudget, discardBody, HttpError, parseJsonBody, readBody, sendError, sendJson, type UnauthenticatedRead } from "./answers/http-io.ts";
import { LoginThrottle } from "./auth/login-throttle.ts";
import type { ThrottlePeers } from "./auth/throttle-peers.ts";
import { SidecarMetrics, type Decision } from "./telemetry/metrics.ts";
import { bodyRole } from "./routes/mcp.ts";
import { isWebSocketUpgrade, proxyHttp, proxyUpgrade } from "./proxy/proxy.ts";
import { queryParam, withoutParam } from "./proxy/query.ts";
import { roleAtLeast, type Role } from "./routes/roles.ts";
import type { DaguRoute } from "../dagu/routes.ts";
import type { TlsProvider, TlsWatcher } from "./listener/tls.ts";
import type { UiRewrite } from "./ui/config-rewrite.ts";
import { Upstream } from "./proxy/upstream.ts";
import { WebhookTrigger } from "./answers/webhook-trigger.ts";

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface SidecarOptions {
  readonly upstream: string;
  readonly listen: HostPort;
  /** /metrics (with /healthz and /readyz) on their own address; never on `listen`. Undefined: no metrics listener. */
  readonly metricsListen?: HostPort;
  /** Skip detection: "v1" = Dagu 2.x (/api/v1), "v2" = Dagu 1.x (/api/v2). */
  readonly daguApi?: DaguApiVersion;
  /** Dagu's base path (its `basePath`; "" or absent: the root): API, UI and detection live below it. */
  readonly daguBasePath?: string;
  readonly source: CredentialSource;
  readonly tls?: TlsProvider;
  readonly maxHeaderBytes?: number;
  readonly maxBodyBytes?: number;
  /** A request's head must arrive within this (408); so must a body read before the caller is known. */
  readonly headersTimeoutSeconds?: number;
  /** A whole request, body included, must arrive within this (408). */
  readonly requestTimeoutSeconds?: number;
  readonly maxConnections?: number;
  readonly maxConnectionsPerClient?: number;
  /** Bytes of bodies read before the caller is known (login, signed webhooks), all requests together. */
  readonly maxUnauthenticatedBodyBytes?: number;
  readonly logger: Logger;
  /** The other replicas of the same DaguAuth, with which login throttling is shared (Kubernetes mode). */
  readonly throttlePeers?: ThrottlePeers;
}

export const DEFAULTS = {
  metricsListen: { host: "127.0.0.1", port: 9090 },
  maxHeaderBytes: 16 * 1024,
  maxBodyBytes: 10 * 1024 * 1024,
  // Node's own defaults are 60 s for the head and 300 s for the whole request: a slowloris client holds
  // a socket that long for a few bytes.
  headersTimeoutSeconds: 10,
  requestTimeoutSeconds: 60,
  // Far above what a Dagu UI needs (a browser opens ~6 per origin) and below the usual 64k file limit.
  maxConnections: 10_000,
  maxConnectionsPerClient: 512,
  maxUnauthenticatedBodyBytes: 16 * 1024 * 1024,
} as const;

export class Sidecar {
  readonly store: CredentialStore;
  readonly metrics: SidecarMetrics;
  readonly upstream: Upstream;
  readonly #options: SidecarOptions;
  readonly #log: Logger;
  readonly #auditLog: Logger;
  readonly #throttle: LoginThrottle;
  readonly #auth: Authenticator;
  readonly #authApi: AuthApi;
  readonly #webhooks: WebhookTrigger;
  readonly #sso: SsoLogin;
  readonly #trusted = new WeakMap<CredentialSnapshot, TrustedProxies>();
  #profile: DaguApiProfile | undefined;
  #server: Server | undefined;
  #metricsServer: Server | undefined;
  #tlsWatcher: TlsWatcher | undefined;
  #detecting: NodeJS.Timeout | undefined;
  #stopping = false;
  /** Streams open now, checked again when credentials change and every CHECK_INTERVAL_MS (auth/open-streams.ts). */
  readonly #streams: OpenStreams;
  readonly #streamChecks: NodeJS.Timeout;
  readonly #connections = new ConnectionTracker();
  readonly #limiter: ConnectionLimiter;
  readonly #unauthenticated: UnauthenticatedRead;

  constructor(options: SidecarOptions) {
    this.#options = options;
    this.#log = options.logger;
    this.#auditLog = auditLogger(options.logger);
    this.upstream = new Upstream({ url: options.upstream });
    this.store = new CredentialStore(options.source);
    this.metrics = new SidecarMetrics(this.store, {
      openConnections: () => ({ open: this.#limiter.open, peak: this.#limiter.peak }),
      cacheEntries: () => ({ jwt: this.#auth.jwt.size, basic: this.#auth.basic.size, basic_in_flight: this.#auth.basicInFlight, login_throttle: this.#throttle.size }),
    });
    // Replaced by the credentials' own settings as soon as they load.
    this.#throttle = new LoginThrottle({ maxAttempts: 5, windowSeconds: 900, lockoutSeconds: 900 }, {
      observe: (outcome) => this.metrics.loginThrottle.inc({ outcome }),
      ...(options.throttlePeers ? { peers: options.throttlePeers } : {}),
    });
    this.#unauthenticated = {
      budget: new ByteBudget(options.maxUnauthenticatedBodyBytes ?? DEFAULTS.maxUnauthenticatedBodyBytes),
      timeoutMs: (options.headersTimeoutSeconds ?? DEFAULTS.headersTimeoutSeconds) * 1000,
    };
    this.#limiter = new ConnectionLimiter({
      maxTotal: options.maxConnections ?? DEFAULTS.maxConnections,
      maxPerAddress: options.maxConnectionsPerClient ?? DEFAULTS.maxConnectionsPerClient,
      exempt: (address) => {
        const snapshot = this.store.snapshot();
        return snapshot !== undefined && this.#trustedProxies(snapshot).has(address);
      },
      refused: (reason) => this.metrics.connectionsRefused.inc({ reason }),
    });
    this.#auth = new Authenticator(this.#throttle);
    this.#streams = new OpenStreams(
      (snapshot, request) => this.#auth.authenticate(snapshot, request),
      (reason) => {
        this.metrics.streamsEnded.inc({ reason });
        this.#log.info({ reason }, "stream ended: its credential no longer holds");
      },
    );
    this.#streamChecks = setInterval(() => void this.#streams.check(this.store.snapshot()), CHECK_INTERVAL_MS).unref();
    this.#authApi = new AuthApi({ store: this.store, throttle: this.#throttle, profile: () => this.#profile!, dagExists: (name) => this.#dagExists(name), unauthenticated: this.#unauthenticated });
    // Every route of both tables has its handler, or the sidecar does not start.
    const problems = DAGU_API_VERSIONS.flatMap((version) => handlerProblems(daguApiProfile(version).routes, this.#authApi));
    if (problems.length > 0) throw new Error(`the route table names handlers the sidecar lacks: ${problems.join("; ")}`);
    this.#webhooks = new WebhookTrigger(this.upstream, () => this.#profile!, this.#unauthenticated);
    this.#sso = new SsoLogin(this.store, options.logger);
    if (options.daguApi) this.#profile = daguApiProfile(options.daguApi, options.daguBasePath ?? "");

    this.store.on("loaded", (snapshot) => {
      this.#auth.credentialsChanged(snapshot);
      this.#throttle.configure(snapshot.credentials.login);
      this.#sso.credentialsChanged(snapshot);
      const clientUrl = snapshot.credentials.oidc?.clientUrl;
      if (clientUrl !== undefined && !this.#ssoAgrees(clientUrl)) {
        this.#log.error({ clientUrlPath: ssoBasePath(clientUrl) || "/", daguBasePath: options.daguBasePath }, "single sign-on is off: the OIDC client URL's path must be Dagu's base path (--dagu-base-path)");
      }
      void this.#streams.check(snapshot);
      this.#log.info(
        { source: options.source.description, generation: snapshot.credentials.generation, mode: snapshot.credentials.mode, users: snapshot.credentials.users.length, apiKeys: snapshot.credentials.apiKeys.length, webhooks: snapshot.credentials.webhooks.length },
        "credentials loaded",
      );
    });
    this.store.on("rejected", (error) => {
      this.#log.error({ source: options.source.description, error: error.message, keeping: this.store.snapshot()?.credentials.generation ?? null }, "credentials refused; keeping the last good ones");
    });
  }

  /** Ready: credentials in force, the last document valid, and Dagu's API known. */
  ready(): boolean {
    return this.store.ready() && this.#profile !== undefined;
  }

  get profile(): DaguApiProfile | undefined {
    return this.#profile;
  }

  address(): AddressInfo {
    return this.#server!.address() as AddressInfo;
  }

  metricsAddress(): AddressInfo | undefined {
    return this.#metricsServer?.address() as AddressInfo | undefined;
  }

  async start(): Promise<void> {
    // The dummy hash now, not on the first unknown-user login (which would then cost two hashes).
    await Promise.all([this.store.start(), prepareDummyHash()]);
    if (!this.store.snapshot()) this.#log.error({ source: this.#options.source.description, error: this.store.lastError() }, "no credentials loaded: every request is refused with 503 until valid ones arrive");
    const headersTimeout = (this.#options.headersTimeoutSeconds ?? DEFAULTS.headersTimeoutSeconds) * 1000;
    const serverOptions = {
      maxHeaderSize: this.#options.maxHeaderBytes ?? DEFAULTS.maxHeaderBytes,
      requireHostHeader: true,
      headersTimeout,
      requestTimeout: (this.#options.requestTimeoutSeconds ?? DEFAULTS.requestTimeoutSeconds) * 1000,
      // Node checks both timeouts only this often (30 s by default, which would add up to 30 s to each).
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
      keepAliveTimeout: 30_000,
    };
    if (this.#options.tls) {
      const tls = this.#options.tls;
      // A client that never finishes its TLS handshake gets no longer than one that never finishes its head
      // (Node's own handshake timeout is 120 s).
      const https = createHttpsServer({ ...serverOptions, handshakeTimeout: headersTimeout, ...(await tls.load()) });
      this.#tlsWatcher = tls.watch(
        (secure) => {
          https.setSecureContext(secure);
          this.#log.info({ cert: tls.description }, "TLS certificate reloaded");
        },
        (error) => this.#log.error({ cert: tls.description, error: error.message }, "TLS certificate not reloaded; keeping the previous one"),
      );
      this.#server = https;
    } else {
      this.#server = createHttpServer(serverOptions);
    }
    const server = this.#server;
    this.#limiter.attach(server);
    this.#connections.attach(server, this.#options.tls ? "secureConnection" : "connection");
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      this.#connections.requestStarted(req, res);
      void this.#handle(req, res, false);
    });
    server.on("checkContinue", (req: IncomingMessage, res: ServerResponse) => {
      this.#connections.requestStarted(req, res);
      void this.#handle(req, res, true);
    });
    server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#connections.upgraded(req);
      void this.#handleUpgrade(req, socket, head);
    });
    server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) => this.#clientError(error, socket));
    await listen(server, this.#options.listen);

    if (this.#options.metricsListen) {
      const at = this.#options.metricsListen;
      this.#metricsServer = createHttpServer((req, res) => void this.#ownEndpoint(req, res, true));
      await listen(this.#metricsServer, at).catch((error: Error) => {
        server.close();
        throw new Error(`cannot serve metrics on ${at.host}:${at.port} (${error.message}): choose another --metrics-listen HOST:PORT, or off`);
      });
    }
    if (!this.#profile) this.#detect(0);
    this.#log.info(
      { listen: this.address(), tls: Boolean(this.#options.tls), upstream: this.upstream.origin, daguApi: this.#profile?.version ?? "detecting", metrics: this.metricsAddress() ?? "off" },
      "sidecar listening",
    );
  }

  /** Stops accepting, lets requests in flight finish (up to `graceMs`), then closes everything. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#detecting);
    clearInterval(this.#streamChecks);
    this.#tlsWatcher?.close();
    const servers = [this.#server, this.#metricsServer].filter((s): s is Server => s !== undefined);
    const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    // Connections go idle as their last response ends (an SSE stream, a long log): close them then.
    const closeIdle = () => {
      for (const s of servers) s.closeIdleConnections();
      this.#connections.closeIdle();
    };
    const sweep = setInterval(closeIdle, 50);
    closeIdle();
    const timer = setTimeout(() => {
      servers.forEach((s) => s.closeAllConnections());
      this.#limiter.closeAll();
    }, graceMs);
    await closed;
    clearInterval(sweep);
    clearTimeout(timer);
    this.#log.debug("listeners closed");
    await this.store.stop();
    await this.#sso.close();
    await this.upstream.close();
    this.#log.debug("credential source and upstream pool closed");
  }

  #detect(attempt: number): void {
    const basePath = this.#options.daguBasePath ?? "";
    void detectDaguApi((path) => this.upstream.probe(path), basePath).then(
      (version) => {
        if (this.#stopping) return;
        this.#profile = daguApiProfile(version, basePath);
        this.#log.info({ daguApi: version, prefix: this.#profile.prefix, daguMajor: this.#profile.daguMajor }, "Dagu API detected");
      },
      (error: Error) => {
        if (this.#stopping) return;
        if (attempt % 10 === 0) this.#log.warn({ upstream: this.upstream.origin, error: error.message }, "Dagu API not detected yet; retrying");
        this.#detecting = setTimeout(() => this.#detect(attempt + 1), Math.min(250 * 2 ** attempt, 5_000));
        this.#detecting.unref();
      },
    );
  }

  /** Whether the client URL's path is the declared base path (always, without one: ADR 0018 follows the client URL). */
  #ssoAgrees(clientUrl: string): boolean {
    const base = this.#options.daguBasePath ?? "";
    return base === "" || ssoBasePath(clientUrl) === base;
  }

  /** The scheme the client used (a trusted proxy in front may have terminated TLS). */
  #proto(req: IncomingMessage): "http" | "https" {
    const own = this.#options.tls ? "https" : "http";
    const snapshot = this.store.snapshot();
    return snapshot ? clientProto(req.socket.remoteAddress ?? "", req.rawHeaders, this.#trustedProxies(snapshot), own) : own;
  }

  #trustedProxies(snapshot: CredentialSnapshot): TrustedProxies {
    let trusted = this.#trusted.get(snapshot);
    if (!trusted) {
      trusted = new TrustedProxies(snapshot.credentials.trustedProxies);
      this.#trusted.set(snapshot, trusted);
    }
    return trusted;
  }

  /** /healthz, /readyz, and on the metrics address only, /metrics. */
  async #ownEndpoint(req: IncomingMessage, res: ServerResponse, metricsServer: boolean): Promise<boolean> {
    const path = (req.url ?? "").split("?")[0];
    if (req.method !== "GET") {
      if (metricsServer) sendError(res, 404, "not_found", "not found");
      return metricsServer;
    }
    if (path === "/healthz") {
      sendJson(res, 200, { status: "ok" });
      return true;
    }
    if (path === "/readyz") {
      const ready = this.ready();
      const why = ready ? undefined : !this.store.snapshot() ? "no credentials loaded" : !this.store.ready() ? "latest credentials document is invalid" : "Dagu API not detected yet";
      const staleSince = this.store.source.staleSince?.();
      const stale = staleSince === undefined ? {} : { stale: { reason: "credentials source unreachable; enforcing the last good credentials", sinceSeconds: Math.round((Date.now() - staleSince) / 1000) } };
      sendJson(res, ready ? 200 : 503, ready ? { status: "ready", ...stale } : { status: "not ready", reason: why, ...stale });
      return true;
    }
    // Dagu's own health, asked directly (only here: the metrics address is not the one users reach).
    // Injected pods probe Dagu's container through it, so Dagu is judged by Dagu's answer alone.
    if (path === "/dagu/healthz" && metricsServer) {
      const answer = this.#profile ? await this.upstream.probe(`${this.#profile.prefix}/health`) : undefined;
      const ok = answer?.status === 200;
      sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "unavailable", ...(answer ? { daguStatus: answer.status } : { reason: this.#profile ? "Dagu does not answer" : "Dagu API not detected yet" }) });
      return true;
    }
    // Never on the main listener: request counts by role and the credentials' age are nobody else's business.
    if (path === "/metrics" && metricsServer) {
      const body = await this.metrics.registry.metrics();
      res.writeHead(200, { "Content-Type": this.metrics.registry.contentType, "Content-Length": Buffer.byteLength(body) });
      res.end(body);
      return true;
    }
    if (metricsServer) sendError(res, 404, "not_found", "not found");
    return metricsServer;
  }

  async #handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    const started = performance.now();
    const facts: Facts = { decision: "error", status: 500, path: "" };
    let client = req.socket.remoteAddress ?? "";
    try {
      if (await this.#ownEndpoint(req, res, false)) {
        facts.decision = "local";
        facts.status = res.statusCode;
        return;
      }
      // Dagu's SSO routes (outside the API), answered here when the credentials configure OIDC.
      const ssoSnapshot = this.store.snapshot();
      const clientUrl = ssoSnapshot?.credentials.oidc?.clientUrl;
      // Under a declared base path, SSO is served only where the client URL agrees with it (ADR 0020).
      const sso = clientUrl !== undefined && !this.#ssoAgrees(clientUrl) ? undefined : ssoRouteOf(req.url ?? "", clientUrl);
      if (sso && ssoSnapshot) {
        client = clientAddress(client, forwardedForValues(req.rawHeaders), this.#trustedProxies(ssoSnapshot));
        facts.path = `/oidc-${sso}`;
        if (!expectsContinue) await this.#settleBody(req, res);
        const outcome = await this.#sso.handle(sso, req, res, ssoSnapshot);
        Object.assign(facts, { decision: outcome.decision, status: outcome.status, reason: outcome.reason, operation: `sso_${sso}` });
        if (outcome.user) facts.user = outcome.user;
        if (outcome.role) facts.role = outcome.role;
        return;
      }
      const admission = await this.#admit(req, facts);
      client = admission.client;
      const verdict = admission.verdict;
      if (verdict.kind === "refuse") {
        facts.decision = verdict.decision;
        facts.status = verdict.status;
        // After "Expect: 100-continue" the client waits for us and sends no body: answer at once.
        if (!expectsContinue) await this.#settleBody(req, res);
        sendError(res, verdict.status, verdict.code, verdict.message, { ...verdict.headers });
        return;
      }
      if (expectsContinue) {
        res.writeContinue();
        expectsContinue = false; // the body comes now
      }
      if (verdict.kind === "ui") {
        facts.decision = "allow";
        // Dagu's UI shows its first-run setup page while a standalone sidecar has no user at all.
        const management = verdict.snapshot.credentials.mode === "builtin" ? this.store.source.management?.() : undefined;
        const setupRequired = management?.setupRequired() ?? false;
        const oidc = verdict.snapshot.credentials.oidc;
        facts.status = await this.#forward(req, res, undefined, verdict.path, verdict.query, client, {
          authMode: verdict.snapshot.credentials.mode,
          setupRequired,
          // Without a management API here, users, keys and webhooks are resources in the cluster.
          managedInCluster: verdict.snapshot.credentials.mode === "builtin" && management === undefined,
          ...(oidc ? { oidcButtonLabel: oidc.buttonLabel } : {}),
        });
        return;
      }
      if (verdict.kind === "mcp") {
        facts.status = await this.#mcp(req, res, verdict.principal, verdict.path, verdict.query, client, facts);
        return;
      }
      if (verdict.kind !== "route") throw new Error(`admission left the request undecided (${verdict.kind})`);
      const { route, params, snapshot, principal } = verdict;
      if (route.handler === "webhook") {
        const outcome = await this.#webhooks.handle({ req, res, fileName: params.fileName ?? "", snapshot, clientAddress: client });
        if (outcome.observed) this.metrics.webhookHmacObserved.inc({ result: outcome.observed });
        if (outcome.observed && outcome.observed !== "valid") this.#log.warn({ webhook: params.fileName, signature: outcome.observed }, "webhook signature not valid (observe mode: allowed)");
        facts.reason = outcome.detail;
        facts.decision = res.statusCode < 400 ? "local" : "deny";
        facts.status = res.statusCode;
        return;
      }
      if (route.handler === "auth-api" || route.handler === "managed") {
        const outcome = await this.#authApi.handle({ req, res, operationId: route.operationId, ...(route.managedBy ? { managedBy: route.managedBy } : {}), params, snapshot, principal, clientAddress: client });
        if (outcome.subject && !facts.user) facts.user = outcome.subject;
        facts.reason = outcome.detail;
        facts.decision = res.statusCode === 429 ? "throttled" : res.statusCode < 400 ? "local" : "deny";
        facts.status = res.statusCode;
        return;
      }
      facts.decision = "allow";
      const stream = route.streaming === "sse" ? { minRole: route.minRole, surface: "rest_api" as const } : undefined;
      this.metrics.decisionSeconds.observe((performance.now() - started) / 1000);
      facts.status = await this.#forward(req, res, route, verdict.path, verdict.query, client, undefined, undefined, stream);
    } catch (error) {
      const known = error instanceof HttpError ? error : undefined;
      facts.status = known?.status ?? 500;
      facts.decision = facts.status === 503 ? "unavailable" : facts.status >= 500 ? "error" : facts.status === 429 ? "throttled" : "bad_request";
      facts.reason = known?.code ?? "internal_error";
      // A full budget (503) is load, not a fault: the audit line says it.
      if (facts.status >= 500 && facts.status !== 503) this.#log.error({ path: facts.path, error: (error as Error).message }, known ? "request failed" : "unexpected error");
      if (res.headersSent) res.destroy();
      else {
        // Still waiting for our "100 Continue", the client sends no body: answer at once.
        if (!expectsContinue) await this.#settleBody(req, res);
        sendError(res, facts.status, known?.code ?? "internal_error", known?.message ?? "An unexpected error occurred", { ...known?.headers });
      }
    } finally {
      this.#finish(req, facts, client, started);
    }
  }

  /** The admission decision (routes/admission.ts), authenticating in between when the route needs it; its facts go into `facts`. */
  async #admit(req: IncomingMessage, facts: Facts): Promise<Admission> {
    const admission = admit(req, { snapshot: this.store.snapshot(), profile: this.#profile, trustedProxies: (snapshot) => this.#trustedProxies(snapshot) });
    Object.assign(facts, admission.facts);
    if (admission.verdict.kind !== "authenticate") return admission;
    const { snapshot, route, query } = admission.verdict;
    const decided = authorize(req, { ...admission, verdict: admission.verdict }, await this.#authenticate(req, snapshot, route, query, admission.client));
    Object.assign(facts, decided.facts);
    return decided;
  }

  /** Before refusing a request, reads what is left of its body (bounded); past the budget, closes after the answer. */
  async #settleBody(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!(await discardBody(req))) res.setHeader("Connection", "close");
  }

  /**
   * Dagu 2's MCP endpoint: the stream (GET) and the session's end (DELETE) need viewer; a POST's JSON-RPC
   * messages are read whole (bounded) and need the least role of what they do (routes/mcp.ts), then go to Dagu as read.
   */
  async #mcp(req: IncomingMessage, res: ServerResponse, principal: Principal, path: string, query: string | undefined, client: string, facts: Facts): Promise<number> {
    if (req.method === "GET" || req.method === "DELETE") {
      facts.decision = "allow";
      return this.#forward(req, res, undefined, path, query, client, undefined, undefined, req.method === "GET" ? { minRole: "viewer", surface: "mcp" } : undefined);
    }
    if (req.method !== "POST") throw new HttpError(405, "bad_request", "MCP takes POST, GET and DELETE", { Allow: "POST, GET, DELETE" });
    const body = await readBody(req, this.#options.maxBodyBytes ?? DEFAULTS.maxBodyBytes);
    const need = bodyRole(parseJsonBody(body));
    if ("error" in need) throw new HttpError(400, "bad_request", `MCP: ${need.error}`);
    facts.operation = `mcp:${need.what}`;
    if (!roleAtLeast(principal.role, need.role)) {
      facts.decision = "deny";
      facts.reason = `needs_${need.role}`;
      sendError(res, 403, "forbidden", "Insufficient permissions");
      return 403;
    }
    facts.decision = "allow";
    return this.#forward(req, res, undefined, path, query, client, undefined, body);
  }

  /** Whether Dagu has the DAG (its own answer for it); undefined when it cannot tell. */
  async #dagExists(fileName: string): Promise<boolean | undefined> {
    const profile = this.#profile;
    if (!profile) return undefined;
    const answer = await this.upstream.probe(`${profile.prefix}/dags/${encodeURIComponent(fileName)}`);
    return answer?.status === 200 ? true : answer?.status === 404 ? false : undefined;
  }

  async #authenticate(req: IncomingMessage, snapshot: CredentialSnapshot, route: DaguRoute, query: string | undefined, client: string): Promise<AuthResult> {
    const t0 = performance.now();
    const auth = await this.#auth.authenticate(snapshot, {
      authorization: req.headers.authorization,
      queryToken: route.streaming ? queryParam(query, "token") : undefined,
      clientAddress: client,
      surface: route === MCP_ROUTE ? "mcp" : "rest_api",
    });
    this.metrics.authSeconds.observe({ method: auth.method ?? "none", result: auth.ok ? "ok" : "refused" }, (performance.now() - t0) / 1000);
    return auth;
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    route: DaguRoute | undefined,
    path: string,
    query: string | undefined,
    client: string,
    ui: UiRewrite | undefined,
    /** The request's body when it was already read (MCP); otherwise it is streamed. */
    body?: Buffer,
    /** Set for a stream: it is kept (auth/open-streams.ts) and ended when its credential no longer holds. */
    stream?: { readonly minRole: Role; readonly surface: ApiKeySurface },
  ): Promise<number> {
    const forwardedQuery = route?.streaming ? withoutParam(query, "token") : query;
    const headers = forwardRequestHeaders(req.rawHeaders, {
      clientAddress: client,
      proto: this.#proto(req),
      host: req.headers.host,
      connectionTokens: connectionTokens(req.rawHeaders),
    });
    const t0 = performance.now();
    const forget = stream
      ? this.#streams.add({
          credential: { authorization: req.headers.authorization, queryToken: route?.streaming ? queryParam(query, "token") : undefined, clientAddress: client, surface: stream.surface },
          minRole: stream.minRole,
          end: () => res.destroy(),
        })
      : undefined;
    return proxyHttp(this.upstream, {
      req,
      res,
      target: forwardedQuery === undefined ? path : `${path}?${forwardedQuery}`,
      headers,
      maxBodyBytes: this.#options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      ui,
      body,
      onUpstreamHeaders: (status) => this.metrics.upstreamSeconds.observe({ status_class: `${Math.floor(status / 100)}xx` }, (performance.now() - t0) / 1000),
    }).finally(forget);
  }

  async #handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Node's server drops its own listeners from an upgraded socket: without this one, a client that
    // resets during authentication would crash the process.
    socket.on("error", () => socket.destroy());
    const started = performance.now();
    const facts: Facts = { decision: "error", status: 500, path: "" };
    let client = req.socket.remoteAddress ?? "";
    const refuse = (status: number, decision: Decision, code: string, message: string, headers: Readonly<Record<string, string>> = {}) => {
      facts.status = status;
      facts.decision = decision;
      const body = JSON.stringify({ code, message });
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`);
      // Nothing more is read from this socket: once the answer is out, it is closed, not left half-open.
      socket.once("finish", () => socket.destroy());
    };
    try {
      const admission = await this.#admit(req, facts);
      client = admission.client;
      const verdict = admission.verdict;
      if (verdict.kind === "refuse") return refuse(verdict.status, verdict.decision, verdict.code, verdict.message, verdict.headers);
      // Node hands over any Upgrade (h2c, ...); only WebSocket is ever forwarded.
      if (!isWebSocketUpgrade(req.headers.upgrade)) {
        facts.reason = "not_websocket";
        return refuse(400, "bad_request", "bad_request", "only WebSocket upgrades are accepted (Upgrade: websocket)");
      }
      if (verdict.kind !== "route" || verdict.route.streaming !== "websocket") return refuse(404, "not_found", "not_found", "not a WebSocket route");
      const forwardedQuery = withoutParam(verdict.query, "token");
      const headers = forwardRequestHeaders(req.rawHeaders, { clientAddress: client, proto: this.#proto(req), host: req.headers.host, keepUpgrade: true });
      facts.decision = "allow";
      const forget = this.#streams.add({
        credential: { authorization: req.headers.authorization, queryToken: queryParam(verdict.query, "token"), clientAddress: client, surface: "rest_api" },
        minRole: verdict.route.minRole,
        end: () => socket.destroy(),
      });
      socket.once("close", forget);
      facts.status = await proxyUpgrade(this.upstream, req, socket, head, forwardedQuery === undefined ? verdict.path : `${verdict.path}?${forwardedQuery}`, headers);
    } catch (error) {
      const known = error instanceof HttpError ? error : undefined;
      facts.reason = known?.code ?? "internal_error";
      this.#log.error({ path: facts.path, error: (error as Error).message }, "upgrade failed");
      refuse(known?.status ?? 500, "error", known?.code ?? "internal_error", known?.message ?? "An unexpected error occurred");
    } finally {
      this.#finish(req, facts, client, started);
    }
  }

  #finish(req: IncomingMessage, decided: Facts, client: string, started: number): void {
    const entry: AuditEntry = {
      method: req.method ?? "",
      path: decided.path,
      decision: decided.decision,
      status: decided.status,
      client,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    };
    if (decided.operation) entry.operation = decided.operation;
    if (decided.user) entry.user = decided.user;
    if (decided.role) entry.role = decided.role;
    if (decided.authMethod) entry.authMethod = decided.authMethod;
    if (decided.reason) entry.reason = decided.reason;
    if (decided.decision !== "local" || decided.operation) audit(this.#auditLog, entry);
    this.metrics.requests.inc({ decision: decided.decision, role: decided.role ?? "none", status: String(decided.status) });
  }

  #clientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const status = error.code === "HPE_HEADER_OVERFLOW" ? 431 : error.code === "HPE_REQUEST_TIMEOUT" || error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
    this.metrics.requests.inc({ decision: "bad_request", role: "none", status: String(status) });
    this.#log.info({ audit: { decision: "bad_request", status, reason: error.code ?? "parse_error", client: socket.remoteAddress ?? "" } }, "decision");
    // Node's https server reports a failed or timed-out TLS handshake here too: nothing can be answered on
    // such a socket (bytes written before the handshake never leave), so it is closed at once.
    const tls = error.code?.startsWith("ERR_TLS") || error.code?.startsWith("ERR_SSL");
    if (socket.writable && error.code !== "ECONNRESET" && !tls) {
      // Closed once the answer is out, not half-closed: a client that never reads (slowloris) would
      // otherwise keep the socket, and its slot under the connection caps, for good. The timer covers an
      // answer that cannot be flushed.
      const force = setTimeout(() => socket.destroy(), 1_000);
      force.unref();
      socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Bad Request"}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, () => {
        clearTimeout(force);
        socket.destroy();
      });
    } else {
      socket.destroy();
    }
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
};

function listen(server: Server, address: HostPort): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
