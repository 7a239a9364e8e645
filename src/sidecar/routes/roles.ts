// Role ordering for authorization decisions. The roles themselves (names, order, zod schema) live in
// src/api/common.ts, the single source of types; this file only answers "is this role enough?".
import { ROLES, type Role } from "../../api/common.ts";

export type { Role };

const RANK: ReadonlyMap<string, number> = new Map(
  // ROLES is highest first: admin gets the highest rank.
  ROLES.map((role, index) => [role, ROLES.length - index]),
);

/** True when `value` is one of Dagu's five role names (exact, case-sensitive). */
export function isRole(value: unknown): value is Role {
  return typeof value === "string" && RANK.has(value);
}

/** The role's rank: viewer 1 ... admin 5. Throws on an unknown role (a programming error, never input). */
export function roleRank(role: Role): number {
  const rank = RANK.get(role);
  if (rank === undefined) {
    throw new TypeError(`unknown Dagu role: ${JSON.stringify(role)}`);
  }
  return rank;
}

/**
 * True when `role` includes `min` (admin > manager > developer > operator > viewer).
 * Unknown strings (a corrupted credential, a role from a newer Dagu) never pass.
 */
export function roleAtLeast(role: string, min: Role): boolean {
  if (!isRole(role)) return false;
  return roleRank(role) >= roleRank(min);
}
