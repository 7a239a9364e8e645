// Users created by single sign-on, laid over a credentials document (as password changes are): each
// record becomes a user with no password, whose tokens count from the record's creation. Declared users
// win: a record whose username or email a DaguUser (sso: true, or any user for the username) holds is
// shadowed, so pinning a role or disabling someone is a DaguUser in Git and takes effect at once. Without
// `oidc` in the document no record is in force (SSO switched off locks its users out). One piece of code
// for the sidecar (which enforces the overlay) and the operator (which reports the pins in status).
import type { CredentialUser, Credentials, SsoUser, SsoUsers } from "../api/credentials.ts";

/** Why a declared user shadows a record, or undefined when the record is in force. */
export function shadowedBy(record: SsoUser, declared: readonly CredentialUser[]): CredentialUser | undefined {
  const email = record.email?.toLowerCase();
  return declared.find((u) => u.username === record.username || (u.sso === true && email !== undefined && u.email?.toLowerCase() === email));
}

export function withSsoUsers(credentials: Credentials, records: SsoUsers): Credentials {
  if (!credentials.oidc) return credentials;
  const entries = Object.entries(records);
  if (entries.length === 0) return credentials;
  const declared = credentials.users;
  const ids = new Set(declared.map((u) => u.id));
  const added: CredentialUser[] = [];
  for (const [id, record] of entries.sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (ids.has(id) || shadowedBy(record, declared)) continue;
    ids.add(id);
    added.push({
      id,
      username: record.username,
      role: record.role,
      ...(record.email ? { email: record.email } : {}),
      sso: true,
      passwordChangedAt: record.createdAt,
      disabled: record.disabled === true,
      allowPasswordChange: false,
    });
  }
  return added.length === 0 ? credentials : { ...credentials, users: [...declared, ...added] };
}
