// DaguAuth: a short sequence of owned steps, each given only the capabilities it needs (the way
// cert-manager splits a certificate's lifecycle):
//   spec and OIDC -> nothing of anyone else's -> state store (dagu-auth-state-store.ts) -> own credentials
//   (dagu-auth-own-credentials.ts) -> wait for the children (dagu-auth-children.ts) -> sidecar objects'
//   names (dagu-auth-sidecar-objects.ts) -> credentials writer (dagu-auth-credentials-writer.ts) -> sidecar
//   objects -> publish to the children -> readiness (dagu-auth-readiness.ts) and status.
// A step that cannot go on ends the reconcile with the condition that says why. Every write is skipped
// when the live object already is what it would write, so a restart writes nothing.
import {
  DAGU_AUTH_NAME_MAX_LENGTH,
  DAGU_AUTH_NAME_MESSAGE,
  DaguAuthSpec,
  credentialsSecretName,
  loginThrottleSecretName,
  parsePasswordChanges,
  passwordChangesSecretName,
  PASSWORD_CHANGES_KEY,
  ssoUsersSecretName,
  type Condition,
  type PasswordChanges,
} from "../api/index.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { secretData } from "../common/kube/secret-data.ts";
import { writeStatus } from "./child-status.ts";
import { pending, readyIsCurrent } from "./conditions.ts";
import { isOwnedBy, splitKey, type OperatorContext, type SecretReader } from "./context.ts";
import type { AuthMaterials } from "./materials.ts";
import { assembleCredentials } from "./credentials-assembly.ts";
import { forgetOidc, OIDC_CONDITION, planOidc, type OidcPlan } from "./oidc.ts";
import { operatorStateSecretName, type OperatorState, type PasswordRecord } from "./operator-state.ts";
import type { SigningKeysPlan } from "./signing-keys.ts";
import { AuthStateStore } from "./dagu-auth-state-store.ts";
import { canWriteCredentials, ownCredentials, type OwnCredentials } from "./dagu-auth-own-credentials.ts";
import { enqueueChildren, publishToChildren, unansweredChildren } from "./dagu-auth-children.ts";
import { writeAuthStatus } from "./dagu-auth-status.ts";
import { SidecarObjects } from "./dagu-auth-sidecar-objects.ts";
import { writeCredentialsIfChanged } from "./dagu-auth-credentials-writer.ts";
import { ForeignObjectError, ownedObjectConflict } from "./owned-objects.ts";
import type { ReadinessFacts } from "./dagu-auth-readiness.ts";
import { resolveRemoteNodes } from "./remote-nodes.ts";
import type { Result } from "./runtime/work-queue.ts";
import { failpoint } from "./runtime/failpoint.ts";

/** During a bulk apply, how often the children's hashes are saved before the last child answers. */
const CHILD_RECORDS_SAVE_MS = 5000;
/** How often a DaguAuth stopped by someone else's object looks again (that object's deletion has no event of ours). */
export const CONFLICT_RECHECK_MS = 30_000;
const REMOTE_NODE_RETRY_MS = 5000;
/** How long a difference between the cache and our last write counts as the cache lagging. */
const CACHE_LAG_MS = 2000;
const CACHE_LAG_RETRY_MS = 50;

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

/** A step that ends the reconcile, with what to tell the queue (a condition was written where one applies). */
interface Stop {
  stop: Result | undefined;
}

