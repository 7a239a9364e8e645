// DaguAuth: keeps the operator state, materializes the initial admin, the basic
// credential and the signing keys, assembles the credentials document from what
// the children offered, and writes it (sharded past ~900 KiB) only when its
// content changed. Also owns the sidecar's RBAC, the password-changes Secret and
// the cert-manager Certificate. Every write is skipped when the live object
// already is what it would write, so a restart writes nothing.
import { createHash } from "node:crypto";
import {
  Credentials,
  DAGU_AUTH_NAME_MAX_LENGTH,
  DAGU_AUTH_NAME_MESSAGE,
  CREDENTIALS_KEY,
  DaguAuthSpec,
  SHARD_KEY,
  credentialsSecretName,
  initialAdminUserId,
  parsePasswordChanges,
  passwordChangesSecretName,
  loginThrottleSecretName,
  PASSWORD_CHANGES_KEY,
  parseDuration,
  shardCredentials,
  ssoUsersSecretName,
  type Condition,
  type PasswordChanges,
} from "../api/index.ts";
import { isShortTokenSecret, shortTokenSecretWarning, tokenSigningKey } from "../common/token-secret.ts";
import { stableStringify } from "../common/stable-json.ts";
import { writeStatus } from "./child-status.ts";
import { pending, readyIsCurrent } from "./conditions.ts";
import { isOwnedBy, keyOf, ownedSecret, splitKey, type OperatorContext } from "./context.ts";
import { secretData } from "../common/kube/secret-data.ts";
import type { AuthMaterials } from "./materials.ts";
import { assembleCredentials, type AdminInput } from "./credentials-assembly.ts";
import { certificate, loginThrottleSecret, passwordChangesSecret, sidecarObjects, sidecarRoleName, sidecarServiceAccountName, ssoUsersSecret, tlsSecretName } from "./auth-resources.ts";
import { forgetOidc, OIDC_CONDITION, planOidc, ssoUsersStatus } from "./oidc.ts";
import { operatorStateSecretName, resolvePassword, type PasswordRecord } from "./operator-state.ts";
import { asWritten, AuthStateStore } from "./dagu-auth-state-store.ts";
import { appliedId, carries, deleteIfOwned, ForeignObjectError, foreignObjects, kindAndName, ownedObjectConflict, pruneOwned } from "./owned-objects.ts";
import { planSigningKeys } from "./signing-keys.ts";
import { passwordProblem, readiness, tokenSecretProblem, type ReadinessFacts, type SecretValue } from "./dagu-auth-readiness.ts";
import { resolveRemoteNodes } from "./remote-nodes.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { secretValue } from "../common/kube/secret-data.ts";
import { CredentialsReadError, readCredentials } from "../common/credentials-secret.ts";
import type { Result } from "./runtime/work-queue.ts";

export const APPLIED_HASH_ANNOTATION = "auth.dagu.dev/applied-hash";
const BASIC_ID = "basic";
/** During a bulk apply, how often the children's hashes are saved before the last child answers. */
const CHILD_RECORDS_SAVE_MS = 5000;

async function readSecretKey(ctx: OperatorContext, namespace: string, ref: { name: string; key: string }, field: string): Promise<SecretValue> {
  const secret = await ctx.secrets.get(namespace, ref.name);
  if (!secret) return { ok: false, problem: { ready: false, reason: "SecretNotFound", message: `Secret ${ref.name} (${field}) does not exist` } };
  const value = secretData(secret)[ref.key];
  if (value === undefined) return { ok: false, problem: { ready: false, reason: "SecretKeyNotFound", message: `Secret ${ref.name} has no key ${ref.key} (${field}.key)` } };
  return { ok: true, value };
}

/** How often a DaguAuth stopped by someone else's object looks again (that object's deletion has no event of ours). */
export const CONFLICT_RECHECK_MS = 30_000;

export async function reconcileDaguAuth(ctx: OperatorContext, key: string): Promise<Result | undefined> {
  try {
    return await reconcile(ctx, key);
  } catch (err) {
    if (!(err instanceof ForeignObjectError)) throw err;
    // Found while writing (a shard or state bucket name taken, or an object created since the check).
    const { namespace, name } = splitKey(key);
    const auth = ctx.caches.auths.get(namespace, name);
    if (auth) await writeStatus(ctx, auth, ownedObjectConflict(auth, err.objects), {});
    return { requeueAfter: CONFLICT_RECHECK_MS };
  }
}

