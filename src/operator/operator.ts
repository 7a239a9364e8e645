// Wires the operator: informers on the four kinds, on Secrets and on the objects a
// DaguAuth owns, a queue and a reconciler per kind, leader election, health and
// metrics. Caches start at once (a follower is ready to take over warm); reconcilers
// run only while leading.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { availableParallelism, hostname } from "node:os";
import type { KubeConfig } from "../common/kube/config.ts";
import pLimit from "p-limit";
import pino, { type Logger } from "pino";
import { GROUP, KINDS, MAX_INLINE_BYTES, VERSION } from "../api/index.ts";
import { Gauge } from "prom-client";
import { Applier, FIELD_MANAGER } from "./runtime/apply.ts";
import { KubeClient, isNotFound, resourcePath, type KubeObject } from "../common/kube/client.ts";
import { EventRecorder } from "./runtime/events.ts";
import { startHealthServer, informersSynced, leaderElectionHealthy, type HealthServer } from "./runtime/health.ts";
import { Informer } from "../common/kube/informer.ts";
import { LeaderElector } from "./runtime/leader-election.ts";
import { OperatorMetrics } from "./runtime/metrics.ts";
import { generationOrMetadataChanged, isResync } from "./runtime/predicates.ts";
import { WorkQueue, type Result } from "./runtime/work-queue.ts";
import { AUTH_LABEL, instanceSelector, keyOf, MANAGED_BY_LABEL, MANAGED_BY_VALUE, type OperatorContext, type Writer } from "./context.ts";
import { Materials } from "./materials.ts";
import { ownedObjectChanged } from "./owned-objects.ts";
import { hashPassword } from "../common/password-hash.ts";
import { reconcileDaguAuth } from "./dagu-auth-reconciler.ts";
import { reconcileDaguUser } from "./dagu-user-reconciler.ts";
import { reconcileDaguApiKey } from "./dagu-api-key-reconciler.ts";
import { reconcileDaguWebhook } from "./dagu-webhook-reconciler.ts";
import { SecretReferences } from "./secret-references.ts";
import { SecretCache } from "./secret-cache.ts";
import { authsUsingApiKey } from "./remote-nodes.ts";
import { startInjection, type InjectionOptions, type RunningInjection } from "./injection/index.ts";

/** How long each step of a graceful stop may take before the next one starts anyway. */
const STOP_STEP_MS = 10_000;

