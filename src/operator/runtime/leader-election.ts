// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection:
// - the Lease is taken or renewed by a replace carrying the resourceVersion that was read,
//   so of two candidates writing at once the API server lets one win (the other gets 409);
// - a Lease held by another is considered expired leaseDurationSeconds after this process
//   last saw it change (its local clock, not the holder's renewTime: clocks may disagree);
// - the leader renews every retryPeriod; when it has not renewed for renewDeadline, or sees
//   another holder, it stops leading and aborts the signal its work runs under;
// - release() on a graceful shutdown empties holderIdentity so a follower takes over at once.
import type { KubeConfig } from "../../common/kube/config.ts";
import { pino, type Logger } from "pino";
import { setTimeout as sleep } from "node:timers/promises";
import { KubeClient, isConflict, isNotFound, microTime, resourcePath, type KubeObject } from "../../common/kube/client.ts";

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Name of the Lease. */
  name: string;
  /** Unique per process, e.g. the pod name plus a random suffix. */
  identity: string;
  /** Default 15. */
  leaseDurationSeconds?: number;
  /** Stop leading when not renewed for this long. Default 10 s; must be below the lease duration. */
  renewDeadlineMs?: number;
  /** Pause between attempts to acquire or renew. Default 2 s; must be below renewDeadline. */
  retryPeriodMs?: number;
  logger?: Logger;
}

export interface LeaderCallbacks {
  /** Runs while leading; `signal` aborts when leadership ends. Its promise is awaited before release. */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  onStoppedLeading?(): void;
  /** A holder other than the last one seen (this process included). */
  onNewLeader?(identity: string): void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

type Attempt = "leading" | "held" | "failed";

const LEASES = { group: "coordination.k8s.io", version: "v1", plural: "leases" };
const JITTER = 0.2;

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly namespace: string;
  private readonly name: string;
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;

  private observedRecord = "";
  private observedAt = 0;
  private observedHolder = "";
  private lastRenewAt = 0;
  private lastContactAt = 0;
  private leading = false;
  private running: Promise<void> | undefined;
  private finished = false;
  private releaseOnExit = false;
  private readonly stopController = new AbortController();

  constructor(options: LeaderElectionOptions) {
    this.client = new KubeClient(options.kubeConfig);
    this.namespace = options.namespace;
    this.name = options.name;
    this.identity = options.identity;
    this.leaseDurationMs = (options.leaseDurationSeconds ?? 15) * 1000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!this.identity) throw new Error("leader election: identity must not be empty");
    if (!(Number.isInteger(options.leaseDurationSeconds ?? 15) && this.leaseDurationMs > this.renewDeadlineMs)) {
      throw new Error(`leader election: leaseDurationSeconds (${this.leaseDurationMs / 1000}) must be a whole number above renewDeadline (${this.renewDeadlineMs} ms)`);
    }
    if (!(this.renewDeadlineMs > this.retryPeriodMs * (1 + JITTER))) {
      throw new Error(`leader election: renewDeadline (${this.renewDeadlineMs} ms) must exceed retryPeriod (${this.retryPeriodMs} ms) plus jitter`);
    }
    this.log = (options.logger ?? pino({ name: "leader-election" })).child({ lease: `${this.namespace}/${this.name}`, identity: this.identity });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen on the Lease ("" when free or not yet read). */
  get leader(): string {
    return this.observedHolder;
  }

  /**
   * Campaigns until leading, then leads until leadership is lost, stop() or release().
   * Resolves when it is over; a process normally exits then (its informers and queues
   * were started for a leadership it no longer has).
   */
  run(callbacks: LeaderCallbacks): Promise<void> {
    if (this.running) throw new Error(`leader election ${this.namespace}/${this.name}: run() was already called`);
    this.running = this.campaignAndLead(callbacks).finally(() => {
      this.finished = true;
    });
    return this.running;
  }

  /** Stops leading, waits for onStartedLeading's work to end, then hands the Lease over at once. */
  async release(): Promise<void> {
    this.releaseOnExit = true;
    await this.stop();
  }

  /** Stops campaigning or leading without giving the Lease up: others wait for it to expire, as after a crash. */
  async stop(): Promise<void> {
    this.stopController.abort();
    await this.running;
  }

  /** For /readyz: true, or why not. A follower is fine as long as it can read the Lease. */
  health(): true | string {
    const now = Date.now();
    if (!this.running) return "leader election has not started";
    if (this.finished) return "leader election has ended";
    if (this.leading) {
      return now - this.lastRenewAt <= this.leaseDurationMs ? true : `leading but the Lease was not renewed for ${Math.round((now - this.lastRenewAt) / 1000)} s`;
    }
    const window = 2 * this.leaseDurationMs;
    if (this.lastContactAt === 0) return "the Lease has not been read yet";
    return now - this.lastContactAt <= window ? true : `the Lease could not be read for ${Math.round((now - this.lastContactAt) / 1000)} s`;
  }

  private get stopped(): boolean {
    return this.stopController.signal.aborted;
  }

