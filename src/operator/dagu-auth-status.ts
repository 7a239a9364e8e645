// The DaguAuth reconciler's last step: Ready from the readiness policies (dagu-auth-readiness.ts) over
// the facts the steps gathered, the fields a user reads (the credentials Secret and generation, the
// counts, the sidecar's ServiceAccount and TLS Secret, the users single sign-on created) and the OIDC
// condition. Written only when it changed; a warning (a short token secret) becomes a Warning Event with
// the status change that shows it, not on every reconcile.
import { credentialsSecretName, ssoUsersSecretName, type Credentials, type DaguAuthSpec } from "../api/index.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { writeStatus, type StatusAccess } from "./child-status.ts";
import type { OtherCondition } from "./conditions.ts";
import type { SecretReader } from "./context.ts";
import { sidecarServiceAccountName, tlsSecretName } from "./auth-resources.ts";
import { OIDC_CONDITION, ssoUsersStatus } from "./oidc.ts";
import { readiness, type ReadinessFacts } from "./dagu-auth-readiness.ts";

export type AuthStatusAccess = StatusAccess & { readonly secrets: SecretReader };

export interface AuthStatusInput {
  spec: DaguAuthSpec;
  facts: Omit<ReadinessFacts, "spec" | "document">;
  /** The document in force (what the sidecar enforces) and its generation. */
  document: Omit<Credentials, "generation">;
  generation: number;
  warnings: readonly string[];
  /** Single sign-on is on (its users are reported). */
  sso: boolean;
  oidcCondition: OtherCondition | undefined;
}

export async function writeAuthStatus(access: AuthStatusAccess, auth: KubeObject, input: AuthStatusInput): Promise<void> {
  const { spec, document, generation } = input;
  const name = auth.metadata.name!;
  const ready = readiness({ ...input.facts, spec, document: { generation, users: document.users, apiKeys: document.apiKeys.length, webhooks: document.webhooks.length } });
  if (input.warnings.length > 0) ready.message += `; warning: ${input.warnings.join("; ")}`;
  const wrote = await writeStatus(access, auth, ready, {
    credentialsSecretName: credentialsSecretName(name),
    credentialsGeneration: generation,
    users: document.users.length + (document.basic ? 1 : 0),
    apiKeys: new Set(document.apiKeys.map((k) => k.id)).size,
    webhooks: document.webhooks.length,
    serviceAccountName: sidecarServiceAccountName(auth, spec),
    ...(spec.tls ? { tlsSecretName: tlsSecretName(auth, spec) } : {}),
    ...(input.sso ? ssoUsersStatus(await access.secrets.get(auth.metadata.namespace!, ssoUsersSecretName(name)), document.users) : {}),
  }, { [OIDC_CONDITION]: input.oidcCondition });
  if (wrote) for (const w of input.warnings) access.events.warning(auth, "TokenSecretShort", w);
}
