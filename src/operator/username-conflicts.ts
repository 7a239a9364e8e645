// Two DaguUsers (or a DaguUser and the initial admin) claiming one username under
// one DaguAuth: exactly one keeps it, decided the same way by every replica and
// every reconcile, so status never flaps. The initial admin always wins (it is part
// of the DaguAuth itself); otherwise the oldest resource wins, then the name.

export interface UsernameClaim {
  id: string;
  username: string;
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

function compare(a: UsernameClaim, b: UsernameClaim): number {
  if (a.isInitialAdmin !== b.isInitialAdmin) return a.isInitialAdmin ? -1 : 1;
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  return a.objectName < b.objectName ? -1 : a.objectName > b.objectName ? 1 : 0;
}

export function resolveUsernameConflicts(claims: readonly UsernameClaim[]): ConflictResult {
  const byUsername = new Map<string, UsernameClaim[]>();
  for (const c of claims) {
    // Dagu compares usernames case-sensitively; so do we.
    const list = byUsername.get(c.username) ?? [];
    list.push(c);
    byUsername.set(c.username, list);
  }
  const winners = new Set<string>();
  const losers = new Map<string, { heldBy: string; heldByName: string }>();
  for (const list of byUsername.values()) {
    list.sort(compare);
    const [first, ...rest] = list;
    winners.add(first!.id);
    for (const c of rest) losers.set(c.id, { heldBy: first!.id, heldByName: first!.objectName || "the initial admin" });
  }
  return { winners, losers };
}
