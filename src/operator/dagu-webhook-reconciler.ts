// DaguWebhook: a `dagu_wh_` token and/or an HMAC secret generated once into the
// consumer Secret; the token's digest and the HMAC secret (the sidecar must verify
// signatures with it) handed to the DaguAuth. Rotation keeps the previous pair
// valid for the overlap.
import { DaguWebhook, type CredentialWebhook } from "../api/index.ts";
import { generateSecret, generateWebhookToken, sha256Hex } from "../common/tokens.ts";
import { deepEqualJson } from "../common/stable-json.ts";
import { findAuth, writeStatus } from "./child-status.ts";
import type { ReadyState } from "./conditions.ts";
import { ensureConsumerSecret } from "./consumer-secret.ts";
import { splitKey, type OperatorContext } from "./context.ts";
import { nextTransition } from "./generated-secret.ts";
import type { ChildInput, WebhookInput } from "./materials.ts";
import type { Result } from "./runtime/work-queue.ts";

export const WEBHOOK_TOKEN_KEY = "token";
export const WEBHOOK_HMAC_KEY = "hmacSecret";

export async function reconcileDaguWebhook(ctx: OperatorContext, key: string): Promise<Result | undefined> {
  const { namespace, name } = splitKey(key);
  const obj = ctx.caches.webhooks.get(namespace, name);
  if (!obj || obj.metadata.deletionTimestamp) {
    for (const authKey of ctx.materials.forgetKey("webhooks", key)) ctx.enqueue.auth(authKey);
    return;
  }
  const uid = obj.metadata.uid!;
  ctx.materials.rememberKey("webhooks", key, uid);
  const generation = obj.metadata.generation ?? 0;
  const parsed = DaguWebhook.safeParse(obj);
  if (!parsed.success) {
    await writeStatus(ctx, obj, { ready: false, reason: "InvalidSpec", message: parsed.error.issues[0]?.message ?? "invalid spec" }, { webhookId: uid });
    return;
  }
  const spec = parsed.data.spec;
  const found = findAuth(ctx, namespace, spec.authRef.name, "builtin");
  if (!found.ok) {
    for (const authKey of ctx.materials.forget("webhooks", uid)) ctx.enqueue.auth(authKey);
    await writeStatus(ctx, obj, found.problem, { webhookId: uid });
    return;
  }
  const materials = ctx.materials.of(found.key);
  const offer = (input: ChildInput<WebhookInput>) => {
    const before = materials.webhooks.get(uid);
    if (!before || !deepEqualJson(before, input)) {
      materials.webhooks.set(uid, input);
      ctx.enqueue.auth(found.key);
    }
  };

  const mode = spec.auth.mode;
  const fields: Record<string, () => string> = {};
  if (mode !== "hmac") fields[WEBHOOK_TOKEN_KEY] = generateWebhookToken;
  if (mode !== "token") fields[WEBHOOK_HMAC_KEY] = generateSecret;
  const secret = await ensureConsumerSecret(ctx, obj, spec.secretName, "spec.secretName", fields, spec.rotation);
  if (!secret.ok) {
    offer({ ok: false, generation, problem: secret.problem });
    await writeStatus(ctx, obj, secret.problem, { webhookId: uid });
    return;
  }
  const { plan } = secret;
  const previous = plan.previous;
  const entry: CredentialWebhook = {
    id: uid,
    dagName: spec.dagName,
    enabled: spec.enabled,
    mode,
    hmacEnforcement: spec.auth.hmacEnforcement ?? "strict",
    tokenDigests: [plan.current[WEBHOOK_TOKEN_KEY], previous?.values[WEBHOOK_TOKEN_KEY]]
      .map((t, i) => (t ? { digest: sha256Hex(t), ...(i === 1 ? { notAfter: previous!.notAfter } : {}) } : undefined))
      .filter((d) => d !== undefined),
    hmacSecrets: [plan.current[WEBHOOK_HMAC_KEY], previous?.values[WEBHOOK_HMAC_KEY]]
      .map((s, i) => (s ? { secret: s, ...(i === 1 ? { notAfter: previous!.notAfter } : {}) } : undefined))
      .filter((d) => d !== undefined),
  };
  offer({ ok: true, generation, value: { objectName: name, creationTimestamp: obj.metadata.creationTimestamp ?? "", entry } });

  const next = nextTransition(plan, ctx.now());
  const requeue = next !== undefined ? { requeueAfter: next } : undefined;
  const published = materials.published;
  const stored = materials.webhooks.get(uid);
  if (!published || !stored?.ok || published.webhookInputs.get(uid) !== stored.value) return requeue;
  const ready: ReadyState = published.rejectedWebhooks.get(uid) ?? (spec.enabled
    ? { ready: true, reason: "Materialized", message: `webhook for DAG ${spec.dagName} (${mode}) is in credentials generation ${published.generation}` }
    : { ready: true, reason: "Disabled", message: `webhook for DAG ${spec.dagName} is disabled: every trigger is refused` });
  await writeStatus(ctx, obj, ready, { webhookId: uid, rotatedAt: plan.issuedAt, rotationGeneration: plan.rotationGeneration });
  return requeue;
}
