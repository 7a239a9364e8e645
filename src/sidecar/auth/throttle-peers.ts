// Login throttling across sidecar replicas (several pods behind one Service, one DaguAuth): what the
// LoginThrottle asks of its peers. The throttle keeps deciding alone, before any hash; its peers add the
// failures and locks the other replicas recorded for the same key, and learn this replica's. Keys are
// the throttle's own (a username, an address); an implementation stores them hashed.
// The Kubernetes one: sources/kubernetes-throttle.ts.

/** One key's state on one replica, or merged over the others. Times are epoch milliseconds. */
export interface PeerThrottleState {
  /** Failures inside the window and newer than `clearedAt`. */
  readonly failures: readonly number[];
  /** 0 when not locked. */
  readonly lockedUntil: number;
  /** A success cleared the key then (failures before it no longer count anywhere); 0 if never. */
  readonly clearedAt: number;
}

export interface ThrottlePeers {
  /** What the other replicas recorded for `key`: failures after `windowStart`, the latest lock and clear. */
  remote(key: string, windowStart: number, now: number): PeerThrottleState | undefined;
  /** This replica's state of `key` changed; it matters to the others until `keepUntil`. */
  publish(key: string, state: PeerThrottleState, keepUntil: number): void;
}