async function reconcile(ctx: OperatorContext, key: string): Promise<Result | undefined> {
  const { namespace, name } = splitKey(key);
  const auth = ctx.caches.auths.get(namespace, name);
  if (!auth || auth.metadata.deletionTimestamp) {
    // Owned objects go with it (owner references); its children learn from their own events.
    ctx.materials.dropAuth(key);
    forgetOidc(key);
    enqueueChildren(ctx, namespace, name);
    return;
  }
  const parsedSpec = DaguAuthSpec.safeParse(auth.spec ?? {});
  // The CRD refuses such a name; one created before that rule would break every write below.
  const invalid = !parsedSpec.success ? (parsedSpec.error.issues[0]?.message ?? "invalid spec") : name.length > DAGU_AUTH_NAME_MAX_LENGTH ? DAGU_AUTH_NAME_MESSAGE : undefined;
  if (invalid !== undefined || !parsedSpec.success) {
    await writeStatus(ctx, auth, { ready: false, reason: "InvalidSpec", message: invalid ?? "invalid spec" }, {});
    return;
  }
  const spec = parsedSpec.data;
  const materials = ctx.materials.of(key);
  // A role expression that does not compile is refused like an invalid spec: the document in force stays.
  const oidc = await planOidc(ctx, key, namespace, spec.mode === "builtin" ? spec.oidc : undefined);
  if (oidc.invalid) {
    await writeStatus(ctx, auth, oidc.invalid, {}, { [OIDC_CONDITION]: undefined });
    return;
  }

  // Our last writes not in the cache yet (the next reconcile often starts before the watch delivers
  // them): look again in a moment instead of reading them back from the API.
  if (await cacheLagsOurWrites(ctx, materials, namespace, name)) return { requeueAfter: CACHE_LAG_RETRY_MS };

  // 0. Nothing of anyone else's is taken over: the Secrets this DaguAuth keeps must be absent or its own
  //    (the sidecar's Role lets it patch the password-changes and SSO users Secrets by name).
  const stateName = operatorStateSecretName(name);
  const foreignSecrets: KubeObject[] = [];
  for (const secretName of [stateName, credentialsSecretName(name), passwordChangesSecretName(name), loginThrottleSecretName(name), ssoUsersSecretName(name)]) {
    const secret = await ctx.secrets.get(namespace, secretName);
    if (secret && !isOwnedBy(secret, auth)) foreignSecrets.push(secret);
  }
  if (foreignSecrets.length > 0) {
    await writeStatus(ctx, auth, ownedObjectConflict(auth, foreignSecrets), {});
    return { requeueAfter: CONFLICT_RECHECK_MS };
  }

  // 1. The operator state (created first: children need its fingerprint key).
  const opened = await AuthStateStore.open(ctx, auth, materials);
  if (opened.kind === "invalid") {
    await writeStatus(ctx, auth, { ready: false, reason: "StateInvalid", message: `Secret ${stateName}: ${opened.error.message}; delete it to start over (passwords are hashed again)` }, {});
    return;
  }
  if (opened.kind === "incomplete") return { requeueAfter: 1000 };
  const store = opened.store;
  if (opened.created) enqueueChildren(ctx, namespace, name);
  const state = store.state;

  /** What the readiness policies decide from (dagu-auth-readiness.ts), gathered on the way. */
  const found: Partial<ReadinessFacts> = oidc.problem ? { oidcProblem: oidc.problem } : {};
  let certManagerMissing = false;
  /** Accepted, but a person should know: in the Ready message and a Warning Event. */
  const warnings: string[] = [];
  const now = ctx.now();
  const passwords: Record<string, PasswordRecord> = {};
  let hashes = 0;
  const hash = (pw: string) => {
    hashes++;
    return ctx.hashPassword(pw);
  };
  const materialize = async (id: string, password: SecretValue, field: string): Promise<PasswordRecord | undefined> => {
    found.password = { field, value: password };
    if (!password.ok || passwordProblem(password, field)) return undefined;
    const r = await resolvePassword({ state, id, password: password.value, previous: state.passwords[id], change: undefined, hash, now: ctx.now });
    passwords[id] = r.record;
    return r.record;
  };

  // 2. Builtin: signing keys and the initial admin. Basic: the one credential.
  let signing;
  let admin: AdminInput | undefined;
  let basic;
  if (spec.mode === "builtin") {
    const token = spec.builtin?.token;
    let referencedSecret: string | undefined;
    if (token?.secretRef) {
      const v = await readSecretKey(ctx, namespace, token.secretRef, "spec.builtin.token.secretRef");
      found.tokenSecret = { ref: token.secretRef, value: v };
      if (v.ok && !tokenSecretProblem(token.secretRef, v)) {
        // A short secret (Dagu's own example is one) is accepted, stretched the same way as everywhere else.
        if (isShortTokenSecret(v.value)) warnings.push(shortTokenSecretWarning(`the token secret in Secret ${token.secretRef.name}`));
        referencedSecret = tokenSigningKey(v.value).toString("base64url");
      }
    }
    if (!token?.secretRef || referencedSecret !== undefined) {
      signing = planSigningKeys({
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
      const record = await materialize(id, await readSecretKey(ctx, namespace, ia.passwordSecretRef, "spec.builtin.initialAdmin.passwordSecretRef"), "spec.builtin.initialAdmin");
      if (record) admin = { id, username: ia.username, password: record };
    }
  } else if (spec.basic) {
    const record = await materialize(BASIC_ID, await readSecretKey(ctx, namespace, spec.basic.passwordSecretRef, "spec.basic.passwordSecretRef"), "spec.basic");
    if (record) basic = { username: spec.basic.username, password: record };
  }

  // A TLS Secret of the user's own must be there and hold a key pair: the sidecar serves nothing without it.
  if (spec.tls?.secretName && !spec.tls.issuerRef) {
    const tls = await ctx.secrets.get(namespace, spec.tls.secretName);
    found.tls = { secretName: spec.tls.secretName, data: tls ? secretData(tls) : undefined };
  }

  // Remote nodes: which Secrets hold their keys (the sidecar reads them itself).
  const remote = await resolveRemoteNodes(auth, spec, ctx.caches.apiKeys, ctx.secrets);

  // 3. Every child must have answered for its current generation, or a restart
  //    would publish a document that lacks users it has not reconciled yet.
  //    Only builtin mode has children; in basic mode they are refused (DaguAuthNotBuiltin) and never answer.
  const waiting = spec.mode === "builtin" ? unansweredChildren(ctx, namespace, name, materials) : 0;
  const ownRecords = {
    signingKeys: signing?.keys ?? state.signingKeys,
    signingRotation: signing?.rotation ?? state.signingRotation,
    signingReferenced: signing?.referenced ?? state.signingReferenced,
  };
  if (waiting > 0) {
    // Keep what this reconcile hashed or generated (initial admin, basic, signing keys), and, at most
    // every few seconds during a bulk apply, the hashes of the children that answered: an operator restarted
    // before the last child answers then hashes none of them again.
    const nowMs = now.getTime();
    const withChildren = nowMs - (materials.childRecordsSavedAt ?? 0) >= CHILD_RECORDS_SAVE_MS;
    const childPasswords: Record<string, PasswordRecord> = {};
    if (withChildren) for (const [uid, child] of materials.users) if (child.ok && child.value.password) childPasswords[uid] = child.value.password;
    await store.save({ ...state, passwords: { ...state.passwords, ...childPasswords, ...passwords }, ...ownRecords });
    if (withChildren && store.state !== state) materials.childRecordsSavedAt = nowMs;
    const conditions = (auth.status as { conditions?: Condition[] } | undefined)?.conditions;
    if (!readyIsCurrent(conditions, auth.metadata.generation ?? 0)) await writeStatus(ctx, auth, pending(`waiting for ${waiting} users, API keys and webhooks to be processed`), {});
    return;
  }

  // 4. Remember the source passwords of the children and keep the state current.
  for (const [uid, child] of materials.users) if (child.ok && child.value.password) passwords[uid] = child.value.password;
  await store.save({ ...state, passwords, ...ownRecords });

  // The sidecar's ServiceAccount, Role and RoleBinding and the Certificate: a name someone else's object
  // holds is skipped (and reported), and so is a RoleBinding that would bind someone else's ServiceAccount
  // or Role: that would grant the credentials to whoever runs as it. Nothing is pruned meanwhile, so a
  // sidecar running under the previous name keeps working.
  const cert = certificate(auth, spec);
  const foreign = await foreignObjects(ctx, auth, [...sidecarObjects(auth, spec, []), ...(cert ? [cert] : [])]);
  const taken = new Set(foreign.map(kindAndName));
  if (taken.has(`ServiceAccount/${sidecarServiceAccountName(auth, spec)}`) || taken.has(`Role/${sidecarRoleName(auth)}`)) taken.add(`RoleBinding/${sidecarRoleName(auth)}`);
  const allowed = (objects: KubeObject[]) => objects.filter((o) => !taken.has(kindAndName(o)));
  if (foreign.length > 0) {
    const fields: Record<string, string> = {};
    if (spec.sidecar?.serviceAccountName) fields[`ServiceAccount/${spec.sidecar.serviceAccountName}`] = "spec.sidecar.serviceAccountName";
    if (cert) fields[kindAndName(cert)] = "spec.tls.issuerRef";
    found.conflict = ownedObjectConflict(auth, foreign, fields);
  }

  // 5. The credentials document.
  const readChanges = readPasswordChanges(await ctx.secrets.get(namespace, passwordChangesSecretName(name)));
  if (readChanges) materials.passwordChanges = readChanges;
  else {
    // Dropping the changes would bring back passwords users changed (perhaps because they leaked).
    found.passwordChangesInvalid = { secretName: passwordChangesSecretName(name) };
  }
  const changes = materials.passwordChanges ?? {};
  const assembly = assembleCredentials({ authName: name, authUid: auth.metadata.uid!, namespace, spec, materials, ...(admin ? { admin } : {}), ...(basic ? { basic } : {}), ...(signing ? { signing } : {}), ...(oidc.settings ? { oidc: oidc.settings } : {}), changes, remoteNodes: remote.nodes });
  const existing = await readCurrentCredentials(ctx, materials, namespace, name);
  // A generation is never reused (the sidecar ignores a repeated one), whatever a cache says.
  let generation = Math.max(existing?.generation ?? 0, materials.published?.generation ?? 0);
  let shardNames = existing?.shardNames ?? [];
  const sameContent = existing !== undefined && stableStringify(assembly.document) === comparableText(existing);
  if (!sameContent) {
    const canWrite = !(spec.mode === "basic" && !basic) && !(spec.mode === "builtin" && !signing);
    if (canWrite) {
      generation += 1;
      const doc = Credentials.parse({ ...assembly.document, generation });
      // The sidecar's Role must name new shards before the index that points to them is written.
      const allowShards = (names: readonly string[]) => Promise.all(allowed(sidecarObjects(auth, spec, [...new Set([...(existing?.shardNames ?? []), ...names])], remote.secretNames)).map((o) => applyIfChanged(ctx, auth, o)));
      const written = await writeCredentials(ctx, auth, doc, existing?.shardNames ?? [], allowShards);
      shardNames = written.shardNames;
      materials.writtenCredentials = { resourceVersion: written.resourceVersion, current: { generation, document: doc, shardNames }, at: Date.now() };
    }
  }

  // 6. Supporting objects, each written only when it differs from what was applied; what it
  //    owned before and no longer wants is deleted.
  const supporting = sidecarObjects(auth, spec, shardNames, remote.secretNames);
  for (const obj of allowed(supporting)) await applyIfChanged(ctx, auth, obj);
  if (cert && allowed([cert]).length > 0) {
    await applyIfChanged(ctx, auth, cert).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 404) throw err;
      certManagerMissing = true;
    });
  }
  if (foreign.length === 0) {
    const pruned = await pruneOwned(ctx, auth, new Set([...supporting, ...(cert ? [cert] : [])].map(appliedId)));
    for (const what of pruned) ctx.events.normal(auth, "Pruned", `deleted ${what}, which this DaguAuth no longer uses`);
  }
  for (const created of [passwordChangesSecret(auth), loginThrottleSecret(auth), ssoUsersSecret(auth)]) {
    if (await ctx.secrets.get(namespace, created.metadata.name!)) continue;
    await ctx.writer.create(created).catch((err: unknown) => {
      if ((err as { code?: number }).code !== 409) throw err;
    });
  }

  // 7. Hand the result to the children, then the status.
  const previous = materials.published;
  materials.published = {
    generation,
    users: new Map(assembly.document.users.map((u) => [u.id, u])),
    userInputs: assembly.userInputs,
    rejectedUsers: assembly.rejectedUsers,
    apiKeyInputs: assembly.apiKeyInputs,
    webhookInputs: assembly.webhookInputs,
    rejectedWebhooks: assembly.rejectedWebhooks,
  };
  if (!previous || previous.generation !== generation || !sameContent) enqueueChildren(ctx, namespace, name);
  else enqueueChildrenOnce(ctx, namespace, name, previous);

  const ready = readiness({
    ...found,
    spec,
    remoteNodeProblems: remote.problems,
    certManagerMissing,
    document: { generation, users: assembly.document.users, apiKeys: assembly.document.apiKeys.length, webhooks: assembly.document.webhooks.length },
  });
  if (warnings.length > 0) ready.message += `; warning: ${warnings.join("; ")}`;
  const wrote = await writeStatus(ctx, auth, ready, {
    credentialsSecretName: credentialsSecretName(name),
    credentialsGeneration: generation,
    users: assembly.document.users.length + (assembly.document.basic ? 1 : 0),
    apiKeys: new Set(assembly.document.apiKeys.map((k) => k.id)).size,
    webhooks: assembly.document.webhooks.length,
    serviceAccountName: sidecarServiceAccountName(auth, spec),
    ...(spec.tls ? { tlsSecretName: tlsSecretName(auth, spec) } : {}),
    ...(oidc.settings ? ssoUsersStatus(await ctx.secrets.get(namespace, ssoUsersSecretName(name)), assembly.document.users) : {}),
  }, { [OIDC_CONDITION]: oidc.condition });
  // With the status change that shows it, not on every reconcile.
  if (wrote) for (const w of warnings) ctx.events.warning(auth, "TokenSecretShort", w);
  if (hashes > 0) ctx.log.debug({ daguAuth: key, hashes }, "hashed passwords");
  const nextKeyChange = signing?.keys.map((k) => (k.notAfter ? Date.parse(k.notAfter) - now.getTime() + 1000 : Infinity)).reduce((a, b) => Math.min(a, b), Infinity) ?? Infinity;
  // A remote node's key Secret appears when its DaguApiKey is reconciled: look again shortly.
  const next = Math.min(nextKeyChange, remote.problems.length > 0 ? REMOTE_NODE_RETRY_MS : Infinity, oidc.requeueAfterMs ?? Infinity);
  return Number.isFinite(next) ? { requeueAfter: Math.max(1000, next) } : undefined;
}

