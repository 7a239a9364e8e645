// Kubernetes Events (events.k8s.io/v1) about the objects the operator reconciles, so
// `kubectl describe` shows what happened. A repeat of the same event bumps the series
// of the existing Event instead of creating another one, as client-go's recorder does.
// Recording is best effort: it never throws into the reconciler.
import { hostname } from "node:os";
import type { KubeConfig } from "../../common/kube/config.ts";
import { pino, type Logger } from "pino";
import { KubeClient, describe, isNotFound, microTime, resourcePath, type KubeObject } from "../../common/kube/client.ts";

export type EventType = "Normal" | "Warning";

export interface EventRecorderOptions {
  kube: KubeClient | KubeConfig;
  /** reportingController of every Event. Default "dagu-auth-operator". */
  controller?: string;
  /** reportingInstance: the pod name. Default the host name. */
  instance?: string;
  /** A repeat within this long of the previous occurrence bumps its series. Default 10 minutes. */
  dedupWindowMs?: number;
  logger?: Logger;
}

const EVENTS = { group: "events.k8s.io", version: "v1", plural: "events" };
const MAX_NOTE_BYTES = 1024;
const MAX_CACHED = 4096;

interface Recorded {
  namespace: string;
  name: string;
  count: number;
  lastAt: number;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly controller: string;
  private readonly instance: string;
  private readonly dedupWindowMs: number;
  private readonly log: Logger;
  private readonly recorded = new Map<string, Recorded>();
  // One write at a time per dedup key, so two identical events do not both create an Event.
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(options: EventRecorderOptions) {
    this.client = options.kube instanceof KubeClient ? options.kube : new KubeClient(options.kube);
    this.controller = options.controller ?? "dagu-auth-operator";
    this.instance = (options.instance ?? hostname()).slice(0, 128);
    this.dedupWindowMs = options.dedupWindowMs ?? 10 * 60_000;
    this.log = (options.logger ?? pino({ name: "events" })).child({ component: "event-recorder" });
  }

  /** Records a Normal event. The promise always resolves; awaiting it is optional. */
  normal(regarding: KubeObject, reason: string, message: string, action = reason): Promise<void> {
    return this.record("Normal", regarding, reason, message, action);
  }

  /** Records a Warning event. The promise always resolves; awaiting it is optional. */
  warning(regarding: KubeObject, reason: string, message: string, action = reason): Promise<void> {
    return this.record("Warning", regarding, reason, message, action);
  }

  private record(type: EventType, regarding: KubeObject, reason: string, message: string, action: string): Promise<void> {
    const key = [regarding.metadata.uid ?? describe(regarding), type, reason, message].join("\u0000");
    const previous = this.inFlight.get(key) ?? Promise.resolve();
    const next = previous
      .then(() => this.write(key, type, regarding, reason, message, action))
      .catch((err: unknown) => this.log.warn({ err, regarding: describe(regarding), reason }, "could not record an Event"))
      .finally(() => {
        if (this.inFlight.get(key) === next) this.inFlight.delete(key);
      });
    this.inFlight.set(key, next);
    return next;
  }

  private async write(key: string, type: EventType, regarding: KubeObject, reason: string, message: string, action: string): Promise<void> {
    const now = Date.now();
    const seen = this.recorded.get(key);
    if (seen && now - seen.lastAt < this.dedupWindowMs) {
      const count = seen.count + 1;
      try {
        await this.client.request("PATCH", resourcePath(EVENTS, { namespace: seen.namespace, name: seen.name }), {
          body: { series: { count, lastObservedTime: microTime(now) } },
          contentType: "application/merge-patch+json",
        });
        this.recorded.set(key, { ...seen, count, lastAt: now });
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err; // expired (event TTL) or deleted: create a new one
      }
    }
    const namespace = regarding.metadata.namespace || "default";
    const base = (regarding.metadata.name ?? "object").slice(0, 200);
    const name = `${base}.${now.toString(16)}${Math.floor(Math.random() * 0xfff).toString(16)}`;
    await this.client.request("POST", resourcePath(EVENTS, { namespace }), {
      body: {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name, namespace },
        eventTime: microTime(now),
        type,
        reason: reason.slice(0, 128),
        action: action.slice(0, 128),
        note: truncateUtf8(message, MAX_NOTE_BYTES),
        regarding: {
          apiVersion: regarding.apiVersion,
          kind: regarding.kind,
          name: regarding.metadata.name,
          namespace: regarding.metadata.namespace,
          uid: regarding.metadata.uid,
          resourceVersion: regarding.metadata.resourceVersion,
        },
        reportingController: this.controller,
        reportingInstance: this.instance,
      },
    });
    if (this.recorded.size >= MAX_CACHED) this.prune(now);
    this.recorded.set(key, { namespace, name, count: 1, lastAt: now });
  }

  private prune(now: number): void {
    for (const [key, r] of this.recorded) if (now - r.lastAt >= this.dedupWindowMs) this.recorded.delete(key);
    // Still full: forget the oldest half rather than grow without bound.
    if (this.recorded.size >= MAX_CACHED) [...this.recorded.keys()].slice(0, MAX_CACHED / 2).forEach((k) => this.recorded.delete(k));
  }
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (Buffer.byteLength(out) > maxBytes - 3) out = out.slice(0, -1);
  return `${out}...`;
}
