// Which Secrets our resources reference (not own): the operator's Secret cache
// keeps only these and the ones it owns, and a change to one re-queues whoever
// references it.
import type { KubeObject } from "../common/kube/client.ts";
import type { ObjectCache } from "./context.ts";

type Ref = { name?: string } | undefined;

export function secretsReferencedByAuth(auth: KubeObject): string[] {
  const spec = auth.spec as { builtin?: { token?: { secretRef?: Ref }; initialAdmin?: { passwordSecretRef?: Ref } }; basic?: { passwordSecretRef?: Ref }; tls?: { issuerRef?: unknown; secretName?: string } } | undefined;
  const names = [spec?.builtin?.token?.secretRef?.name, spec?.builtin?.initialAdmin?.passwordSecretRef?.name, spec?.basic?.passwordSecretRef?.name];
  return names.filter((n): n is string => typeof n === "string");
}

export function secretsReferencedByUser(user: KubeObject): string[] {
  const name = (user.spec as { password?: { secretRef?: Ref } } | undefined)?.password?.secretRef?.name;
  return typeof name === "string" ? [name] : [];
}

export function referencedSecretNames(caches: { auths: Pick<ObjectCache, "list">; users: Pick<ObjectCache, "list"> }, namespace: string): Set<string> {
  return new Set([...caches.auths.list(namespace).flatMap(secretsReferencedByAuth), ...caches.users.list(namespace).flatMap(secretsReferencedByUser)]);
}