const REMOTE_NODE_RETRY_MS = 5000;

/** How long a difference between the cache and our last write counts as the cache lagging. */
const CACHE_LAG_MS = 2000;
const CACHE_LAG_RETRY_MS = 50;

async function cacheLagsOurWrites(ctx: OperatorContext, materials: AuthMaterials, namespace: string, authName: string): Promise<boolean> {
  const writes: [string, { resourceVersion: string | undefined }, number][] = [];
  if (materials.writtenState) for (const [name, w] of materials.writtenState.secrets) writes.push([name, w, materials.writtenState.at]);
  if (materials.writtenCredentials) writes.push([credentialsSecretName(authName), materials.writtenCredentials, materials.writtenCredentials.at]);
  const now = Date.now();
  for (const [name, { resourceVersion }, at] of writes) {
    // Past the window the difference is someone else's change: the readers below ask the API.
    if (now - at < CACHE_LAG_MS && (await ctx.secrets.get(namespace, name))?.metadata.resourceVersion !== resourceVersion) return true;
  }
  return false;
}

function childrenOf(ctx: OperatorContext, namespace: string, authName: string) {
  const refersTo = (o: KubeObject) => (o.spec as { authRef?: { name?: string } } | undefined)?.authRef?.name === authName && !o.metadata.deletionTimestamp;
  return {
    users: ctx.caches.users.list(namespace).filter(refersTo),
    apiKeys: ctx.caches.apiKeys.list(namespace).filter(refersTo),
    webhooks: ctx.caches.webhooks.list(namespace).filter(refersTo),
  };
}