async function reconcile(ctx: OperatorContext, key: string): Promise<Result | undefined> {
  const { namespace, name } = splitKey(key);
  const auth = ctx.caches.auths.get(namespace, name);
  if (!auth || auth.metadata.deletionTimestamp) return forget(ctx, key);
  const admitted = await admit(ctx, auth, key);
  if ("stop" in admitted) return admitted.stop;
  const { spec, oidc } = admitted;
  const materials = ctx.materials.of(key);
  // Our last writes not in the cache yet (the next reconcile often starts before the watch delivers
  // them): look again in a moment instead of reading them back from the API.
  if (await cacheLagsOurWrites(ctx.secrets, materials, namespace, name)) return { requeueAfter: CACHE_LAG_RETRY_MS };
  const taken = await ownSecretsTaken(ctx, auth);
  if (taken) return taken.stop;

  const opened = await openState(ctx, auth, materials);
  if ("stop" in opened) return opened.stop;
  const { store } = opened;
  const state = store.state;
  const now = ctx.now();
  const own = await ownCredentials(ctx, auth, spec, state, now);
  /** What the readiness policies decide from, gathered on the way. */
  const found: Partial<ReadinessFacts> = { ...(oidc.problem ? { oidcProblem: oidc.problem } : {}), ...own.facts, ...(await tlsFacts(ctx.secrets, auth, spec)) };
  // Remote nodes: which Secrets hold their keys (the sidecar reads them itself).
  const remote = await resolveRemoteNodes(auth, spec, ctx.caches.apiKeys, ctx.secrets);
  const waited = await waitForChildren(ctx, auth, spec, store, own, materials, now);
  if (waited) return waited.stop;
  // The source passwords of the children are remembered; the state keeps only what is in use.
  await store.save({ ...state, passwords: { ...own.passwords, ...childPasswords(materials) }, ...signingRecords(state, own) });

  const sidecar = await SidecarObjects.check(ctx, auth, spec, remote.secretNames);
  if (sidecar.conflict) found.conflict = sidecar.conflict;
  const changes = passwordChangesInForce(materials, await ctx.secrets.get(namespace, passwordChangesSecretName(name)));
  // Dropping the changes would bring back passwords users changed (perhaps because they leaked).
  if (!changes.intact) found.passwordChangesInvalid = { secretName: passwordChangesSecretName(name) };
  const assembly = assembleCredentials({ authName: name, authUid: auth.metadata.uid!, namespace, spec, materials, ...(own.admin ? { admin: own.admin } : {}), ...(own.basic ? { basic: own.basic } : {}), ...(own.signing ? { signing: own.signing } : {}), ...(oidc.settings ? { oidc: oidc.settings } : {}), changes: changes.inForce, remoteNodes: remote.nodes });
  const written = await writeCredentialsIfChanged(ctx, auth, materials, { document: assembly.document, canWrite: canWriteCredentials(spec, own), allowShards: sidecar.allowShards });
  // The hashes in that document were remembered (store.save above) before it was written: a kill here rehashes nothing.
  if (!written.sameContent) failpoint("after-credentials-write");
  const { certManagerMissing } = await sidecar.apply(written.shardNames);

  publishToChildren(ctx, namespace, name, materials, { generation: written.generation, assembly, sameContent: written.sameContent });
  await writeAuthStatus(ctx, auth, {
    spec,
    facts: { ...found, remoteNodeProblems: remote.problems, certManagerMissing },
    document: assembly.document,
    generation: written.generation,
    warnings: own.warnings,
    sso: oidc.settings !== undefined,
    oidcCondition: oidc.condition,
  });
  if (own.hashes > 0) ctx.log.debug({ daguAuth: key, hashes: own.hashes }, "hashed passwords");
  return nextLook(own.signing, remote.problems.length > 0, oidc.requeueAfterMs, now);
}

/** Gone: owned objects go with it (owner references); its children learn from their own events. */
function forget(ctx: OperatorContext, key: string): undefined {
  const { namespace, name } = splitKey(key);
  ctx.materials.dropAuth(key);
  forgetOidc(key);
  enqueueChildren(ctx, namespace, name);
  return undefined;
}

