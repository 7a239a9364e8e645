// Login throttling shared by the sidecar replicas of one DaguAuth, through the `<auth>-login-throttle`
// Secret (created by the operator; the sidecar's Role may get, watch and patch it, nothing else):
// - each replica writes its own data key (`r.<replica>`), a JSON document of the keys it has failures,
//   locks or clears for, with a JSON merge patch of that key alone: replicas never conflict;
// - each replica watches the Secret and adds the others' documents to its own decisions
//   (login-throttle.ts asks through ThrottlePeers), so a lock on one replica holds on all of them within
//   the watch latency plus PUBLISH_DELAY_MS, and failures spread over replicas count together;
// - keys (usernames, client addresses) are stored as salted SHA-256 digests, never in clear text: a
//   mistyped password in the username field must not end up in etcd;
// - a document says until when it matters; a replica that is gone is dropped by the others after that.
// Bounded: at most MAX_ENTRIES keys per replica are shared (the most recently changed ones); past that,
// a replica still throttles alone.
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { z } from "zod";
import { loginThrottleSecretName } from "../../api/credentials.ts";
import { KubeClient, isNotFound, resourcePath, type KubeObject } from "../../common/kube/client.ts";
import type { KubeConfig } from "../../common/kube/config.ts";
import { Informer } from "../../common/kube/informer.ts";
import type { PeerThrottleState, ThrottlePeers } from "../auth/throttle-peers.ts";

const SECRETS = { group: "", version: "v1", plural: "secrets" };
export const PUBLISH_DELAY_MS = 200;
export const MAX_ENTRIES = 500;

const Entry = z.object({ f: z.array(z.number()).max(1000), l: z.number(), c: z.number() });
const Document = z.object({ v: z.literal(1), until: z.number(), e: z.record(z.string(), Entry) });
type Document = z.infer<typeof Document>;

interface LocalEntry extends PeerThrottleState {
  keepUntil: number;
}

export interface KubernetesThrottleOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  authName: string;
  logger: Logger;
  /** This replica's data key (default: host name and process id). */
  replica?: string;
  now?: () => number;
}

export class KubernetesThrottlePeers implements ThrottlePeers {
  readonly #o: KubernetesThrottleOptions;
  readonly #client: KubeClient;
  readonly #informer: Informer;
  readonly #dataKey: string;
  readonly #salt: string;
  readonly #local = new Map<string, LocalEntry>();
  #remote = new Map<string, PeerThrottleState>();
  #timer: NodeJS.Timeout | undefined;
  #publishing: Promise<void> = Promise.resolve();
  #stopped = false;
  #errorLogged = false;

