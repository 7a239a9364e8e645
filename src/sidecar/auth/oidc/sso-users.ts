// What a single sign-on login does to the SSO user records: finds the person's record, syncs its role, or
// creates one under auto sign-up. How the records are laid over the credentials is src/common/sso-overlay.ts.
import { randomUUID } from "node:crypto";
import type { Role } from "../../../api/common.ts";
import type { CredentialUser, SsoUser, SsoUsers } from "../../../api/credentials.ts";
import { pickUsername, type Claims } from "./claims.ts";
import type { MappedRole } from "./role-mapping.ts";

/** A Secret holds 1 MiB; at ~300 bytes a record this leaves room to spare. */
export const MAX_SSO_USERS = 2500;

export interface LoginIdentity {
  issuer: string;
  subject: string;
  email: string;
  claims: Claims;
}

export type Provisioning =
  | { kind: "user"; id: string; created: boolean }
  | { kind: "refuse"; reason: "disabled" | "no_role" | "signup_disabled" | "too_many_users"; message: string };

/**
 * The change a login makes to the records (run on the records as last written, retried on a conflict):
 * the person's record by issuer and subject, its role synchronized unless skipOrgRoleSync, or a new one
 * under auto sign-up. `users` is undefined when nothing changes.
 */
export function provision(
  records: SsoUsers,
  identity: LoginIdentity,
  mapped: MappedRole,
  settings: { autoSignup: boolean; defaultRole: Role; skipOrgRoleSync: boolean },
  declared: readonly CredentialUser[],
  now: string,
): { users: SsoUsers | undefined; result: Provisioning } {
  const existing = Object.entries(records).find(([, r]) => r.issuer === identity.issuer && r.subject === identity.subject);
  if (existing) {
    const [id, record] = existing;
    if (record.disabled) return { users: undefined, result: { kind: "refuse", reason: "disabled", message: "Authentication failed: your account is disabled" } };
    if (mapped.kind === "none") return { users: undefined, result: { kind: "refuse", reason: "no_role", message: "Authentication failed: no role is mapped for your account" } };
    const role = mapped.kind === "role" && !settings.skipOrgRoleSync ? mapped.role : record.role;
    if (role === record.role && record.email === identity.email) return { users: undefined, result: { kind: "user", id, created: false } };
    return { users: { ...records, [id]: { ...record, role, email: identity.email, updatedAt: now } }, result: { kind: "user", id, created: false } };
  }
  if (!settings.autoSignup) {
    return { users: undefined, result: { kind: "refuse", reason: "signup_disabled", message: "Authentication failed: automatic account creation is disabled, contact your administrator" } };
  }
  if (mapped.kind === "none") return { users: undefined, result: { kind: "refuse", reason: "no_role", message: "Authentication failed: no role is mapped for your account" } };
  if (Object.keys(records).length >= MAX_SSO_USERS) {
    return { users: undefined, result: { kind: "refuse", reason: "too_many_users", message: "Authentication failed: no more users can be created, contact your administrator" } };
  }
  const passwordUsers = new Set(declared.filter((u) => u.passwordHash !== undefined).map((u) => u.username));
  const ssoNames = new Set([...declared.filter((u) => u.passwordHash === undefined).map((u) => u.username), ...Object.values(records).map((r) => r.username)]);
  const username = pickUsername(identity.claims, identity.email, identity.subject, (name) => (passwordUsers.has(name) ? "password" : ssoNames.has(name) ? "sso" : "free"));
  const id = `sso:${randomUUID()}`;
  const record: SsoUser = {
    issuer: identity.issuer,
    subject: identity.subject,
    username,
    email: identity.email,
    role: mapped.kind === "role" ? mapped.role : settings.defaultRole,
    createdAt: now,
    updatedAt: now,
  };
  return { users: { ...records, [id]: record }, result: { kind: "user", id, created: true } };
}