/** The spec, and the OIDC plan: an invalid spec or role expression stops here, and the document in force stays. */
async function admit(ctx: OperatorContext, auth: KubeObject, key: string): Promise<Stop | { spec: DaguAuthSpec; oidc: OidcPlan }> {
  const parsedSpec = DaguAuthSpec.safeParse(auth.spec ?? {});
  // The CRD refuses such a name; one created before that rule would break every write below.
  const invalid = !parsedSpec.success ? (parsedSpec.error.issues[0]?.message ?? "invalid spec") : auth.metadata.name!.length > DAGU_AUTH_NAME_MAX_LENGTH ? DAGU_AUTH_NAME_MESSAGE : undefined;
  if (invalid !== undefined || !parsedSpec.success) {
    await writeStatus(ctx, auth, { ready: false, reason: "InvalidSpec", message: invalid ?? "invalid spec" }, {});
    return { stop: undefined };
  }
  const spec = parsedSpec.data;
  const oidc = await planOidc(ctx, key, auth.metadata.namespace!, spec.mode === "builtin" ? spec.oidc : undefined);
  if (oidc.invalid) {
    await writeStatus(ctx, auth, oidc.invalid, {}, { [OIDC_CONDITION]: undefined });
    return { stop: undefined };
  }
  return { spec, oidc };
}

/**
 * Nothing of anyone else's is taken over: the Secrets this DaguAuth keeps must be absent or its own (the
 * sidecar's Role lets it patch the password-changes and SSO users Secrets by name).
 */
async function ownSecretsTaken(ctx: OperatorContext, auth: KubeObject): Promise<Stop | undefined> {
  const name = auth.metadata.name!;
  const foreign: KubeObject[] = [];
  for (const secretName of [operatorStateSecretName(name), credentialsSecretName(name), passwordChangesSecretName(name), loginThrottleSecretName(name), ssoUsersSecretName(name)]) {
    const secret = await ctx.secrets.get(auth.metadata.namespace!, secretName);
    if (secret && !isOwnedBy(secret, auth)) foreign.push(secret);
  }
  if (foreign.length === 0) return undefined;
  await writeStatus(ctx, auth, ownedObjectConflict(auth, foreign), {});
  return { stop: { requeueAfter: CONFLICT_RECHECK_MS } };
}

/** The operator state, created first: the children need its fingerprint key (and are told when it is new). */
async function openState(ctx: OperatorContext, auth: KubeObject, materials: AuthMaterials): Promise<Stop | { store: AuthStateStore }> {
  const opened = await AuthStateStore.open(ctx, auth, materials);
  if (opened.kind === "invalid") {
    await writeStatus(ctx, auth, { ready: false, reason: "StateInvalid", message: `Secret ${operatorStateSecretName(auth.metadata.name!)}: ${opened.error.message}; delete it to start over (passwords are hashed again)` }, {});
    return { stop: undefined };
  }
  if (opened.kind === "incomplete") return { stop: { requeueAfter: 1000 } };
  if (opened.created) enqueueChildren(ctx, auth.metadata.namespace!, auth.metadata.name!);
  return { store: opened.store };
}

/** A TLS Secret of the user's own must be there and hold a key pair: the sidecar serves nothing without it. */
async function tlsFacts(secrets: SecretReader, auth: KubeObject, spec: DaguAuthSpec): Promise<Pick<ReadinessFacts, "tls">> {
  if (!spec.tls?.secretName || spec.tls.issuerRef) return {};
  const tls = await secrets.get(auth.metadata.namespace!, spec.tls.secretName);
  return { tls: { secretName: spec.tls.secretName, data: tls ? secretData(tls) : undefined } };
}

/**
 * Every child must have answered for its current generation, or a restart would publish a document that
 * lacks users it has not reconciled yet. Only builtin mode has children; in basic mode they are refused
 * (DaguAuthNotBuiltin) and never answer. Meanwhile what this reconcile hashed or generated is kept, and,
 * at most every few seconds during a bulk apply, the hashes of the children that answered: an operator
 * restarted before the last child answers then hashes none of them again.
 */
