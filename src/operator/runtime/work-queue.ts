// A keyed work queue in the manner of client-go's workqueue, as controller-runtime uses it:
// - a key waiting to be processed is held once, however often it is added (dedup);
// - a key is handed to one worker at a time; adding it while it is processed marks it
//   dirty and it is handed out once more after the worker is done (per-key serialization);
// - failures retry with per-key exponential backoff, bounded overall by a token bucket.
// Reconcilers are level-based: a key says "look at this object again", never "apply this event".

const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RateLimiterOptions {
  /** First retry delay of a key; doubles per consecutive failure. Default 50 ms. */
  baseDelayMs?: number;
  /** Ceiling of the per-key delay. Default 5 minutes. */
  maxDelayMs?: number;
  /** Overall retries per second across all keys. Default 10. */
  qps?: number;
  /** Retries allowed at once before the qps applies. Default 100. */
  burst?: number;
}

/** Per-key exponential backoff combined with an overall token bucket (the larger delay wins). */
export class RateLimiter {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly failures = new Map<string, number>();
  private tokens: number;
  private refilledAt = Date.now();

  constructor(options: RateLimiterOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 50;
    this.maxDelayMs = options.maxDelayMs ?? 5 * 60_000;
    this.qps = options.qps ?? 10;
    this.burst = options.burst ?? 100;
    if (!(this.baseDelayMs > 0 && this.maxDelayMs >= this.baseDelayMs)) {
      throw new Error(`rate limiter: need 0 < baseDelayMs <= maxDelayMs, got ${this.baseDelayMs} and ${this.maxDelayMs}`);
    }
    if (!(this.qps > 0 && this.burst >= 1)) throw new Error(`rate limiter: need qps > 0 and burst >= 1, got ${this.qps} and ${this.burst}`);
    this.tokens = this.burst;
  }

  /** Counts one more failure of `key` and returns how long to wait before retrying it. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const perKey = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    return Math.max(perKey, this.reserveToken());
  }

  /** Ends the backoff of `key`: its next failure starts again at the base delay. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  // Like golang.org/x/time/rate's Reserve: tokens may go negative, and a negative
  // balance is the wait until this reservation's token has been refilled.
  private reserveToken(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.qps);
    this.refilledAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

/** What a handler may ask for. Throwing instead means "failed": retried with backoff. */
export interface Result {
  /** Process the key again after this many ms (for time-based work such as expiry), without backoff. */
  requeueAfter?: number;
}

// A handler with nothing to ask for may simply return.
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type
export type Handler = (key: string) => Promise<Result | void>;

export interface WorkQueueOptions extends RateLimiterOptions {
  /** Called when a handler throws, with the delay before its retry. Must not throw. */
  onError?: (key: string, error: unknown, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly limiter: RateLimiter;
  private readonly onError: WorkQueueOptions["onError"];
  /** Keys ready to be handed out, in insertion order; each is also in `dirty`. */
  private readonly ready = new Set<string>();
  /** Keys that need processing: ready ones, and ones re-added while being processed. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly idleWorkers: ((key: string | undefined) => void)[] = [];
  private workers: Promise<void>[] = [];
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.limiter = new RateLimiter(options);
    this.onError = options.onError;
  }

  /** Keys waiting for a worker (not counting delayed ones or ones being processed). */
  get depth(): number {
    return this.ready.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return; // handed out again when its worker is done
    this.ready.add(key);
    this.dispatch();
  }

  /** Adds `key` after `ms`. An earlier pending addAfter of the same key wins over a later one. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    // setTimeout fires after 1 ms past 2^31-1 ms (~24.8 days): a far expiry would spin. Waking early is
    // harmless: the reconcile asks for the rest of the wait again.
    ms = Math.min(ms, MAX_TIMER_MS);
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** Adds `key` after its backoff delay; returns that delay. */
  addRateLimited(key: string): number {
    const delay = this.limiter.when(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the backoff of `key` (after it was processed successfully). */
  forget(key: string): void {
    this.limiter.forget(key);
  }

  /** Consecutive failures of `key` so far. */
  retries(key: string): number {
    return this.limiter.retries(key);
  }

  /**
   * Starts `concurrency` workers that call `handler` for each key. Resolves when the
   * queue has been shut down and every worker has finished its last handler.
   */
  run(concurrency: number, handler: Handler): Promise<void> {
    if (this.workers.length > 0) throw new Error("work queue: run() was already called");
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`work queue: concurrency must be a positive integer, got ${concurrency}`);
    this.workers = Array.from({ length: concurrency }, () => this.work(handler));
    return Promise.all(this.workers).then(() => undefined);
  }

  /**
   * Stops handing out keys and waits for the handlers in flight. Keys still waiting
   * (ready or delayed) are dropped: whoever runs the controllers next lists everything anew.
   */
  async shutDown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.ready.clear();
    this.dirty.clear();
    for (const wake of this.idleWorkers.splice(0)) wake(undefined);
    await Promise.all(this.workers);
  }

  private async work(handler: Handler): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      try {
        const result = await handler(key);
        this.limiter.forget(key);
        if (result?.requeueAfter !== undefined && result.requeueAfter > 0) this.addAfter(key, result.requeueAfter);
      } catch (err) {
        const delay = this.addRateLimited(key);
        this.onError?.(key, err, delay);
      } finally {
        this.done(key);
      }
    }
  }

  private next(): Promise<string | undefined> {
    if (this.ready.size > 0) return Promise.resolve(this.take());
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.idleWorkers.push(resolve));
  }

  private take(): string {
    const key = this.ready.values().next().value!;
    this.ready.delete(key);
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.ready.add(key);
      this.dispatch();
    }
  }

  private dispatch(): void {
    while (this.ready.size > 0 && this.idleWorkers.length > 0) this.idleWorkers.shift()!(this.take());
  }
}
