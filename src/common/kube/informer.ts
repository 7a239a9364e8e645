// A list-then-watch cache of one resource type, after client-go's reflector and informer.
//
// - List (paginated, a consistent read), then watch from the list's resourceVersion with
//   bookmarks, so a restarted watch resumes from the last resourceVersion seen and misses nothing.
// - 410 Gone (an HTTP 410 or an ERROR event with code 410) means that resourceVersion is
//   no longer served: list again and emit add/update/delete for the difference.
// - A stall watchdog restarts a watch that has delivered nothing, not even a bookmark,
//   within `stallTimeoutMs`: a half-open connection would otherwise go unnoticed.
// - A periodic resync re-delivers every cached object as an update (old === new).
// Cached objects are the wire JSON, deep-frozen: handlers and readers must not mutate them.
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeConfig } from "./config.ts";
import { pino, type Logger } from "pino";
import {
  KubeClient,
  METADATA_ONLY,
  errorCode,
  objectKey,
  resourcePath,
  type GroupVersionResource,
  type KubeList,
  type KubeObject,
  type KubeStatus,
} from "./client.ts";

export interface InformerOptions {
  kubeConfig: KubeConfig;
  resource: GroupVersionResource;
  /** Watch one namespace; all namespaces when absent. */
  namespace?: string;
  /**
   * Watch these namespaces only (one list and watch each, one cache): a namespaced install, whose RBAC
   * grants nothing cluster-wide. Takes the place of `namespace`.
   */
  namespaces?: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Re-deliver every object as an update this often; 0 turns it off. Default 10 minutes. */
  resyncPeriodMs?: number;
  /** Restart a watch that delivered nothing for this long. Default 5 minutes. */
  stallTimeoutMs?: number;
  /** Server-side timeout of one watch request. Default: random between 5 and 10 minutes, as client-go. */
  watchTimeoutSeconds?: number;
  /** List page size. Default 500. */
  pageSize?: number;
  /**
   * Keep only objects this accepts (others are never cached, and a cached one that
   * stops being accepted is delivered as deleted). For caches that must not hold
   * every object the watch sees, such as Secrets.
   */
  filter?: (obj: KubeObject) => boolean;
  /**
   * Cache only metadata (PartialObjectMetadata): the API server leaves out everything else, so a watch
   * of Secrets for their names, labels and resourceVersions never transfers a Secret's data.
   */
  metadataOnly?: boolean;
  /**
   * Longest wait between two failed lists or watches (default 30 s, as client-go). Lower where the cache must
   * catch up within about a second of the API server's return, and the watch is cheap (a Secret by name).
   */
  maxBackoffMs?: number;
  logger?: Logger;
}

export type AddHandler<T> = (obj: T) => void;
export type UpdateHandler<T> = (oldObj: T, newObj: T) => void;
export type DeleteHandler<T> = (obj: T) => void;
/** Contact with the API server lost (a list or watch failed) or regained (a list or a watch answered). */
export type ContactHandler = (connected: boolean) => void;

/** Counters for tests and metrics. */
export interface InformerStats {
  lists: number;
  watches: number;
  stalls: number;
  gone: number;
  events: number;
}

type WatchEnd =
  | { kind: "closed" } // the server ended the request, or it went quiet too long; resume from the last resourceVersion
  | { kind: "interrupted" } // the test hook
  | { kind: "stalled" }
  | { kind: "gone"; via: "HTTP 410" | "ERROR event" }
  | { kind: "error"; error: unknown }
  | { kind: "stopped" };

const MIN_BACKOFF_MS = 800;
const MAX_BACKOFF_MS = 30_000;

export class Informer<T extends KubeObject = KubeObject> {
  /** Resolves once the first list is cached and its adds were delivered; rejects if stopped before. */
  readonly hasSynced: Promise<void>;
  readonly stats: InformerStats = { lists: 0, watches: 0, stalls: 0, gone: 0, events: 0 };