function enqueueChildren(ctx: OperatorContext, namespace: string, authName: string): void {
  const c = childrenOf(ctx, namespace, authName);
  for (const o of c.users) ctx.enqueue.user(keyOf(o));
  for (const o of c.apiKeys) ctx.enqueue.apiKey(keyOf(o));
  for (const o of c.webhooks) ctx.enqueue.webhook(keyOf(o));
}

/** Same generation: only children whose input is newer than what was published need a look. */
function enqueueChildrenOnce(ctx: OperatorContext, namespace: string, authName: string, previous: NonNullable<ReturnType<OperatorContext["materials"]["of"]>["published"]>): void {
  const m = ctx.materials.of(`${namespace}/${authName}`);
  const c = childrenOf(ctx, namespace, authName);
  for (const o of c.users) {
    const input = m.users.get(o.metadata.uid!);
    if (input?.ok && previous.userInputs.get(o.metadata.uid!) !== input.value) ctx.enqueue.user(keyOf(o));
  }
  for (const o of c.apiKeys) {
    const input = m.apiKeys.get(o.metadata.uid!);
    if (input?.ok && previous.apiKeyInputs.get(o.metadata.uid!) !== input.value) ctx.enqueue.apiKey(keyOf(o));
  }
  for (const o of c.webhooks) {
    const input = m.webhooks.get(o.metadata.uid!);
    if (input?.ok && previous.webhookInputs.get(o.metadata.uid!) !== input.value) ctx.enqueue.webhook(keyOf(o));
  }
}