  constructor(options: KubernetesThrottleOptions) {
    this.#o = options;
    this.#client = new KubeClient(options.kubeConfig);
    this.#dataKey = `r.${(options.replica ?? `${hostname()}-${process.pid}`).replace(/[^-._a-zA-Z0-9]/g, "-").slice(0, 200)}`;
    this.#salt = `${options.namespace}/${options.authName}`;
    this.#informer = new Informer({
      kubeConfig: options.kubeConfig,
      resource: SECRETS,
      namespace: options.namespace,
      fieldSelector: `metadata.name=${loginThrottleSecretName(options.authName)}`,
      resyncPeriodMs: 0,
      logger: options.logger,
    });
    const read = () => this.#read();
    this.#informer.onAdd(read);
    this.#informer.onUpdate(read);
    this.#informer.onDelete(read);
  }

  get replica(): string {
    return this.#dataKey;
  }

  /** Starts watching; never waits for it (a Secret or a permission still missing must not hold the sidecar up). */
  start(): void {
    this.#informer.start();
  }

  /** Stops watching and withdraws this replica's document (its locks end with it only if no other replica holds them). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#publishing;
    await this.#patch({ [this.#dataKey]: null }).catch(() => undefined);
    await this.#informer.stop();
  }

  remote(key: string, windowStart: number, now: number): PeerThrottleState | undefined {
    const digest = this.#digest(key);
    const r = this.#remote.get(digest);
    if (!r) return undefined;
    // A clear published by this replica counts too: failures before it belong to a lock already served.
    const cleared = Math.max(r.clearedAt, this.#local.get(digest)?.clearedAt ?? 0);
    const failures = r.failures.filter((t) => t > windowStart && t > cleared);
    const lockedUntil = r.lockedUntil > now ? r.lockedUntil : 0;
    if (failures.length === 0 && lockedUntil === 0 && cleared === 0) return undefined;
    return { failures, lockedUntil, clearedAt: cleared };
  }

  publish(key: string, state: PeerThrottleState, keepUntil: number): void {
    const digest = this.#digest(key);
    this.#local.delete(digest); // re-inserted last: the Map's order is least recently changed first
    this.#local.set(digest, { ...state, keepUntil });
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#publishing = this.#publishing.then(() => this.#publish());
    }, PUBLISH_DELAY_MS);
    this.#timer.unref();
  }

  #digest(key: string): string {
    return createHash("sha256").update(this.#salt).update("\n").update(key).digest("base64url").slice(0, 22);
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  async #publish(): Promise<void> {
    const now = this.#now();
    for (const [k, e] of this.#local) if (e.keepUntil <= now) this.#local.delete(k);
    const entries = [...this.#local].slice(-MAX_ENTRIES);
    const doc: Document = { v: 1, until: Math.max(now, ...entries.map(([, e]) => e.keepUntil)), e: Object.fromEntries(entries.map(([k, e]) => [k, { f: [...e.failures], l: e.lockedUntil, c: e.clearedAt }])) };
    const patch: Record<string, string | null> = { [this.#dataKey]: Buffer.from(JSON.stringify(doc)).toString("base64") };
    // Documents of replicas that are gone, whose content no longer matters, are dropped by whoever writes.
    for (const [dataKey, other] of this.#documents()) if (dataKey !== this.#dataKey && other && other.until < now) patch[dataKey] = null;
    try {
      await this.#patch(patch);
      this.#errorLogged = false;
    } catch (err) {
      // Not shared this time: this replica still throttles on its own; the next change tries again.
      if (!this.#errorLogged) this.#o.logger.warn({ secret: loginThrottleSecretName(this.#o.authName), error: err instanceof Error ? err.message : String(err) }, "login throttling not shared with the other replicas");
      this.#errorLogged = true;
    }
  }

  async #patch(data: Record<string, string | null>): Promise<void> {
    const path = resourcePath(SECRETS, { namespace: this.#o.namespace, name: loginThrottleSecretName(this.#o.authName) });
    try {
      await this.#client.request("PATCH", path, { contentType: "application/merge-patch+json", body: { data } });
    } catch (err) {
      if (isNotFound(err)) throw new Error(`Secret ${loginThrottleSecretName(this.#o.authName)} does not exist (the operator creates it)`, { cause: err });
      throw err;
    }
  }

  /** Every replica's document in the Secret; undefined for one that cannot be read (ignored). */
  #documents(): Map<string, Document | undefined> {
    const secret: KubeObject | undefined = this.#informer.get(this.#o.namespace, loginThrottleSecretName(this.#o.authName));
    const out = new Map<string, Document | undefined>();
    for (const [dataKey, value] of Object.entries((secret?.data ?? {}) as Record<string, string>)) {
      if (!dataKey.startsWith("r.")) continue;
      let parsed: Document | undefined;
      try {
        const r = Document.safeParse(JSON.parse(Buffer.from(value, "base64").toString("utf8")));
        parsed = r.success ? r.data : undefined;
      } catch {
        parsed = undefined;
      }
      out.set(dataKey, parsed);
    }
    return out;
  }

  #read(): void {
    const merged = new Map<string, { failures: number[]; lockedUntil: number; clearedAt: number }>();
    for (const [dataKey, doc] of this.#documents()) {
      if (dataKey === this.#dataKey || !doc) continue;
      for (const [digest, e] of Object.entries(doc.e)) {
        const m = merged.get(digest) ?? { failures: [], lockedUntil: 0, clearedAt: 0 };
        m.failures.push(...e.f);
        m.lockedUntil = Math.max(m.lockedUntil, e.l);
        m.clearedAt = Math.max(m.clearedAt, e.c);
        merged.set(digest, m);
      }
    }
    for (const m of merged.values()) m.failures = m.failures.filter((t) => t > m.clearedAt).sort((a, b) => a - b);
    this.#remote = merged;
  }
}