  private readonly client: KubeClient;
  private readonly resource: GroupVersionResource;
  private readonly namespace: string | undefined;
  private readonly labelSelector: string | undefined;
  private readonly fieldSelector: string | undefined;
  private readonly resyncPeriodMs: number;
  private readonly stallTimeoutMs: number;
  private readonly watchTimeoutSeconds: number | undefined;
  private readonly pageSize: number;
  private readonly filter: ((obj: KubeObject) => boolean) | undefined;
  private readonly metadataOnly: boolean;
  private readonly maxBackoffMs: number;
  private readonly log: Logger;
  private readonly path: string;

  private readonly addHandlers = new Set<AddHandler<T>>();
  private readonly updateHandlers = new Set<UpdateHandler<T>>();
  private readonly deleteHandlers = new Set<DeleteHandler<T>>();
  private readonly contactHandlers = new Set<ContactHandler>();
  private connectedFlag = false;

  private store = new Map<string, T>();
  private resourceVersion = "";
  private syncedFlag = false;
  private resolveSynced!: () => void;
  private rejectSynced!: (err: Error) => void;
  private started = false;
  private loop: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  private endCurrentWatch: ((end: WatchEnd) => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private hookPause: { ms: number; fromResourceVersion?: string } | undefined;
  /** With several namespaces: an informer each, whose events this one passes on. */
  private readonly children: Informer<T>[] | undefined;

  constructor(options: InformerOptions) {
    this.client = new KubeClient(options.kubeConfig);
    this.resource = options.resource;
    const namespaces = options.namespaces;
    this.namespace = namespaces?.length === 1 ? namespaces[0] : options.namespace;
    this.labelSelector = options.labelSelector;
    this.fieldSelector = options.fieldSelector;
    this.resyncPeriodMs = options.resyncPeriodMs ?? 10 * 60_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 5 * 60_000;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds;
    this.pageSize = options.pageSize ?? 500;
    this.filter = options.filter;
    this.metadataOnly = options.metadataOnly ?? false;
    this.maxBackoffMs = options.maxBackoffMs ?? MAX_BACKOFF_MS;
    this.path = resourcePath(this.resource, { namespace: this.namespace });
    this.log = (options.logger ?? pino({ name: "informer" })).child({ informer: this.describe() });
    this.hasSynced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    this.hasSynced.catch(() => undefined); // a rejection nobody awaits is not an error
    if (namespaces && namespaces.length !== 1) {
      const children = namespaces.map((namespace) => new Informer<T>({ ...options, namespaces: undefined, namespace }));
      this.children = children;
      for (const child of children) {
        child.onAdd((o) => this.emitAdd(o));
        child.onUpdate((a, b) => this.emitUpdate(a, b));
        child.onDelete((o) => this.emitDelete(o));
        child.onContact(() => this.contact(children.every((c) => c.connected)));
      }
      Promise.all(children.map((c) => c.hasSynced)).then(
        () => {
          this.syncedFlag = true;
          this.resolveSynced();
        },
        (err: unknown) => this.rejectSynced(err instanceof Error ? err : new Error(String(err))),
      );
    }
  }

  /** True once the first list has been delivered. */
  get synced(): boolean {
    return this.syncedFlag;
  }

  /**
   * True while the API server answers: from the first list, until a list or a watch fails, then again
   * once one answers. The cache holds what was last seen either way; this says whether it may be stale.
   */
  get connected(): boolean {
    return this.connectedFlag;
  }

  /** Registers a handler of contact changes (see `connected`); returns a function that unregisters it. */
  onContact(handler: ContactHandler): () => void {
    this.contactHandlers.add(handler);
    return () => this.contactHandlers.delete(handler);
  }

  /** The last resourceVersion seen (from a list, an event or a bookmark). */
  get lastResourceVersion(): string {
    return this.children ? this.children.map((c) => c.lastResourceVersion).join(",") : this.resourceVersion;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    if (this.children) return this.children.find((c) => c.namespace === namespace)?.get(namespace, name);
    return this.store.get(objectKey(namespace, name));
  }

  list(namespace?: string): T[] {
    if (this.children) return this.children.flatMap((c) => (namespace === undefined || c.namespace === namespace ? c.list(namespace) : []));
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  /** Registers a handler; returns a function that unregisters it. Handlers must not throw or block. */
  onAdd(handler: AddHandler<T>): () => void {
    this.addHandlers.add(handler);
    return () => this.addHandlers.delete(handler);
  }

  onUpdate(handler: UpdateHandler<T>): () => void {
    this.updateHandlers.add(handler);
    return () => this.updateHandlers.delete(handler);
  }

  onDelete(handler: DeleteHandler<T>): () => void {
    this.deleteHandlers.add(handler);
    return () => this.deleteHandlers.delete(handler);
  }

  /** Starts listing and watching. Register handlers before, to see the initial adds. */
  start(): this {
    if (this.started) throw new Error(`informer ${this.describe()}: start() was already called`);
    this.started = true;
    if (this.children) {
      for (const c of this.children) c.start();
      return this;
    }
    this.loop = this.run();
    if (this.resyncPeriodMs > 0) {
      this.resyncTimer = setInterval(() => this.resync(), this.resyncPeriodMs);
      this.resyncTimer.unref();
    }
    return this;
  }

  async stop(): Promise<void> {
    if (this.stopController.signal.aborted) return;
    this.stopController.abort();
    if (this.children) {
      await Promise.all(this.children.map((c) => c.stop()));
      return;
    }
    clearInterval(this.resyncTimer);
    this.endCurrentWatch?.({ kind: "stopped" });
    if (!this.syncedFlag) this.rejectSynced(new Error(`informer ${this.describe()} stopped before it synced`));
    await this.loop;
  }

  /**
   * For tests only: ends the current watch request as a disconnect would, optionally waits
   * `pauseMs` before the next one and starts it from `fromResourceVersion` instead of the last one.
   */
  readonly testHooks = {
    interruptWatch: (options: { pauseMs?: number; fromResourceVersion?: string } = {}): void => {
      for (const c of this.children ?? []) c.testHooks.interruptWatch(options);
      this.hookPause = { ms: options.pauseMs ?? 0, fromResourceVersion: options.fromResourceVersion };
      this.endCurrentWatch?.({ kind: "interrupted" });
    },
  };

  private describe(): string {
    const { group, version, plural } = this.resource;
    const selectors = [this.labelSelector && `labels ${this.labelSelector}`, this.fieldSelector && `fields ${this.fieldSelector}`].filter(Boolean);
    const where = this.children ? `namespaces ${this.children.map((c) => c.namespace).join(",")}` : (this.namespace ?? "all namespaces");
    return `${plural}.${group || "core"}/${version}${this.metadataOnly ? " (metadata)" : ""} in ${where}${selectors.length ? ` (${selectors.join(", ")})` : ""}`;
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async run(): Promise<void> {
    let needList = true;
    let failures = 0;
    while (!this.stopped) {
      if (needList) {
        try {
          await this.relist();
          needList = false;
          failures = 0;
        } catch (err) {
          if (this.stopped) break;
          this.contact(false);
          failures++;
          const delay = backoff(failures, this.maxBackoffMs);
          this.log.warn({ err, retryInMs: delay }, "list failed");
          await this.pause(delay);
          continue;
        }
      }
      if (this.hookPause) {
        const { ms, fromResourceVersion } = this.hookPause;
        this.hookPause = undefined;
        await this.pause(ms);
        if (fromResourceVersion !== undefined) this.resourceVersion = fromResourceVersion;
      }
      if (this.stopped) break;
      const startedAt = Date.now();
      const end = await this.watchOnce();
      this.log.debug({ end: end.kind, resourceVersion: this.resourceVersion }, "watch ended");
      switch (end.kind) {
        case "stopped":
          return;
        case "gone":
          this.stats.gone++;
          this.log.info({ resourceVersion: this.resourceVersion, via: end.via }, "watch resourceVersion expired (410 Gone); listing again");
          needList = true;
          break;
        case "stalled":
          this.stats.stalls++;
          this.log.warn({ stallTimeoutMs: this.stallTimeoutMs }, "watch delivered nothing in time; restarting it");
          break;
        case "interrupted":
          break;
        case "closed":
          // A server that closes every watch at once would make this a busy loop.
          if (Date.now() - startedAt < 1000) await this.pause(backoff(++failures, this.maxBackoffMs));
          else failures = 0;
          break;
        case "error": {
          if (Date.now() - startedAt > 10_000) failures = 0; // a healthy watch that then broke starts over
          const delay = backoff(++failures, this.maxBackoffMs);
          this.contact(false);
          this.log.warn({ err: end.error, retryInMs: delay }, "watch failed");
          await this.pause(delay);
          break;
        }
      }
    }
  }

  /** Lists everything and replaces the cache, emitting the difference to what was cached. */
  private async relist(): Promise<void> {
    const items: T[] = [];
    let listVersion = "";
    let continueToken: string | undefined;
    do {
      const page: KubeList<T> = await this.client.request<KubeList<T>>("GET", this.path, {
        query: { labelSelector: this.labelSelector, fieldSelector: this.fieldSelector, limit: this.pageSize, continue: continueToken },
        signal: this.stopController.signal,
        ...(this.metadataOnly ? { accept: METADATA_ONLY.list } : {}),
      });
      // Items of a list carry no apiVersion and kind; watch events do. Keep the cache uniform.
      const kind = page.kind?.replace(/List$/, "");
      // Filtered per page: a filtered informer (Secrets) never holds the whole cluster's objects at once.
      // `items` is null in an empty list of PartialObjectMetadata.
      for (const item of page.items ?? []) if (!this.filter || this.filter(item)) items.push({ ...item, apiVersion: item.apiVersion ?? page.apiVersion, kind: item.kind ?? kind });
      listVersion = page.metadata?.resourceVersion ?? listVersion;
      continueToken = page.metadata?.continue || undefined;
    } while (continueToken);
    if (this.stopped) return;
    this.stats.lists++;
    this.contact(true);

    const next = new Map<string, T>();
    for (const item of items) next.set(keyOf(item), deepFreeze(item));
    const previous = this.store;
    this.store = next;
    this.resourceVersion = listVersion;
    for (const [key, obj] of next) {
      const old = previous.get(key);
      if (!old) this.emitAdd(obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emitUpdate(old, obj);
    }
    for (const [key, old] of previous) if (!next.has(key)) this.emitDelete(old);
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      this.resolveSynced();
    }
  }

  /** One watch request, from the last resourceVersion until it ends for whatever reason. */
  private watchOnce(): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let request: AbortController | undefined;
      let ended = false;
      let watchdog: NodeJS.Timeout | undefined;
      const end = (how: WatchEnd): void => {
        if (ended) return;
        ended = true;
        clearTimeout(watchdog);
        this.endCurrentWatch = undefined;
        request?.abort();
        resolve(how);
      };
      const armWatchdog = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => end({ kind: "stalled" }), this.stallTimeoutMs);
        watchdog.unref();
      };
      this.endCurrentWatch = end;
      armWatchdog();
      this.stats.watches++;

      const onEvent = (type: string, object: unknown): void => {
        if (ended) return; // events of a watch we already gave up on
        armWatchdog();
        this.stats.events++;
        const failure = this.apply(type, object);
        if (failure) end(failure);
      };
      const query = {
        allowWatchBookmarks: true,
        resourceVersion: this.resourceVersion || undefined,
        labelSelector: this.labelSelector,
        fieldSelector: this.fieldSelector,
        timeoutSeconds: this.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
      };
      this.client
        .watch(this.path, query, onEvent, (err: unknown) => end(err ? watchError(err) : { kind: "closed" }), undefined, this.metadataOnly ? METADATA_ONLY.object : undefined)
        .then(
          (controller) => {
            request = controller;
            if (!ended) this.contact(true);
            if (ended) controller.abort(); // ended (stop, watchdog) while connecting
          },
          (err: unknown) => end(watchError(err)),
        );
    });
  }

  /** Applies one watch event to the cache; returns how the watch ends if the event ends it. */
  private apply(type: string, object: unknown): WatchEnd | undefined {
    if (type === "ERROR") {
      const status = (isRecord(object) ? object : {}) as KubeStatus;
      if (errorCode(status) === 410) return { kind: "gone", via: "ERROR event" };
      return { kind: "error", error: new Error(`watch ${this.path} got an ERROR event: ${status.code ?? "?"} ${status.reason ?? ""} ${status.message ?? ""}`.trim()) };
    }
    if (type === "BOOKMARK") {
      // A bookmark carries only metadata.resourceVersion: "nothing for you up to here".
      const rv = isRecord(object) && isRecord(object.metadata) ? object.metadata.resourceVersion : undefined;
      if (typeof rv === "string" && rv) this.resourceVersion = rv;
      return undefined;
    }
    if (!isKubeObject(object)) {
      return { kind: "error", error: new Error(`watch ${this.path} got a ${type} event without an object`) };
    }
    const rv = object.metadata.resourceVersion;
    const obj = deepFreeze(object as T);
    const key = keyOf(obj);
    const old = this.store.get(key);
    switch (type) {
      case "ADDED":
      case "MODIFIED":
        if (this.filter && !this.filter(obj)) {
          if (old) {
            this.store.delete(key);
            this.emitDelete(old);
          }
          break;
        }
        this.store.set(key, obj);
        if (old) this.emitUpdate(old, obj);
        else this.emitAdd(obj);
        break;
      case "DELETED":
        this.store.delete(key);
        this.emitDelete(old ?? obj);
        break;
      default:
        this.log.warn({ type }, "ignoring a watch event of unknown type");
    }
    if (rv) this.resourceVersion = rv;
    return undefined;
  }

  private contact(connected: boolean): void {
    if (connected === this.connectedFlag) return;
    this.connectedFlag = connected;
    for (const h of this.contactHandlers) this.safely("contact", () => h(connected));
  }

  private resync(): void {
    if (!this.syncedFlag || this.stopped) return;
    for (const obj of this.store.values()) this.emitUpdate(obj, obj);
  }

  private emitAdd(obj: T): void {
    for (const h of this.addHandlers) this.safely("add", () => h(obj));
  }

  private emitUpdate(oldObj: T, newObj: T): void {
    for (const h of this.updateHandlers) this.safely("update", () => h(oldObj, newObj));
  }

  private emitDelete(obj: T): void {
    for (const h of this.deleteHandlers) this.safely("delete", () => h(obj));
  }

  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, `${what} handler threw`);
    }
  }

  /** Waits, unless the informer is stopped first. */
  private async pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    await sleep(ms, undefined, { signal: this.stopController.signal }).catch(() => undefined);
  }
}

function watchError(err: unknown): WatchEnd {
  if (errorCode(err) === 410) return { kind: "gone", via: "HTTP 410" };
  // Nothing, not even a bookmark (about one a minute), for the watch's idle timeout: the
  // connection is presumed dead; an ordinary disconnect, resumed at once.
  if (err instanceof Error && (err as { code?: unknown }).code === "UND_ERR_BODY_TIMEOUT") return { kind: "closed" };
  return { kind: "error", error: err };
}

function backoff(failures: number, max: number): number {
  const base = Math.min(max, MIN_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

function keyOf(obj: KubeObject): string {
  return objectKey(obj.metadata.namespace, obj.metadata.name ?? "");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function isKubeObject(value: unknown): value is KubeObject {
  return isRecord(value) && isRecord(value.metadata) && typeof value.metadata.name === "string";
}

function deepFreeze<V>(value: V): V {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