async function waitForChildren(ctx: OperatorContext, auth: KubeObject, spec: DaguAuthSpec, store: AuthStateStore, own: OwnCredentials, materials: AuthMaterials, now: Date): Promise<Stop | undefined> {
  const waiting = spec.mode === "builtin" ? unansweredChildren(ctx, auth.metadata.namespace!, auth.metadata.name!, materials) : 0;
  if (waiting === 0) return undefined;
  const state = store.state;
  const nowMs = now.getTime();
  const withChildren = nowMs - (materials.childRecordsSavedAt ?? 0) >= CHILD_RECORDS_SAVE_MS;
  await store.save({ ...state, passwords: { ...state.passwords, ...(withChildren ? childPasswords(materials) : {}), ...own.passwords }, ...signingRecords(state, own) });
  if (withChildren && store.state !== state) materials.childRecordsSavedAt = nowMs;
  const conditions = (auth.status as { conditions?: Condition[] } | undefined)?.conditions;
  if (!readyIsCurrent(conditions, auth.metadata.generation ?? 0)) await writeStatus(ctx, auth, pending(`waiting for ${waiting} users, API keys and webhooks to be processed`), {});
  return { stop: undefined };
}

/** The signing keys to remember: this reconcile's plan, else what the state holds. */
function signingRecords(state: OperatorState, own: OwnCredentials): Pick<OperatorState, "signingKeys" | "signingRotation" | "signingReferenced"> {
  return {
    signingKeys: own.signing?.keys ?? state.signingKeys,
    signingRotation: own.signing?.rotation ?? state.signingRotation,
    signingReferenced: own.signing?.referenced ?? state.signingReferenced,
  };
}

/** When to look again: a signing key's change, a remote node's key Secret to appear, the OIDC provider's next probe. */
function nextLook(signing: SigningKeysPlan | undefined, remoteNodeProblems: boolean, oidcRequeueAfterMs: number | undefined, now: Date): Result | undefined {
  const nextKeyChange = signing?.keys.map((k) => (k.notAfter ? Date.parse(k.notAfter) - now.getTime() + 1000 : Infinity)).reduce((a, b) => Math.min(a, b), Infinity) ?? Infinity;
  // A remote node's key Secret appears when its DaguApiKey is reconciled: look again shortly.
  const next = Math.min(nextKeyChange, remoteNodeProblems ? REMOTE_NODE_RETRY_MS : Infinity, oidcRequeueAfterMs ?? Infinity);
  return Number.isFinite(next) ? { requeueAfter: Math.max(1000, next) } : undefined;
}

/** The password records the children offered, by user uid. */
function childPasswords(materials: AuthMaterials): Record<string, PasswordRecord> {
  const passwords: Record<string, PasswordRecord> = {};
  for (const [uid, child] of materials.users) if (child.ok && child.value.password) passwords[uid] = child.value.password;
  return passwords;
}

/** The self-service password changes: the Secret's, or, when it cannot be read, the ones last read intact. */
function passwordChangesInForce(materials: AuthMaterials, secret: KubeObject | undefined): { inForce: PasswordChanges; intact: boolean } {
  const raw = secretData(secret)[PASSWORD_CHANGES_KEY];
  const parsed = raw ? parsePasswordChanges(raw) : { success: true as const, data: {} };
  if (parsed.success) materials.passwordChanges = parsed.data;
  return { inForce: materials.passwordChanges ?? {}, intact: parsed.success };
}

async function cacheLagsOurWrites(secrets: SecretReader, materials: AuthMaterials, namespace: string, authName: string): Promise<boolean> {
  const writes: [string, { resourceVersion: string | undefined }, number][] = [];
  if (materials.writtenState) for (const [name, w] of materials.writtenState.secrets) writes.push([name, w, materials.writtenState.at]);
  if (materials.writtenCredentials) writes.push([credentialsSecretName(authName), materials.writtenCredentials, materials.writtenCredentials.at]);
  const now = Date.now();
  for (const [name, { resourceVersion }, at] of writes) {
    // Past the window the difference is someone else's change: the readers below ask the API.
    if (now - at < CACHE_LAG_MS && (await secrets.get(namespace, name))?.metadata.resourceVersion !== resourceVersion) return true;
  }
  return false;
}
