// DaguUser: resolves the password (referenced, or generated into a Secret the user
// owns), hashes it only when it really changed, and hands the result to its
// DaguAuth. Ready once the DaguAuth has written it into the credentials.
import { randomBytes } from "node:crypto";
import { DaguUser } from "../api/index.ts";
import { MIN_PASSWORD_LENGTH } from "../common/password-hash.ts";
import { writeStatus } from "./child-status.ts";
import { startChild, type ChildAccess } from "./child-reconcile.ts";
import type { ReadyState } from "./conditions.ts";
import { secretData } from "../common/kube/secret-data.ts";
import { ensureConsumerSecret, type ConsumerSecretAccess } from "./consumer-secret.ts";
import type { UserInput } from "./materials.ts";
import { operatorStateSecretName, resolvePassword } from "./operator-state.ts";
import { readOperatorState } from "./operator-state-secret.ts";
import type { Result } from "./runtime/work-queue.ts";

export const GENERATED_PASSWORD_KEY = "password";

/** 24 base64url characters: 144 bits, typeable, no ambiguous padding. */
const generatePassword = () => randomBytes(18).toString("base64url");

/**
 * What a DaguUser reconcile may touch: the child's start (ChildAccess), its generated password Secret
 * (ConsumerSecretAccess, whose Secret cache also reads a referenced password and the operator state), and
 * the hashing slots. No owned-object cache, no apply, no delete, no log.
 */
export type DaguUserAccess = ChildAccess<"users"> &
  ConsumerSecretAccess & {
    /** argon2id, bounded by the hashing slots. */
    hashPassword(password: string): Promise<string>;
  };

export async function reconcileDaguUser(ctx: DaguUserAccess, key: string): Promise<Result | undefined> {
  const child = await startChild(ctx, "users", key, DaguUser, "userId");
  if (!child) return;
  const { obj, name, uid, generation, spec, materials } = child;
  const namespace = obj.metadata.namespace!;
  const fail = (problem: ReadyState, passwordSecretName?: string) => child.fail(problem, passwordSecretName ? { passwordSecretName } : {});
  const secretField = (n: string | undefined) => (n ? { passwordSecretName: n } : {});

  const authName = spec.authRef.name;
  const loaded = await readOperatorState(await ctx.secrets.get(namespace, operatorStateSecretName(authName)), authName, (n) => ctx.secrets.get(namespace, n));
  const state = loaded.kind === "loaded" ? loaded.state : undefined;
  if (!state) {
    // The DaguAuth creates its state first; it enqueues its users when it has.
    ctx.enqueue.auth(child.authKey);
    return { requeueAfter: 2000 };
  }

  // The password: referenced, or generated once into a Secret this user owns. None for a user who
  // only signs in through SSO.
  let password: string | undefined;
  let passwordSecretName: string | undefined;
  if (spec.password?.secretRef) {
    const ref = spec.password.secretRef;
    passwordSecretName = ref.name;
    const secret = await ctx.secrets.get(namespace, ref.name);
    if (!secret) return fail({ ready: false, reason: "SecretNotFound", message: `Secret ${ref.name} (spec.password.secretRef) does not exist` }, ref.name);
    password = secretData(secret)[ref.key];
    if (password === undefined) return fail({ ready: false, reason: "SecretKeyNotFound", message: `Secret ${ref.name} has no key ${ref.key} (spec.password.secretRef.key)` }, ref.name);
  } else if (spec.password?.generate) {
    passwordSecretName = spec.password.generate.secretName;
    const generated = await ensureConsumerSecret(ctx, obj, passwordSecretName, "spec.password.generate.secretName", { [GENERATED_PASSWORD_KEY]: generatePassword }, undefined);
    if (!generated.ok) return fail(generated.problem, passwordSecretName);
    password = generated.plan.current[GENERATED_PASSWORD_KEY]!;
  }
  if (password !== undefined && password.length < MIN_PASSWORD_LENGTH) {
    return fail({ ready: false, reason: "PasswordTooShort", message: `the password in Secret ${passwordSecretName} is shorter than ${MIN_PASSWORD_LENGTH} characters` }, passwordSecretName);
  }

  let resolved;
  if (password !== undefined) {
    const previousInput = materials.users.get(uid);
    const previous = (previousInput?.ok ? previousInput.value.password : undefined) ?? state.passwords[uid];
    resolved = await resolvePassword({ state, id: uid, password, previous, change: undefined, hash: ctx.hashPassword, now: ctx.now });
  }
  const input: UserInput = {
    id: uid,
    objectName: name,
    creationTimestamp: obj.metadata.creationTimestamp ?? "",
    username: spec.username,
    role: spec.role,
    ...(spec.email ? { email: spec.email } : {}),
    disabled: spec.disabled,
    allowPasswordChange: spec.allowPasswordChange,
    sso: spec.sso,
    ...(resolved ? { password: resolved.record } : {}),
    ...(passwordSecretName ? { passwordSecretName } : {}),
  };
  child.offer({ ok: true, generation, value: input });

  // Ready only once the credentials the sidecar reads hold exactly this input.
  const published = materials.published;
  const current = child.stored();
  if (!published || !current?.ok || published.userInputs.get(uid) !== current.value) {
    await child.markPending(secretField(passwordSecretName));
    return;
  }
  const rejected = published.rejectedUsers.get(uid);
  if (rejected) {
    await writeStatus(ctx, obj, rejected, { userId: uid, ...secretField(passwordSecretName) });
    return;
  }
  const entry = published.users.get(uid);
  const ready: ReadyState = entry?.disabled
    ? { ready: true, reason: "Disabled", message: `user ${spec.username} is disabled: logins and existing tokens are refused` }
    : { ready: true, reason: "Materialized", message: `user ${spec.username} (${spec.role}) is enforced by the sidecar${spec.sso ? (password === undefined ? " (single sign-on only)" : " (password and single sign-on)") : ""}` };
  await writeStatus(ctx, obj, ready, { userId: uid, ...secretField(passwordSecretName), ...(entry ? { passwordChangedAt: entry.passwordChangedAt } : {}) });
}
