// A DaguAuth's Ready condition as a chain of pure policies: the reconciler gathers what it found
// (ReadinessFacts) and each policy, in order, may name a condition; the first one that does is the
// condition, and without any the credentials are Materialized. The order is the order of importance
// (someone else's object blocks everything; a missing admin is the last thing to fix), set here once,
// not by where in the reconcile a problem was noticed. test/unit/dagu-auth-readiness.test.ts tables it.
import { MIN_PASSWORD_LENGTH } from "../common/password-hash.ts";
import type { DaguAuthSpec } from "../api/index.ts";
import type { ReadyState } from "./conditions.ts";

/** A value read from a Secret key, or why it could not be. */
export type SecretValue = { ok: true; value: string } | { ok: false; problem: ReadyState };

export interface ReadinessFacts {
  /** Objects this DaguAuth would own, held by someone else (ownedObjectConflict). */
  conflict?: ReadyState;
  /** The OIDC plan's problem (spec.oidc). */
  oidcProblem?: ReadyState;
  /** spec.builtin.token.secretRef, as read. */
  tokenSecret?: { ref: { name: string; key: string }; value: SecretValue };
  /** The initial admin's or the basic user's password, as read. */
  password?: { field: string; value: SecretValue };
  /** A TLS Secret of the user's own (spec.tls.secretName without an issuer): its decoded data, undefined when absent. */
  tls?: { secretName: string; data: Readonly<Record<string, string>> | undefined };
  remoteNodeProblems: readonly ReadyState[];
  /** The password-changes Secret could not be read (the changes read before stay in force). */
  passwordChangesInvalid?: { secretName: string };
  /** spec.tls.issuerRef without cert-manager's Certificate kind in the cluster. */
  certManagerMissing: boolean;
  spec: DaguAuthSpec;
  /** What the credentials document holds. */
  document: { generation: number; users: readonly { role: string; disabled: boolean }[]; apiKeys: number; webhooks: number };
}

export type ReadinessPolicy = (facts: ReadinessFacts) => ReadyState | undefined;

/** Why a read password cannot be materialized; undefined when it can. */
export function passwordProblem(value: SecretValue, field: string): ReadyState | undefined {
  if (!value.ok) return value.problem;
  if (value.value.length < MIN_PASSWORD_LENGTH) return { ready: false, reason: "PasswordTooShort", message: `the password of ${field} is shorter than ${MIN_PASSWORD_LENGTH} characters` };
  return undefined;
}

/** Why a referenced token secret cannot sign; undefined when it can. */
export function tokenSecretProblem(ref: { name: string; key: string }, value: SecretValue): ReadyState | undefined {
  if (!value.ok) return value.problem;
  if (value.value === "") return { ready: false, reason: "TokenSecretEmpty", message: `the token secret in Secret ${ref.name} (key ${ref.key}) is empty` };
  return undefined;
}

/**
 * Builtin mode with nobody who may administer it (no initial admin, no enabled admin DaguUser): the
 * credentials are written, but the DaguAuth is not Ready. Dagu would show its setup page; here an admin
 * is declared instead.
 */
export function missingAdmin(spec: DaguAuthSpec, users: readonly { role: string; disabled: boolean }[]): ReadyState | undefined {
  if (spec.mode !== "builtin" || users.some((u) => u.role === "admin" && !u.disabled)) return undefined;
  return {
    ready: false,
    reason: "NoAdmin",
    message: "nobody can administer this Dagu: set spec.builtin.initialAdmin, or create a DaguUser with role admin (Dagu would show its setup page)",
  };
}

/** The policies, most important first. */
export const READINESS_POLICIES: readonly ReadinessPolicy[] = [
  (f) => f.conflict,
  (f) => f.oidcProblem,
  (f) => (f.tokenSecret ? tokenSecretProblem(f.tokenSecret.ref, f.tokenSecret.value) : undefined),
  (f) => (f.password ? passwordProblem(f.password.value, f.password.field) : undefined),
  (f) => {
    if (!f.tls) return undefined;
    const { secretName, data } = f.tls;
    if (!data) return { ready: false, reason: "SecretNotFound", message: `Secret ${secretName} (spec.tls.secretName) does not exist` };
    if (!data["tls.crt"] || !data["tls.key"]) return { ready: false, reason: "SecretKeyNotFound", message: `Secret ${secretName} (spec.tls.secretName) needs tls.crt and tls.key` };
    return undefined;
  },
  (f) => f.remoteNodeProblems[0],
  (f) =>
    f.passwordChangesInvalid
      ? { ready: false, reason: "PasswordChangesInvalid", message: `Secret ${f.passwordChangesInvalid.secretName} is not valid; the self-service password changes read before stay in force` }
      : undefined,
  (f) => (f.certManagerMissing ? { ready: false, reason: "CertManagerMissing", message: "spec.tls.issuerRef needs cert-manager: its Certificate kind is not served by this cluster" } : undefined),
  (f) => missingAdmin(f.spec, f.document.users),
];

/** The Ready condition: the first policy's, or Materialized. */
export function readiness(facts: ReadinessFacts, policies: readonly ReadinessPolicy[] = READINESS_POLICIES): ReadyState {
  for (const policy of policies) {
    const condition = policy(facts);
    if (condition) return condition;
  }
  const d = facts.document;
  return { ready: true, reason: "Materialized", message: `credentials generation ${d.generation}: ${d.users.length} users, ${d.apiKeys} API keys, ${d.webhooks} webhooks` };
}
