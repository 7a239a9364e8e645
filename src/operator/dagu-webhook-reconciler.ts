// DaguWebhook: a `dagu_wh_` token and/or an HMAC secret generated once into the
// consumer Secret; the token's digest and the HMAC secret (the sidecar must verify
// signatures with it) handed to the DaguAuth. Rotation keeps the previous pair
// valid for the overlap.
import { DaguWebhook, durationSeconds, type CredentialWebhook } from "../api/index.ts";
import { generateSecret, generateWebhookToken, sha256Hex } from "../common/tokens.ts";
import { writeStatus } from "./child-status.ts";
import { startChild, type ChildAccess } from "./child-reconcile.ts";
import type { ReadyState } from "./conditions.ts";
import { ensureConsumerSecret, type ConsumerSecretAccess } from "./consumer-secret.ts";
import { nextTransition } from "./generated-secret.ts";
import type { Result } from "./runtime/work-queue.ts";

export const WEBHOOK_TOKEN_KEY = "token";
export const WEBHOOK_HMAC_KEY = "hmacSecret";

/** What a DaguWebhook reconcile may touch: the child's start and its consumer Secret, nothing more. */
export type DaguWebhookAccess = ChildAccess<"webhooks"> & ConsumerSecretAccess;

export async function reconcileDaguWebhook(ctx: DaguWebhookAccess, key: string): Promise<Result | undefined> {
  const child = await startChild(ctx, "webhooks", key, DaguWebhook, "webhookId");
  if (!child) return;
  const { obj, name, uid, generation, spec } = child;

  const mode = spec.auth.mode;
  const fields: Record<string, () => string> = {};
  if (mode !== "hmac") fields[WEBHOOK_TOKEN_KEY] = generateWebhookToken;
  if (mode !== "token") fields[WEBHOOK_HMAC_KEY] = generateSecret;
  const secret = await ensureConsumerSecret(ctx, obj, spec.secretName, "spec.secretName", fields, spec.rotation);
  if (!secret.ok) return child.fail(secret.problem, {});
  const { plan } = secret;
  const previous = plan.previous;
  // The current value first, then the rotated-out one until its overlap ends.
  const withPrevious = <T>(key: string, make: (value: string) => T): (T & { notAfter?: string })[] =>
    [plan.current[key], previous?.values[key]].flatMap((v, i) => (v ? [{ ...make(v), ...(i === 1 ? { notAfter: previous!.notAfter } : {}) }] : []));
  const entry: CredentialWebhook = {
    id: uid,
    dagName: spec.dagName,
    enabled: spec.enabled,
    mode,
    hmacEnforcement: spec.auth.hmacEnforcement ?? "strict",
    tokenDigests: withPrevious(WEBHOOK_TOKEN_KEY, (t) => ({ digest: sha256Hex(t) })),
    hmacSecrets: withPrevious(WEBHOOK_HMAC_KEY, (s) => ({ secret: s })),
    ...(spec.auth.timestampWindow !== undefined ? { timestampWindowSeconds: durationSeconds(spec.auth.timestampWindow) } : {}),
  };
  child.offer({ ok: true, generation, value: { objectName: name, creationTimestamp: obj.metadata.creationTimestamp ?? "", entry } });
  const next = nextTransition(plan, ctx.now());
  const requeue = next !== undefined ? { requeueAfter: next } : undefined;

  const published = child.materials.published;
  const stored = child.stored();
  if (!published || !stored?.ok || published.webhookInputs.get(uid) !== stored.value) {
    await child.markPending({});
    return requeue;
  }
  const ready: ReadyState =
    published.rejectedWebhooks.get(uid) ??
    (spec.enabled
      ? { ready: true, reason: "Materialized", message: `webhook for DAG ${spec.dagName} (${mode}) is enforced by the sidecar` }
      : { ready: true, reason: "Disabled", message: `webhook for DAG ${spec.dagName} is disabled: every trigger is refused` });
  await writeStatus(ctx, obj, ready, { webhookId: uid, rotatedAt: plan.issuedAt, rotationGeneration: plan.rotationGeneration });
  return requeue;
}
