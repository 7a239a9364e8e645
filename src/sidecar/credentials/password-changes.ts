// Self-service password changes laid over a credentials document: for each user, the newer of the
// document's password and the recorded change wins (the operator applies the same rule when it merges
// `<daguauth>-password-changes`), and passwordChangedAt advances either way.
import { rfc3339ToNanos, type Credentials, type PasswordChanges } from "../../api/credentials.ts";

export function applyPasswordChanges(credentials: Credentials, changes: PasswordChanges): Credentials {
  if (Object.keys(changes).length === 0) return credentials;
  let changed = false;
  const users = credentials.users.map((user) => {
    const change = Object.hasOwn(changes, user.id) ? changes[user.id] : undefined;
    if (!change || !user.allowPasswordChange) return user;
    if (rfc3339ToNanos(change.changedAt) <= rfc3339ToNanos(user.passwordChangedAt)) return user;
    changed = true;
    return { ...user, passwordHash: change.passwordHash, passwordChangedAt: change.changedAt };
  });
  return changed ? { ...credentials, users } : credentials;
}

/** Now as RFC 3339 with nanoseconds, strictly after `after` (clocks can step back). */
export function changeTimestamp(after: string | undefined, now: Date = new Date()): string {
  let nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(process.hrtime.bigint() % 1_000_000n);
  if (after !== undefined) {
    const floor = rfc3339ToNanos(after) + 1n;
    if (nanos < floor) nanos = floor;
  }
  return nanosToRfc3339(nanos);
}

export function nanosToRfc3339(nanos: bigint): string {
  const ms = nanos / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // 2030-01-01T00:00:00.000Z
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, "0");
  return `${iso.slice(0, 19)}.${fraction}Z`;
}