export interface OperatorOptions {
  kubeConfig: KubeConfig;
  logger?: Logger;
  /** host:port of /healthz, /readyz and /metrics; undefined: no server. */
  healthAddress?: string;
  leaderElection?: { namespace: string; name?: string; identity?: string; leaseDurationSeconds?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /**
   * Workers for DaguUser reconciles (default 16; API keys and webhooks get 4). More than there are
   * hashing slots: a reconcile also waits for the API server, and the hashes must never run dry.
   */
  userConcurrency?: number;
  /**
   * argon2id hashes at once (default: the CPUs, at most 4, libuv's default thread pool). Bounds the CPU
   * and the memory hashing takes (19 MiB each) however many users change at once.
   */
  hashConcurrency?: number;
  resyncPeriodMs?: number;
  /** Shard the credentials document above this many bytes (default MAX_INLINE_BYTES, about 900 KiB). */
  maxInlineBytes?: number;
  /**
   * Act only on resources labelled auth.dagu.dev/instance=<this> (absent: only on resources without that
   * label), so that two installs never act on the same objects.
   */
  instance?: string;
  /** The sidecar injection webhook (served by every replica, leader or not). */
  injection?: InjectionOptions;
  /**
   * A namespaced install (ADR 0014): watch, cache and write only in these namespaces, whose Roles are all
   * the RBAC it has; undefined: the whole cluster.
   */
  namespaces?: readonly string[];
}

export interface RunningOperator {
  health?: HealthServer;
  injection?: RunningInjection;
  metrics: OperatorMetrics;
  readonly isLeader: boolean;
  /** Stops reconciling, releases the lease (so a follower takes over at once), stops the caches. */
  stop(): Promise<void>;
  /** Resolves when leadership was lost (the process should exit, as controller-runtime does). */
  lostLeadership: Promise<void>;
}

const CERT_MANAGER_POLL_MS = 60_000;
export const DEFAULT_USER_WORKERS = 16;
export const defaultHashConcurrency = () => Math.min(availableParallelism(), 4);

type KindName = "auths" | "users" | "apiKeys" | "webhooks";
const KIND_OF: Record<KindName, string> = { auths: "DaguAuth", users: "DaguUser", apiKeys: "DaguApiKey", webhooks: "DaguWebhook" };

export async function startOperator(options: OperatorOptions): Promise<RunningOperator> {
  const log = options.logger ?? pino({ name: "dagu-auth-operator" });
  const kubeConfig = options.kubeConfig;
  const client = new KubeClient(kubeConfig);
  const applier = new Applier(client);
  const metrics = new OperatorMetrics({ processMetrics: true });
  const events = new EventRecorder({ kube: client, logger: log });
  const resyncPeriodMs = options.resyncPeriodMs ?? 10 * 60_000;
  const instance = instanceSelector(options.instance);
  const where = options.namespaces ? { namespaces: options.namespaces } : {};

  const crInformer = (kind: KindName) => {
    const info = KINDS.find((k) => k.kind === KIND_OF[kind])!;
    return new Informer({ kubeConfig, resource: { group: GROUP, version: VERSION, plural: info.plural }, labelSelector: instance, resyncPeriodMs, logger: log, ...where });
  };
  const informers = { auths: crInformer("auths"), users: crInformer("users"), apiKeys: crInformer("apiKeys"), webhooks: crInformer("webhooks") };
  // Secrets: ours by label, the referenced ones by a metadata-only watch and reads by name (secret-cache.ts).
  const references = new SecretReferences();
  const secretCache = new SecretCache({ kubeConfig, client, ownedSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${instance}`, references, resyncPeriodMs, logger: log, ...where });
  for (const kind of ["auths", "users"] as const) {
    informers[kind].onAdd((o) => secretCache.unreferenced(references.track(kind, o)));
    informers[kind].onUpdate((_old, o) => secretCache.unreferenced(references.track(kind, o)));
    informers[kind].onDelete((o) => secretCache.unreferenced(references.track(kind, o, true)));
  }
  const caches = { auths: informers.auths, users: informers.users, apiKeys: informers.apiKeys, webhooks: informers.webhooks };

  const queueFor = (kind: string) =>
    new WorkQueue({
      onError: (key, error, retryInMs) => {
        metrics.recordRetry(kind);
        log.warn({ kind, key, retryInMs, err: error instanceof Error ? error.message : String(error) }, "reconcile failed; retrying");
      },
    });
  const queues = { auths: queueFor("DaguAuth"), users: queueFor("DaguUser"), apiKeys: queueFor("DaguApiKey"), webhooks: queueFor("DaguWebhook") };
  for (const [k, q] of Object.entries(queues)) metrics.observeQueue(KIND_OF[k as KindName], q);

  const writer: Writer = {
    apply: (obj) => applier.applyObject(obj),
    applyStatus: async (obj) => {
      await applier.applyStatus(obj);
    },
    // Create and conditional update (resourceVersion) where a write must not overwrite a newer one;
    // still recorded under the operator's field manager.
    create: async (obj) => client.request<KubeObject>("POST", await collectionPath(client, obj), { body: obj, query: { fieldManager: FIELD_MANAGER } }),
    update: async (obj) =>
      client.request<KubeObject>("PUT", `${await collectionPath(client, obj)}/${encodeURIComponent(obj.metadata.name!)}`, { body: obj, query: { fieldManager: FIELD_MANAGER } }),
    get: async (apiVersion, kind, namespace, name) => {
      try {
        return await client.request<KubeObject>("GET", `${await collectionPath(client, { apiVersion, kind, metadata: { namespace } })}/${encodeURIComponent(name)}`);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    delete: async (apiVersion, kind, namespace, name, options) => {
      await applier.deleteIfExists({ apiVersion, kind, namespace, name }, options?.uid ? { uid: options.uid } : {});
    },
  };

  const hashSlots = pLimit(options.hashConcurrency ?? defaultHashConcurrency());
  const ctx: OperatorContext = {
    log,
    caches,
    secrets: secretCache,
    writer,
    events: {
      normal: (o, r, m) => void events.normal(o, r, m),
      warning: (o, r, m) => void events.warning(o, r, m),
    },
    enqueue: {
      auth: (k) => queues.auths.add(k),
      user: (k) => queues.users.add(k),
      apiKey: (k) => queues.apiKeys.add(k),
      webhook: (k) => queues.webhooks.add(k),
    },
    materials: new Materials(),
    hashPassword: (password) => hashSlots(() => metrics.timeHash("argon2id", () => hashPassword(password))),
    now: () => new Date(),
    maxInlineBytes: options.maxInlineBytes ?? MAX_INLINE_BYTES,
    applied: new Map(),
    ownedObjects: (namespace) => [...owned, certificates].flatMap((informer) => informer.list(namespace)),
  };

  // Event routing: status-only updates are skipped; a resync re-delivers everything.
  const route = (informer: Informer, enqueue: (key: string) => void, also?: (obj: KubeObject) => void) => {
    informer.onAdd((o) => (enqueue(keyOf(o)), also?.(o)));
    informer.onUpdate((a, b) => {
      if (isResync(a, b) || generationOrMetadataChanged(a, b)) {
        enqueue(keyOf(b));
        also?.(b);
      }
    });
    informer.onDelete((o) => (enqueue(keyOf(o)), also?.(o)));
  };
  const childrenOfAuth = (auth: KubeObject) => {
    for (const kind of ["users", "apiKeys", "webhooks"] as const) {
      for (const child of caches[kind].list(auth.metadata.namespace)) {
        if ((child.spec as { authRef?: { name?: string } })?.authRef?.name === auth.metadata.name) ctx.enqueue[kind === "users" ? "user" : kind === "apiKeys" ? "apiKey" : "webhook"](keyOf(child));
      }
    }
  };
  route(informers.auths, ctx.enqueue.auth, childrenOfAuth);
  route(informers.users, ctx.enqueue.user);
  route(informers.apiKeys, ctx.enqueue.apiKey);
  // A DaguAuth whose remote nodes use an API key learns where its key is (and that it exists) from it.
  const authsOfKey = (k: KubeObject) => {
    for (const a of authsUsingApiKey(caches.auths, k.metadata.namespace ?? "", k.metadata.name ?? "")) ctx.enqueue.auth(keyOf(a));
  };
  informers.apiKeys.onAdd(authsOfKey);
  informers.apiKeys.onUpdate((a, b) => a.metadata.generation !== b.metadata.generation && authsOfKey(b));
  informers.apiKeys.onDelete(authsOfKey);
  route(informers.webhooks, ctx.enqueue.webhook);
  const onSecret = (s: KubeObject) => {
    const ns = s.metadata.namespace ?? "";
    const name = s.metadata.name ?? "";
    const authName = s.metadata.labels?.[AUTH_LABEL];
    if (authName) ctx.enqueue.auth(`${ns}/${authName}`);
    for (const ref of s.metadata.ownerReferences ?? []) {
      if (ref.kind === "DaguUser") ctx.enqueue.user(`${ns}/${ref.name}`);
      if (ref.kind === "DaguApiKey") ctx.enqueue.apiKey(`${ns}/${ref.name}`);
      if (ref.kind === "DaguWebhook") ctx.enqueue.webhook(`${ns}/${ref.name}`);
    }
    for (const key of references.referrers("users", ns, name)) ctx.enqueue.user(key);
    for (const key of references.referrers("auths", ns, name)) ctx.enqueue.auth(key);
  };
  for (const secrets of [secretCache.owned, secretCache.referenced]) {
    secrets.onAdd(onSecret);
    secrets.onUpdate((_a, b) => onSecret(b));
    secrets.onDelete(onSecret);
  }

  // Owns(): the sidecar's ServiceAccount, Role and RoleBinding and the Certificate,
  // cached only when they carry our label. One deleted or edited by someone else is
  // applied again by its DaguAuth (owned-objects.ts).
  const ownedInformer = (group: string, version: string, plural: string) => {
    const informer = new Informer({ kubeConfig, resource: { group, version, plural }, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${instance}`, resyncPeriodMs, logger: log, ...where });
    informer.onAdd((o) => ownedObjectChanged(ctx, o, false));
    informer.onUpdate((_old, o) => ownedObjectChanged(ctx, o, false));
    informer.onDelete((o) => ownedObjectChanged(ctx, o, true));
    return informer;
  };
  const owned = [ownedInformer("", "v1", "serviceaccounts"), ownedInformer("rbac.authorization.k8s.io", "v1", "roles"), ownedInformer("rbac.authorization.k8s.io", "v1", "rolebindings")];
  // cert-manager is optional: a cache of a kind the API does not serve would never sync,
  // so Certificates are watched only once discovery finds the kind (polled until then),
  // and that cache never counts toward readiness.
  const certificates = ownedInformer("cert-manager.io", "v1", "certificates");
  const stopCertificatePoll = new AbortController();
  const watchCertificatesWhenServed = async () => {
    for (let attempt = 0; !stopCertificatePoll.signal.aborted; attempt++) {
      try {
        await client.resolve("cert-manager.io/v1", "Certificate");
        if (stopCertificatePoll.signal.aborted) return;
        certificates.start();
        log.info("cert-manager's Certificate kind is served; watching Certificates");
        // Installed after we started: the DaguAuths that said CertManagerMissing try again now, not at the next resync.
        if (attempt > 0) for (const auth of caches.auths.list()) if ((auth.spec as { tls?: { issuerRef?: unknown } } | undefined)?.tls?.issuerRef) ctx.enqueue.auth(keyOf(auth));
        return;
      } catch (err) {
        if (attempt === 0) log.info({ err: err instanceof Error ? err.message : String(err) }, "cert-manager's Certificate kind is not served; checking again every minute");
      }
      await sleep(CERT_MANAGER_POLL_MS, undefined, { signal: stopCertificatePoll.signal }).catch(() => undefined);
    }
  };

