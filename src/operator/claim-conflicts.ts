// Two resources claiming one unique key under one DaguAuth (two DaguUsers, or a
// DaguUser and the initial admin, with one username; two DaguWebhooks for one DAG):
// exactly one keeps it, decided the same way by every replica and every reconcile,
// so status never flaps. The initial admin always wins (it is part of the DaguAuth
// itself); otherwise the oldest resource wins, then the name.

export interface Claim {
  id: string;
  /** The unique key claimed: a username, a DAG name. */
  key: string;
  /** The DaguUser's name; "" for the initial admin. */
  objectName: string;
  creationTimestamp: string;
  isInitialAdmin: boolean;
}

export interface ConflictResult {
  winners: Set<string>;
  /** Loser id -> the id (and object name) that holds the username. */
  losers: Map<string, { heldBy: string; heldByName: string }>;
}

function compare(a: Claim, b: Claim): number {
  if (a.isInitialAdmin !== b.isInitialAdmin) return a.isInitialAdmin ? -1 : 1;
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  return a.objectName < b.objectName ? -1 : a.objectName > b.objectName ? 1 : 0;
}

export function resolveConflicts(claims: readonly Claim[]): ConflictResult {
  const byKey = new Map<string, Claim[]>();
  for (const c of claims) {
    // Dagu compares usernames and DAG names case-sensitively; so do we.
    const list = byKey.get(c.key) ?? [];
    list.push(c);
    byKey.set(c.key, list);
  }
  const winners = new Set<string>();
  const losers = new Map<string, { heldBy: string; heldByName: string }>();
  for (const list of byKey.values()) {
    list.sort(compare);
    const [first, ...rest] = list;
    winners.add(first!.id);
    for (const c of rest) losers.set(c.id, { heldBy: first!.id, heldByName: first!.objectName || "the initial admin" });
  }
  return { winners, losers };
}