function unansweredChildren(ctx: OperatorContext, namespace: string, authName: string, m: ReturnType<OperatorContext["materials"]["of"]>): number {
  const c = childrenOf(ctx, namespace, authName);
  const answered = (map: Map<string, { generation: number }>, o: KubeObject) => map.get(o.metadata.uid!)?.generation === (o.metadata.generation ?? 0);
  return c.users.filter((o) => !answered(m.users, o)).length + c.apiKeys.filter((o) => !answered(m.apiKeys, o)).length + c.webhooks.filter((o) => !answered(m.webhooks, o)).length;
}

/** The self-service changes; undefined when the document cannot be read. */
function readPasswordChanges(secret: KubeObject | undefined): PasswordChanges | undefined {
  const raw = secretData(secret)[PASSWORD_CHANGES_KEY];
  if (!raw) return {};
  const parsed = parsePasswordChanges(raw);
  return parsed.success ? parsed.data : undefined;
}

interface CurrentCredentials {
  generation: number;
  document: Credentials;
  shardNames: string[];
  /** comparableText(), kept with the parsed Secret: a restart compares a 1,400-entry document many times. */
  comparable?: string;
}

/** The stored document as an assembly is compared with it (the generation aside). */
function comparableText(existing: CurrentCredentials): string {
  return (existing.comparable ??= stableStringify({ ...existing.document, generation: undefined }));
}

