// Which Secrets our resources reference (not own): the operator's Secret cache
// keeps only these and the ones it owns, and a change to one re-queues whoever
// references it.
import type { KubeObject } from "../common/kube/client.ts";

type Ref = { name?: string } | undefined;

export function secretsReferencedByAuth(auth: KubeObject): string[] {
  const spec = auth.spec as { builtin?: { token?: { secretRef?: Ref }; initialAdmin?: { passwordSecretRef?: Ref } }; basic?: { passwordSecretRef?: Ref }; tls?: { issuerRef?: unknown; secretName?: string }; oidc?: { clientSecretRef?: Ref } } | undefined;
  // A TLS Secret of the user's own (no issuer) is referenced; one cert-manager issues is not ours to watch.
  const tls = spec?.tls && !spec.tls.issuerRef ? spec.tls.secretName : undefined;
  const names = [spec?.builtin?.token?.secretRef?.name, spec?.builtin?.initialAdmin?.passwordSecretRef?.name, spec?.basic?.passwordSecretRef?.name, tls, spec?.oidc?.clientSecretRef?.name];
  // Keys and CAs of remote nodes that are not a DaguApiKey's (those are the operator's own Secrets).
  for (const n of (auth.spec as { remoteNodes?: { tokenSecretRef?: Ref; caSecretRef?: Ref }[] } | undefined)?.remoteNodes ?? []) names.push(n.tokenSecretRef?.name, n.caSecretRef?.name);
  return names.filter((n): n is string => typeof n === "string");
}

export function secretsReferencedByUser(user: KubeObject): string[] {
  const name = (user.spec as { password?: { secretRef?: Ref } } | undefined)?.password?.secretRef?.name;
  return typeof name === "string" ? [name] : [];
}

type Referrer = "auths" | "users";
const REFERENCES: Record<Referrer, (o: KubeObject) => string[]> = { auths: secretsReferencedByAuth, users: secretsReferencedByUser };

/**
 * Which DaguAuths and DaguUsers reference each Secret, kept up to date from their informers' events, so
 * that a Secret event is routed (and admitted to the cache) without a walk over every user.
 */
export class SecretReferences {
  /** "namespace/secret" → keys ("namespace/name") of the referrers, per kind. */
  readonly #referrers: Record<Referrer, Map<string, Set<string>>> = { auths: new Map(), users: new Map() };
  /** Referrer key → the Secret ids it was indexed under. */
  readonly #indexed: Record<Referrer, Map<string, string[]>> = { auths: new Map(), users: new Map() };

  /** Indexes `obj` as it is now (`deleted`: not at all). Returns the Secrets ("namespace/name") nobody references any more. */
  track(kind: Referrer, obj: KubeObject, deleted = false): string[] {
    const ns = obj.metadata.namespace ?? "";
    const key = `${ns}/${obj.metadata.name}`;
    const before = this.#indexed[kind].get(key) ?? [];
    for (const id of before) {
      const set = this.#referrers[kind].get(id);
      set?.delete(key);
      if (set?.size === 0) this.#referrers[kind].delete(id);
    }
    const ids = deleted || obj.metadata.deletionTimestamp ? [] : [...new Set(REFERENCES[kind](obj))].map((name) => `${ns}/${name}`);
    if (ids.length === 0) this.#indexed[kind].delete(key);
    else this.#indexed[kind].set(key, ids);
    for (const id of ids) {
      let set = this.#referrers[kind].get(id);
      if (!set) this.#referrers[kind].set(id, (set = new Set()));
      set.add(key);
    }
    return before.filter((id) => !this.#referrers.auths.has(id) && !this.#referrers.users.has(id));
  }

  /** Keys of the `kind` resources that reference Secret `namespace/name`. */
  referrers(kind: Referrer, namespace: string, name: string): ReadonlySet<string> {
    return this.#referrers[kind].get(`${namespace}/${name}`) ?? EMPTY;
  }

  isReferenced(namespace: string, name: string): boolean {
    return this.referrers("auths", namespace, name).size > 0 || this.referrers("users", namespace, name).size > 0;
  }
}

const EMPTY: ReadonlySet<string> = new Set();