  const all = [...Object.values(informers), secretCache.owned, secretCache.referenced, ...owned];
  new Gauge({
    name: "dagu_auth_operator_cached_secrets",
    help: "Secret bodies in the operator's cache by namespace: the ones it owns, and the referenced ones it has read.",
    labelNames: ["namespace"] as const,
    registers: [metrics.registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const s of secretCache.bodies()) counts.set(s.metadata.namespace ?? "", (counts.get(s.metadata.namespace ?? "") ?? 0) + 1);
      for (const [namespace, n] of counts) this.set({ namespace }, n);
    },
  });
  /** Set by stop(); declared before anything asynchronous can read it. */
  let stopping: Promise<void> | undefined;
  // The referenced Secrets' watch filters by what the custom resources reference: it lists once their caches have.
  for (const i of Object.values(informers)) i.start();
  for (const i of owned) i.start();
  secretCache.owned.start();
  void Promise.all(Object.values(informers).map((i) => i.hasSynced)).then(
    () => void (stopping ?? secretCache.referenced.start()),
    () => undefined,
  );
  void watchCertificatesWhenServed();

  const elector = options.leaderElection
    ? new LeaderElector({
        kubeConfig,
        namespace: options.leaderElection.namespace,
        name: options.leaderElection.name ?? "dagu-auth-operator",
        // Unique per instance: two operators in one process (tests) must not share one.
        identity: options.leaderElection.identity ?? `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
        ...(options.leaderElection.leaseDurationSeconds ? { leaseDurationSeconds: options.leaderElection.leaseDurationSeconds } : {}),
        ...(options.leaderElection.renewDeadlineMs ? { renewDeadlineMs: options.leaderElection.renewDeadlineMs } : {}),
        ...(options.leaderElection.retryPeriodMs ? { retryPeriodMs: options.leaderElection.retryPeriodMs } : {}),
        logger: log,
      })
    : undefined;

  const injection = options.injection
    ? await startInjection({ kubeConfig, logger: log, registry: metrics.registry, auths: caches.auths, serviceAccounts: owned[0]!, options: options.injection, ...(options.instance ? { instance: options.instance } : {}) })
    : undefined;
  let health: HealthServer | undefined;
  if (options.healthAddress !== undefined) {
    health = await startHealthServer({
      address: options.healthAddress,
      registry: metrics.registry,
      readiness: [informersSynced(all), ...(elector ? [leaderElectionHealthy(elector)] : []), ...(injection ? [injection.readiness] : [])],
    });
  }

  const timed = (kind: string, fn: (ctx: OperatorContext, key: string) => Promise<Result | undefined>) => async (key: string): Promise<Result | undefined> => {
    const start = process.hrtime.bigint();
    try {
      const r = await fn(ctx, key);
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.recordReconcile(kind, r?.requeueAfter !== undefined ? "requeue" : "success", seconds);
      log.debug({ kind, key, ms: Math.round(seconds * 1000), requeueAfterMs: r?.requeueAfter }, "reconciled");
      return r;
    } catch (err) {
      metrics.recordReconcile(kind, "error", Number(process.hrtime.bigint() - start) / 1e9);
      throw err;
    }
  };

  let leading = false;
  let resolveLost!: () => void;
  const lostLeadership = new Promise<void>((r) => (resolveLost = r));
  const runControllers = async (signal?: AbortSignal) => {
    // Abortable: a release() waits for this function, and an informer that never started (stop() came
    // before the caches it waits for) would otherwise never sync and hold the stop forever.
    const aborted = new Promise<void>((resolve) => (signal?.aborted ? resolve() : signal?.addEventListener("abort", () => resolve(), { once: true })));
    // hasSynced rejects only for an informer stopped before it synced: the stop below is what follows.
    await Promise.race([Promise.all(all.map((i) => i.hasSynced)).catch(() => undefined), aborted]);
    if (signal?.aborted || stopping) return;
    leading = true;
    log.info("caches synced; reconciling");
    // A full pass after (re)gaining leadership: nothing happened while we did not lead.
    for (const o of caches.auths.list()) ctx.enqueue.auth(keyOf(o));
    for (const o of caches.users.list()) ctx.enqueue.user(keyOf(o));
    for (const o of caches.apiKeys.list()) ctx.enqueue.apiKey(keyOf(o));
    for (const o of caches.webhooks.list()) ctx.enqueue.webhook(keyOf(o));
    void queues.auths.run(2, timed("DaguAuth", reconcileDaguAuth));
    void queues.users.run(options.userConcurrency ?? DEFAULT_USER_WORKERS, timed("DaguUser", reconcileDaguUser));
    void queues.apiKeys.run(4, timed("DaguApiKey", reconcileDaguApiKey));
    void queues.webhooks.run(4, timed("DaguWebhook", reconcileDaguWebhook));
  };

  const stopQueues = async () => {
    leading = false;
    await Promise.all(Object.values(queues).map((q) => q.shutDown()));
  };

  if (elector) {
    void elector.run({
      onStartedLeading: (signal) => runControllers(signal),
      onStoppedLeading: () => {
        if (stopping) log.info("released leadership");
        else log.warn("lost leadership; stopping reconcilers");
        void stopQueues().then(resolveLost);
      },
    });
  } else {
    void runControllers();
  }

  return {
    ...(health ? { health } : {}),
    ...(injection ? { injection } : {}),
    metrics,
    get isLeader() {
      return leading;
    },
    lostLeadership,
    stop() {
      // Each step is bounded: a reconcile or a request that never ends must not keep the Lease held and the
      // process alive (the kubelet would kill it after its grace period anyway, without releasing the Lease).
      const bounded = async (what: string, step: Promise<unknown>) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), STOP_STEP_MS)));
        if ((await Promise.race([step.then(() => "done" as const), late])) === "late") log.warn({ step: what, waitedMs: STOP_STEP_MS }, "graceful stop: a step did not finish in time; going on");
        clearTimeout(timer);
      };
      stopping ??= (async () => {
        await bounded("reconciles in flight", stopQueues());
        if (elector) await bounded("releasing the Lease", elector.release().catch(() => undefined));
        if (elector) await bounded("leader election", elector.stop());
        stopCertificatePoll.abort();
        await bounded("watches", Promise.all([...all, certificates].map((i) => i.stop())));
        if (injection) await bounded("injection webhook", injection.stop());
        if (health) await bounded("health server", health.close());
      })();
      return stopping;
    },
  };
}

async function collectionPath(client: KubeClient, obj: Pick<KubeObject, "apiVersion" | "kind"> & { metadata: { namespace?: string } }): Promise<string> {
  const r = await client.resolve(obj.apiVersion!, obj.kind!);
  return resourcePath(r, r.namespaced ? { namespace: obj.metadata.namespace! } : {});
}