// Parsed documents by Secret object (the cache hands out the same frozen object until
// the Secret changes): a DaguAuth reconciled many times parses its document once.
const parsedCredentials = new WeakMap<KubeObject, CurrentCredentials | undefined>();

/**
 * The credentials document in force. What this operator last wrote, while the Secret keeps the
 * resourceVersion it got: the cache may lag our own write, and comparing with a stale document would
 * write the same content again under a new generation (and make every child look again).
 */
async function readCurrentCredentials(ctx: OperatorContext, materials: AuthMaterials, namespace: string, authName: string): Promise<CurrentCredentials | undefined> {
  const name = credentialsSecretName(authName);
  let secret: KubeObject | undefined;
  const written = materials.writtenCredentials;
  if (written) {
    const check = await asWritten(ctx, namespace, name, written.resourceVersion);
    if (check.ours) return written.current;
    materials.writtenCredentials = undefined; // someone else changed it: read what is there
    secret = check.live;
  } else secret = await ctx.secrets.get(namespace, name);
  if (secret && parsedCredentials.has(secret)) return parsedCredentials.get(secret);
  const current = await parseCurrentCredentials(ctx, namespace, secret);
  if (secret) parsedCredentials.set(secret, current);
  return current;
}

async function parseCurrentCredentials(ctx: OperatorContext, namespace: string, secret: KubeObject | undefined): Promise<CurrentCredentials | undefined> {
  const raw = secretValue(secret, CREDENTIALS_KEY);
  if (!raw) return undefined;
  try {
    const { credentials, index } = await readCredentials(raw, async (ref) => secretValue(await ctx.secrets.get(namespace, ref.secretName), ref.key));
    return { generation: index?.generation ?? credentials.generation, document: credentials, shardNames: index?.shards.map((s) => s.secretName) ?? [] };
  } catch (err) {
    // A fetch that failed is retried with the reconcile; a document that is not valid is rewritten from scratch.
    if (err instanceof CredentialsReadError) {
      if (err.stage === "fetch") throw err.cause;
      return undefined;
    }
    throw err;
  }
}

