// DaguApiKey: a `dagu_` key generated once into the consumer Secret, its SHA-256
// digest (never the key) handed to the DaguAuth; rotation keeps the previous key
// valid for the overlap; expiry takes it out of the credentials.
import { DaguApiKey, type CredentialApiKey } from "../api/index.ts";
import { generateApiKey, keyPrefix, sha256Hex } from "../common/tokens.ts";
import { writeStatus } from "./child-status.ts";
import { startChild, type ChildAccess } from "./child-reconcile.ts";
import type { ReadyState } from "./conditions.ts";
import { ensureConsumerSecret, type ConsumerSecretAccess } from "./consumer-secret.ts";
import { nextTransition } from "./generated-secret.ts";
import type { Result } from "./runtime/work-queue.ts";

export const API_KEY_SECRET_KEY = "apiKey";

/** What a DaguApiKey reconcile may touch: the child's start and its consumer Secret, nothing more. */
export type DaguApiKeyAccess = ChildAccess<"apiKeys"> & ConsumerSecretAccess;

export async function reconcileDaguApiKey(ctx: DaguApiKeyAccess, key: string): Promise<Result | undefined> {
  const child = await startChild(ctx, "apiKeys", key, DaguApiKey, "keyId");
  if (!child) return;
  const { obj, name, uid, generation, spec } = child;

  const secret = await ensureConsumerSecret(ctx, obj, spec.secretName, "spec.secretName", { [API_KEY_SECRET_KEY]: generateApiKey }, spec.rotation);
  if (!secret.ok) return child.fail(secret.problem, {});
  const { plan } = secret;
  const now = ctx.now();
  const current = plan.current[API_KEY_SECRET_KEY]!;
  const base = { id: uid, name, role: spec.role, allowedSurfaces: spec.allowedSurfaces, ...(spec.description ? { description: spec.description } : {}) };
  const expired = spec.expiresAt !== undefined && Date.parse(spec.expiresAt) <= now.getTime();
  const entries: CredentialApiKey[] = [];
  if (!expired) {
    entries.push({ ...base, digest: sha256Hex(current), prefix: keyPrefix(current), createdAt: plan.issuedAt, ...(spec.expiresAt ? { expiresAt: spec.expiresAt } : {}) });
    const previous = plan.previous?.values[API_KEY_SECRET_KEY];
    if (previous) entries.push({ ...base, digest: sha256Hex(previous), prefix: keyPrefix(previous), createdAt: plan.issuedAt, notAfter: plan.previous!.notAfter });
  }
  // Come back when the entries change by themselves: the overlap ends, the key expires.
  const transitions = [nextTransition(plan, now), spec.expiresAt && !expired ? Date.parse(spec.expiresAt) - now.getTime() + 1000 : undefined].filter((v): v is number => v !== undefined);
  child.offer({ ok: true, generation, value: { entries } });
  const requeue = transitions.length > 0 ? { requeueAfter: Math.min(...transitions) } : undefined;

  // Ready only once the credentials the sidecar reads hold exactly this offer.
  const published = child.materials.published;
  const stored = child.stored();
  if (!published || !stored?.ok || published.apiKeyInputs.get(uid) !== stored.value) {
    await child.markPending({});
    return requeue;
  }
  const ready: ReadyState = expired
    ? { ready: false, reason: "Expired", message: `the key expired at ${spec.expiresAt}; it is no longer accepted` }
    : { ready: true, reason: "Materialized", message: `API key (${spec.role}) is enforced by the sidecar${plan.previous ? `; the previous key works until ${plan.previous.notAfter}` : ""}` };
  await writeStatus(ctx, obj, ready, {
    keyId: uid,
    keyPrefix: keyPrefix(current),
    ...(spec.expiresAt ? { expiresAt: spec.expiresAt } : {}),
    rotatedAt: plan.issuedAt,
    rotationGeneration: plan.rotationGeneration,
  });
  return requeue;
}