  private async campaignAndLead(callbacks: LeaderCallbacks): Promise<void> {
    while (!this.stopped) {
      const attempt = await this.tryAcquireOrRenew(callbacks, this.renewDeadlineMs);
      if (attempt === "leading") break;
      await this.pause(jittered(this.retryPeriodMs));
    }
    if (this.stopped) {
      // The last attempt may have won the Lease just as we were stopped.
      if (this.releaseOnExit) await this.releaseLease();
      return;
    }

    this.leading = true;
    this.log.info("started leading");
    const leadership = new AbortController();
    const work = Promise.resolve()
      .then(() => callbacks.onStartedLeading(leadership.signal))
      .catch((err: unknown) => this.log.error({ err }, "onStartedLeading failed"));

    while (!this.stopped) {
      await this.pause(this.retryPeriodMs);
      if (this.stopped) break;
      const remaining = this.lastRenewAt + this.renewDeadlineMs - Date.now();
      const attempt = await this.tryAcquireOrRenew(callbacks, Math.max(remaining, 200));
      if (attempt === "held") {
        this.log.warn({ holder: this.observedHolder }, "the Lease is held by another: stopped leading");
        break;
      }
      if (attempt === "failed" && Date.now() - this.lastRenewAt > this.renewDeadlineMs) {
        this.log.warn({ renewDeadlineMs: this.renewDeadlineMs }, "could not renew the Lease in time: stopped leading");
        break;
      }
    }

    this.leading = false;
    leadership.abort(new Error("leadership ended"));
    try {
      callbacks.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, "onStoppedLeading failed");
    }
    await work;
    if (this.releaseOnExit) await this.releaseLease();
  }

  /** One read and, when the Lease is free, expired or ours, one write. */
  private async tryAcquireOrRenew(callbacks: LeaderCallbacks, timeoutMs: number): Promise<Attempt> {
    const now = Date.now();
    const path = resourcePath(LEASES, { namespace: this.namespace, name: this.name });
    const spec: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationMs / 1000,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let lease: Lease;
    try {
      lease = await this.client.request<Lease>("GET", path, { timeoutMs });
    } catch (err) {
      if (!isNotFound(err)) return this.failed(err, "read");
      try {
        const created = await this.client.request<Lease>("POST", resourcePath(LEASES, { namespace: this.namespace }), {
          body: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.name, namespace: this.namespace }, spec },
          timeoutMs,
        });
        return this.succeeded(created, callbacks);
      } catch (createErr) {
        return isConflict(createErr) ? "held" : this.failed(createErr, "create");
      }
    }
    this.lastContactAt = Date.now();
    const current = lease.spec ?? {};
    this.observe(current, callbacks);
    const holder = current.holderIdentity ?? "";
    const durationMs = (current.leaseDurationSeconds ?? this.leaseDurationMs / 1000) * 1000;
    if (holder !== "" && holder !== this.identity && this.observedAt + durationMs > now) return "held";

    if (holder === this.identity) {
      spec.acquireTime = current.acquireTime ?? spec.acquireTime;
      spec.leaseTransitions = current.leaseTransitions ?? 0;
    } else {
      spec.leaseTransitions = (current.leaseTransitions ?? 0) + 1;
    }
    try {
      // The resourceVersion from the read makes this conditional: a concurrent writer gets 409.
      const written = await this.client.request<Lease>("PUT", path, { body: { ...lease, spec }, timeoutMs });
      return this.succeeded(written, callbacks);
    } catch (err) {
      return isConflict(err) ? "held" : this.failed(err, "update");
    }
  }

  private succeeded(lease: Lease, callbacks: LeaderCallbacks): Attempt {
    this.lastRenewAt = this.lastContactAt = Date.now();
    this.observe(lease.spec ?? {}, callbacks);
    return "leading";
  }

  private failed(err: unknown, what: string): Attempt {
    this.log.warn({ err }, `could not ${what} the Lease`);
    return "failed";
  }

  private observe(spec: LeaseSpec, callbacks: LeaderCallbacks): void {
    const record = JSON.stringify([spec.holderIdentity, spec.leaseDurationSeconds, spec.acquireTime, spec.renewTime, spec.leaseTransitions]);
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    const holder = spec.holderIdentity ?? "";
    if (holder !== this.observedHolder) {
      this.observedHolder = holder;
      if (holder) callbacks.onNewLeader?.(holder);
    }
  }

  /** Empties holderIdentity (and shortens the duration) if this process still holds the Lease. */
  private async releaseLease(): Promise<void> {
    const path = resourcePath(LEASES, { namespace: this.namespace, name: this.name });
    try {
      const lease = await this.client.request<Lease>("GET", path);
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime(Date.now());
      const spec: LeaseSpec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now, acquireTime: now };
      await this.client.request<Lease>("PUT", path, { body: { ...lease, spec } });
      this.log.info("released the Lease");
    } catch (err) {
      // The Lease then expires on its own after leaseDurationSeconds.
      this.log.warn({ err }, "could not release the Lease");
    }
  }

  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopController.signal }).catch(() => undefined);
  }
}

function jittered(ms: number): number {
  return Math.round(ms * (1 + Math.random() * JITTER));
}
