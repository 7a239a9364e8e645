// The limits of the names the operator derives from a DaguAuth's name: the CRD's rule on metadata.name
// and the zod schema are computed from them. No imports: the API's schemas import this.

/**
 * Every name the operator derives from a DaguAuth's name, with the limit of what it becomes. The longest
 * allowed DaguAuth name follows from them (test/unit/api-names.test.ts checks the operator's own name
 * functions against this table).
 */
export const DAGU_AUTH_DERIVED_NAMES: readonly { what: string; name: (auth: string) => string; max: number }[] = [
  { what: "the value of the auth.dagu.dev/auth label on every object the operator creates", name: (a) => a, max: 63 },
  { what: "Secret <name>-credentials", name: (a) => `${a}-credentials`, max: 253 },
  // Generations and shard numbers grow without a bound in the API: the largest a JavaScript number holds.
  { what: "Secret <name>-credentials-g<generation>-<shard>", name: (a) => `${a}-credentials-g${Number.MAX_SAFE_INTEGER}-999`, max: 253 },
  { what: "Secret <name>-password-changes", name: (a) => `${a}-password-changes`, max: 253 },
  { what: "Secret <name>-login-throttle", name: (a) => `${a}-login-throttle`, max: 253 },
  { what: "Secret <name>-sso-users", name: (a) => `${a}-sso-users`, max: 253 },
  { what: "Secret <name>-operator-state-<bucket>", name: (a) => `${a}-operator-state-15`, max: 253 },
  { what: "ServiceAccount, Role and RoleBinding <name>-sidecar", name: (a) => `${a}-sidecar`, max: 253 },
  { what: "cert-manager Certificate <name>-tls", name: (a) => `${a}-tls`, max: 253 },
];

/** The longest DaguAuth name every derived name fits (the label value decides: 63). */
export const DAGU_AUTH_NAME_MAX_LENGTH = Math.min(...DAGU_AUTH_DERIVED_NAMES.map((d) => d.max - (d.name("").length)));
const tightest = DAGU_AUTH_DERIVED_NAMES.find((d) => d.max - d.name("").length === DAGU_AUTH_NAME_MAX_LENGTH)!;
export const DAGU_AUTH_NAME_MESSAGE = `metadata.name: a DaguAuth name has at most ${DAGU_AUTH_NAME_MAX_LENGTH} characters (it becomes ${tightest.what})`;
