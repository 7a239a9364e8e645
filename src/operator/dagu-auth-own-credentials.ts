// The DaguAuth reconciler's own credentials, the ones no child offers: in builtin mode the signing keys
// (generated, rotated, or from spec.builtin.token.secretRef) and the initial admin, in basic mode the one
// user. Passwords are hashed only when their fingerprint changed (operator-state.ts). Given only the
// Secret cache, the hashing slots and the clock; what it reads is returned as readiness facts, not judged.
import { initialAdminUserId, parseDuration, type DaguAuthSpec } from "../api/index.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { secretData } from "../common/kube/secret-data.ts";
import { isShortTokenSecret, shortTokenSecretWarning, tokenSigningKey } from "../common/token-secret.ts";
import type { SecretReader } from "./context.ts";
import type { AdminInput } from "./credentials-assembly.ts";
import { passwordProblem, tokenSecretProblem, type ReadinessFacts, type SecretValue } from "./dagu-auth-readiness.ts";
import { resolvePassword, type OperatorState, type PasswordRecord } from "./operator-state.ts";
import { planSigningKeys, type SigningKeysPlan } from "./signing-keys.ts";

/** The id of basic mode's one user in the operator state. */
const BASIC_ID = "basic";

export interface OwnCredentialsAccess {
  readonly secrets: SecretReader;
  /** argon2id, bounded by the hashing slots. */
  hashPassword(password: string): Promise<string>;
  now(): Date;
}

export interface OwnCredentials {
  /** Builtin mode's signing keys; absent while a referenced token secret cannot sign. */
  signing?: SigningKeysPlan;
  admin?: AdminInput;
  basic?: { username: string; password: PasswordRecord };
  /** The password records of the initial admin or basic user, by credential id. */
  passwords: Record<string, PasswordRecord>;
  facts: Pick<ReadinessFacts, "tokenSecret" | "password">;
  /** Accepted, but a person should know (a short token secret). */
  warnings: string[];
  /** How many passwords were hashed (0 when every fingerprint matched). */
  hashes: number;
}

async function readSecretKey(secrets: SecretReader, namespace: string, ref: { name: string; key: string }, field: string): Promise<SecretValue> {
  const secret = await secrets.get(namespace, ref.name);
  if (!secret) return { ok: false, problem: { ready: false, reason: "SecretNotFound", message: `Secret ${ref.name} (${field}) does not exist` } };
  const value = secretData(secret)[ref.key];
  if (value === undefined) return { ok: false, problem: { ready: false, reason: "SecretKeyNotFound", message: `Secret ${ref.name} has no key ${ref.key} (${field}.key)` } };
  return { ok: true, value };
}

/** Reads, plans and hashes the DaguAuth's own credentials against the remembered `state`; `now` is the reconcile's. */
export async function ownCredentials(access: OwnCredentialsAccess, auth: KubeObject, spec: DaguAuthSpec, state: OperatorState, now: Date): Promise<OwnCredentials> {
  const namespace = auth.metadata.namespace!;
  const own: OwnCredentials = { passwords: {}, facts: {}, warnings: [], hashes: 0 };
  const hash = (pw: string) => {
    own.hashes++;
    return access.hashPassword(pw);
  };
  const materialize = async (id: string, password: SecretValue, field: string): Promise<PasswordRecord | undefined> => {
    own.facts.password = { field, value: password };
    if (!password.ok || passwordProblem(password, field)) return undefined;
    const r = await resolvePassword({ state, id, password: password.value, previous: state.passwords[id], change: undefined, hash, now: access.now });
    own.passwords[id] = r.record;
    return r.record;
  };

  if (spec.mode === "builtin") {
    const token = spec.builtin?.token;
    let referencedSecret: string | undefined;
    if (token?.secretRef) {
      const v = await readSecretKey(access.secrets, namespace, token.secretRef, "spec.builtin.token.secretRef");
      own.facts.tokenSecret = { ref: token.secretRef, value: v };
      if (v.ok && !tokenSecretProblem(token.secretRef, v)) {
        // A short secret (Dagu's own example is one) is accepted, stretched the same way as everywhere else.
        if (isShortTokenSecret(v.value)) own.warnings.push(shortTokenSecretWarning(`the token secret in Secret ${token.secretRef.name}`));
        referencedSecret = tokenSigningKey(v.value).toString("base64url");
      }
    }
    if (!token?.secretRef || referencedSecret !== undefined) {
      own.signing = planSigningKeys({
        remembered: state.signingKeys,
        rememberedRotation: state.signingRotation,
        rememberedReferenced: state.signingReferenced,
        ...(referencedSecret !== undefined ? { referencedSecret } : {}),
        rotationGeneration: token?.rotation?.generation ?? 0,
        overlapMs: parseDuration(token?.rotation?.overlap ?? "24h"),
        now,
      });
    }
    const ia = spec.builtin?.initialAdmin;
    if (ia) {
      const id = initialAdminUserId(auth.metadata.uid!);
      const record = await materialize(id, await readSecretKey(access.secrets, namespace, ia.passwordSecretRef, "spec.builtin.initialAdmin.passwordSecretRef"), "spec.builtin.initialAdmin");
      if (record) own.admin = { id, username: ia.username, password: record };
    }
  } else if (spec.basic) {
    const record = await materialize(BASIC_ID, await readSecretKey(access.secrets, namespace, spec.basic.passwordSecretRef, "spec.basic.passwordSecretRef"), "spec.basic");
    if (record) own.basic = { username: spec.basic.username, password: record };
  }
  return own;
}

/** Whether the document can be written: basic mode needs its user, builtin mode its signing keys. */
export function canWriteCredentials(spec: DaguAuthSpec, own: Pick<OwnCredentials, "basic" | "signing">): boolean {
  return !(spec.mode === "basic" && !own.basic) && !(spec.mode === "builtin" && !own.signing);
}
