// The Secret a DaguApiKey or DaguWebhook writes its generated values into, for the
// consumer (a CI job, GitHub): owned by the resource, never taken over from
// someone else, generated once, rotated when spec.rotation.generation moves.
import { parseDuration, type Rotation } from "../api/index.ts";
import type { ReadyState } from "./conditions.ts";
import { isOwnedBy, ownedSecret, type SecretReader, type Writer } from "./context.ts";
import { secretData } from "../common/kube/secret-data.ts";
import { planGeneratedSecret, type GeneratedSecretPlan } from "./generated-secret.ts";
import type { KubeObject } from "../common/kube/client.ts";

/** What a consumer Secret needs: the Secret cache, create and conditional update, the clock (rotation). */
export interface ConsumerSecretAccess {
  readonly secrets: SecretReader;
  readonly writer: Pick<Writer, "create" | "update">;
  now(): Date;
}

export type ConsumerSecretResult = { ok: true; plan: GeneratedSecretPlan } | { ok: false; problem: ReadyState };

export async function ensureConsumerSecret(
  ctx: ConsumerSecretAccess,
  owner: KubeObject,
  secretName: string,
  /** Where the name comes from, for messages: spec.secretName, spec.password.generate.secretName. */
  fieldPath: string,
  fields: Record<string, () => string>,
  rotation: Rotation | undefined,
): Promise<ConsumerSecretResult> {
  const namespace = owner.metadata.namespace!;
  const existing = await ctx.secrets.get(namespace, secretName);
  if (existing && !isOwnedBy(existing, owner)) {
    return {
      ok: false,
      problem: {
        ready: false,
        reason: "SecretConflict",
        message: `Secret ${secretName} (${fieldPath}) exists and is not owned by this ${owner.kind}; choose another name`,
      },
    };
  }
  const plan = planGeneratedSecret({
    existing: existing ? { data: secretData(existing), annotations: existing.metadata.annotations ?? {} } : undefined,
    fields,
    rotationGeneration: rotation?.generation ?? 0,
    overlapMs: parseDuration(rotation?.overlap ?? "24h"),
    now: ctx.now(),
  });
  if (plan.changed) await writeGenerated(ctx, owner, secretName, plan.data, plan.annotations, existing);
  return { ok: true, plan };
}

/** Writes a generated Secret: create when absent, replace (with its resourceVersion) when changed. */
async function writeGenerated(
  ctx: Pick<ConsumerSecretAccess, "writer">,
  owner: KubeObject,
  name: string,
  data: Record<string, string>,
  annotations: Record<string, string>,
  existing: KubeObject | undefined,
): Promise<void> {
  const desired = ownedSecret(owner, name, data, { annotations });
  if (!existing) {
    await ctx.writer.create(desired);
    return;
  }
  desired.metadata.resourceVersion = existing.metadata.resourceVersion;
  desired.metadata.labels = { ...existing.metadata.labels, ...desired.metadata.labels };
  await ctx.writer.update(desired);
}
