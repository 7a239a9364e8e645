// Prometheus metrics of the sidecar, in a registry of its own (never the global one, so two sidecars in
// one process, as in tests, do not collide).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CredentialStore } from "../credentials/credential-store.ts";

export type Decision = "allow" | "deny" | "unauthenticated" | "throttled" | "not_found" | "bad_request" | "unavailable" | "error" | "local";

export class SidecarMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"decision" | "role" | "status">;
  readonly authSeconds: Histogram<"method" | "result">;
  readonly upstreamSeconds: Histogram<"status_class">;
  readonly decisionSeconds: Histogram;
  readonly reloads: Counter<"result">;
  readonly webhookHmacObserved: Counter<"result">;
  readonly connectionsRefused: Counter<"reason">;
  readonly loginThrottle: Counter<"outcome">;
  readonly streamsEnded: Counter<"reason">;

  constructor(store: CredentialStore, options: { defaultMetrics?: boolean; openConnections?: () => { open: number; peak: number }; cacheEntries?: () => Readonly<Record<string, number>> } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "dagu_auth_sidecar_" });
    this.requests = new Counter({
      name: "dagu_auth_requests_total",
      help: "Requests by the sidecar's decision, the caller's role (none when unauthenticated) and the HTTP status.",
      labelNames: ["decision", "role", "status"],
      registers,
    });
    this.authSeconds = new Histogram({
      name: "dagu_auth_authentication_seconds",
      help: "Time spent authenticating a request, by method (jwt, apikey, basic, login) and result.",
      labelNames: ["method", "result"],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.upstreamSeconds = new Histogram({
      name: "dagu_auth_upstream_seconds",
      help: "Time until Dagu's response headers arrive, by status class.",
      labelNames: ["status_class"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    // What the sidecar adds in front of Dagu, apart from the extra hop itself: its own latency on the path.
    this.decisionSeconds = new Histogram({
      name: "dagu_auth_decision_seconds",
      help: "Time from a request's arrival to its dispatch to Dagu (routing, authentication, and any pause of the process meanwhile, such as GC), for requests forwarded to Dagu's API.",
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25],
      registers,
    });
    this.reloads = new Counter({
      name: "dagu_auth_credential_reloads_total",
      help: "Credential documents seen, by result (loaded, rejected).",
      labelNames: ["result"],
      registers,
    });
    this.webhookHmacObserved = new Counter({
      name: "dagu_auth_webhook_hmac_observed_total",
      help: "Webhook signatures checked in observe mode (not enforced), by result.",
      labelNames: ["result"],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: "dagu_auth_connections_refused_total",
      help: "Client connections closed on arrival, by the cap they hit (total, per_client).",
      labelNames: ["reason"],
      registers,
    });
    this.streamsEnded = new Counter({
      name: "dagu_auth_streams_ended_total",
      help: "Open streams (SSE, MCP, WebSocket) the sidecar ended because their credential no longer holds, by reason.",
      labelNames: ["reason"],
      registers,
    });
    this.loginThrottle = new Counter({
      name: "dagu_auth_login_throttle_total",
      help: "Password checks held back by the login throttle, by outcome (locked: refused, the username and client pair is locked; slowed: refused, a client that failed on a username under attack is out of budget; delayed: waited before hashing).",
      labelNames: ["outcome"],
      registers,
    });
    const openConnections = options.openConnections;
    if (openConnections) {
      new Gauge({
        name: "dagu_auth_connections_open",
        help: "Client connections open on the main listener.",
        registers,
        collect() {
          this.set(openConnections().open);
        },
      });
      new Gauge({
        name: "dagu_auth_connections_open_max",
        help: "The most client connections open at once on the main listener since the sidecar started (for sizing --max-connections).",
        registers,
        collect() {
          this.set(openConnections().peak);
        },
      });
    }
    const cacheEntries = options.cacheEntries;
    if (cacheEntries) {
      // Memory that clients can make grow (distinct tokens, credentials, usernames): each map has a bound,
      // and this shows it holding under a flood.
      new Gauge({
        name: "dagu_auth_cache_entries",
        help: "Entries in the sidecar's in-memory maps fed by client input, by map (jwt: verified tokens, basic: verified Basic credentials, basic_in_flight: Basic checks running, login_throttle: throttle keys).",
        labelNames: ["cache"],
        registers,
        collect() {
          for (const [cache, n] of Object.entries(cacheEntries())) this.set({ cache }, n);
        },
      });
    }
    new Gauge({
      name: "dagu_auth_credentials_age_seconds",
      help: "Seconds since the credentials in force were loaded (absent before the first load).",
      registers,
      collect() {
        const snapshot = store.snapshot();
        this.reset();
        if (snapshot) this.set((Date.now() - snapshot.loadedAt) / 1000);
      },
    });
    new Gauge({
      name: "dagu_auth_credentials_generation",
      help: "Generation of the credentials document in force.",
      registers,
      collect() {
        const snapshot = store.snapshot();
        this.reset();
        if (snapshot) this.set(snapshot.credentials.generation);
      },
    });
    new Gauge({
      name: "dagu_auth_credentials_ready",
      help: "1 when credentials are in force and the latest document was valid.",
      registers,
      collect() {
        this.set(store.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: "dagu_auth_credentials_stale_seconds",
      help: "Seconds since the credentials source lost contact (Kubernetes: the API server) while it has; 0 in contact. The last good credentials stay in force meanwhile.",
      registers,
      collect() {
        const since = store.source.staleSince?.();
        this.set(since === undefined ? 0 : (Date.now() - since) / 1000);
      },
    });
    store.on("loaded", () => this.reloads.inc({ result: "loaded" }));
    store.on("rejected", () => this.reloads.inc({ result: "rejected" }));
  }
}