/** Writes the document inline, or its shards then the index (the commit point); returns the shards in use and the version written. */
async function writeCredentials(
  ctx: OperatorContext,
  auth: KubeObject,
  doc: Credentials,
  oldShards: readonly string[],
  allowShards: (names: readonly string[]) => Promise<unknown>,
): Promise<{ shardNames: string[]; resourceVersion: string | undefined }> {
  const name = auth.metadata.name!;
  const json = JSON.stringify(doc);
  let value = json;
  let shardNames: string[] = [];
  if (Buffer.byteLength(json) > ctx.maxInlineBytes) {
    // Shards take two thirds of the limit: base64 inflates them by a third.
    const { index, shards } = shardCredentials(json, name, doc.generation, Math.floor((ctx.maxInlineBytes * 2) / 3));
    for (const s of shards) {
      const live = await ctx.secrets.get(auth.metadata.namespace!, s.secretName);
      if (live && !isOwnedBy(live, auth)) throw new ForeignObjectError([live]);
      await ctx.writer.apply(ownedSecret(auth, s.secretName, { [SHARD_KEY]: JSON.stringify(s.shard) }, { authName: name }));
    }
    value = JSON.stringify(index);
    shardNames = shards.map((s) => s.secretName);
    await allowShards(shardNames);
  }
  const applied = await ctx.writer.apply(ownedSecret(auth, credentialsSecretName(name), { [CREDENTIALS_KEY]: value }, { authName: name }));
  for (const old of oldShards) if (!shardNames.includes(old)) await deleteIfOwned(ctx, auth, "v1", "Secret", auth.metadata.namespace!, old);
  ctx.log.info({ daguAuth: `${auth.metadata.namespace}/${name}`, generation: doc.generation, users: doc.users.length, apiKeys: doc.apiKeys.length, webhooks: doc.webhooks.length, shards: shardNames.length }, "credentials written");
  return { shardNames, resourceVersion: applied.metadata.resourceVersion };
}

async function applyIfChanged(ctx: OperatorContext, auth: KubeObject, obj: KubeObject): Promise<void> {
  const digest = createHash("sha256").update(stableStringify(obj)).digest("hex").slice(0, 32);
  const id = appliedId(obj);
  if (ctx.applied.get(id)?.digest === digest) return;
  const desired = { ...obj, metadata: { ...obj.metadata, annotations: { ...obj.metadata.annotations, [APPLIED_HASH_ANNOTATION]: digest } } };
  // After a restart, or after its informer saw it deleted or edited, the live object tells.
  const live = await ctx.writer.get(obj.apiVersion!, obj.kind!, obj.metadata.namespace!, obj.metadata.name!).catch(() => undefined);
  if (live && !isOwnedBy(live, auth)) throw new ForeignObjectError([live]);
  // Remembered before the write: the watch event of our own apply must find it (owned-objects.ts).
  ctx.applied.set(id, { digest, object: desired });
  if (live && carries(live, desired)) return;
  try {
    await ctx.writer.apply(desired);
  } catch (err) {
    ctx.applied.delete(id);
    throw err;
  }
}
