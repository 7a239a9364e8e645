// DaguApiKey: a `dagu_` key generated once into the consumer Secret, its SHA-256
// digest (never the key) handed to the DaguAuth; rotation keeps the previous key
// valid for the overlap; expiry takes it out of the credentials.
import { DaguApiKey, type CredentialApiKey } from "../api/index.ts";
import { generateApiKey, keyPrefix, sha256Hex } from "../common/tokens.ts";
import { deepEqualJson } from "../common/stable-json.ts";
import { findAuth, writeStatus } from "./child-status.ts";
import type { ReadyState } from "./conditions.ts";
import { ensureConsumerSecret } from "./consumer-secret.ts";
import { splitKey, type OperatorContext } from "./context.ts";
import { nextTransition } from "./generated-secret.ts";
import type { ApiKeyInput, ChildInput } from "./materials.ts";
import type { Result } from "./runtime/work-queue.ts";

export const API_KEY_SECRET_KEY = "apiKey";

export async function reconcileDaguApiKey(ctx: OperatorContext, key: string): Promise<Result | undefined> {
  const { namespace, name } = splitKey(key);
  const obj = ctx.caches.apiKeys.get(namespace, name);
  if (!obj || obj.metadata.deletionTimestamp) {
    for (const authKey of ctx.materials.forgetKey("apiKeys", key)) ctx.enqueue.auth(authKey);
    return;
  }
  const uid = obj.metadata.uid!;
  ctx.materials.rememberKey("apiKeys", key, uid);
  const generation = obj.metadata.generation ?? 0;
  const parsed = DaguApiKey.safeParse(obj);
  if (!parsed.success) {
    await writeStatus(ctx, obj, { ready: false, reason: "InvalidSpec", message: parsed.error.issues[0]?.message ?? "invalid spec" }, { keyId: uid });
    return;
  }
  const spec = parsed.data.spec;
  const found = findAuth(ctx, namespace, spec.authRef.name, "builtin");
  if (!found.ok) {
    for (const authKey of ctx.materials.forget("apiKeys", uid)) ctx.enqueue.auth(authKey);
    await writeStatus(ctx, obj, found.problem, { keyId: uid });
    return;
  }
  const materials = ctx.materials.of(found.key);
  const offer = (input: ChildInput<ApiKeyInput>) => {
    const before = materials.apiKeys.get(uid);
    if (!before || !deepEqualJson(before, input)) {
      materials.apiKeys.set(uid, input);
      ctx.enqueue.auth(found.key);
    }
  };

  const secret = await ensureConsumerSecret(ctx, obj, spec.secretName, "spec.secretName", { [API_KEY_SECRET_KEY]: generateApiKey }, spec.rotation);
  if (!secret.ok) {
    offer({ ok: false, generation, problem: secret.problem });
    await writeStatus(ctx, obj, secret.problem, { keyId: uid });
    return;
  }
  const { plan } = secret;
  const now = ctx.now();
  const current = plan.current[API_KEY_SECRET_KEY]!;
  const base = { id: uid, name, role: spec.role, ...(spec.description ? { description: spec.description } : {}) };
  const expired = spec.expiresAt !== undefined && Date.parse(spec.expiresAt) <= now.getTime();
  const entries: CredentialApiKey[] = [];
  if (!expired) {
    entries.push({ ...base, digest: sha256Hex(current), prefix: keyPrefix(current), createdAt: plan.issuedAt, ...(spec.expiresAt ? { expiresAt: spec.expiresAt } : {}) });
    const previous = plan.previous?.values[API_KEY_SECRET_KEY];
    if (previous) entries.push({ ...base, digest: sha256Hex(previous), prefix: keyPrefix(previous), createdAt: plan.issuedAt, notAfter: plan.previous!.notAfter });
  }
  const transitions = [nextTransition(plan, now), spec.expiresAt && !expired ? Date.parse(spec.expiresAt) - now.getTime() + 1000 : undefined].filter((v): v is number => v !== undefined);
  const nextTransitionMs = transitions.length > 0 ? Math.min(...transitions) : undefined;
  offer({ ok: true, generation, value: { entries } });

  const requeue = nextTransitionMs !== undefined ? { requeueAfter: nextTransitionMs } : undefined;
  const published = materials.published;
  const stored = materials.apiKeys.get(uid);
  if (!published || !stored?.ok || published.apiKeyInputs.get(uid) !== stored.value) return requeue;
  const ready: ReadyState = expired
    ? { ready: false, reason: "Expired", message: `the key expired at ${spec.expiresAt}; it is no longer accepted` }
    : { ready: true, reason: "Materialized", message: `API key (${spec.role}) is in credentials generation ${published.generation}${plan.previous ? `; the previous key works until ${plan.previous.notAfter}` : ""}` };
  await writeStatus(ctx, obj, ready, {
    keyId: uid,
    keyPrefix: keyPrefix(current),
    ...(spec.expiresAt ? { expiresAt: spec.expiresAt } : {}),
    rotatedAt: plan.issuedAt,
    rotationGeneration: plan.rotationGeneration,
  });
  return requeue;
}
