// The operator's caches: an informer per kind (DaguAuth, DaguUser, DaguApiKey, DaguWebhook), the Secrets
// (its own by label, the referenced ones by a metadata-only watch and reads by name: secret-cache.ts),
// and the objects a DaguAuth owns besides Secrets (the sidecar's ServiceAccount, Role and RoleBinding,
// and cert-manager's Certificate), cached only when they carry our label. Built here, started by
// startCaches(): a follower keeps them warm so that it can take over at once.
import type { Logger } from "pino";
import { GROUP, KINDS, VERSION } from "../../api/index.ts";
import type { KubeClient } from "../../common/kube/client.ts";
import type { KubeConfig } from "../../common/kube/config.ts";
import { Informer } from "../../common/kube/informer.ts";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from "../context.ts";
import { SecretCache } from "../secret-cache.ts";
import { SecretReferences } from "../secret-references.ts";

/**
 * The longest wait between two failed lists or watches of the operator's caches (the informer jitters it by
 * ±20%). client-go's 30 s left an operator, and a follower taking over after a long outage, blind to every
 * change for up to half a minute after the API server's return. At 2 s the dozen watches of an install (per
 * namespace in a namespaced one) cost a few connection attempts a second while the API server is away, and
 * each resumes from its resourceVersion (no relist) once it is back. Reconciles that fail keep their own
 * per-key exponential backoff (runtime/work-queue.ts).
 */
export const WATCH_RETRY_CAP_MS = 2_000;

export type KindName = "auths" | "users" | "apiKeys" | "webhooks";
export const KIND_OF: Record<KindName, string> = { auths: "DaguAuth", users: "DaguUser", apiKeys: "DaguApiKey", webhooks: "DaguWebhook" };

export interface CacheOptions {
  kubeConfig: KubeConfig;
  client: KubeClient;
  log: Logger;
  resyncPeriodMs: number;
  /** The install's label selector (instanceSelector()). */
  instance: string;
  /** A namespaced install's namespaces; undefined: the whole cluster. */
  namespaces: readonly string[] | undefined;
}

export interface OperatorCaches {
  kinds: Record<KindName, Informer>;
  /** Which Secrets the DaguAuths and DaguUsers reference (the referenced Secrets' watch filters by it). */
  references: SecretReferences;
  secrets: SecretCache;
  /** The sidecar's ServiceAccounts, Roles and RoleBindings, in that order. */
  owned: readonly [serviceAccounts: Informer, roles: Informer, roleBindings: Informer];
  /** Started only once cert-manager's kind is served (certificate-watch.ts); never counts toward readiness. */
  certificates: Informer;
  /** Every cache readiness waits for. */
  all: readonly Informer[];
}

export function openCaches(options: CacheOptions): OperatorCaches {
  const { kubeConfig, log, resyncPeriodMs, instance } = options;
  const where = options.namespaces ? { namespaces: options.namespaces } : {};
  // Every informer of the operator: a namespaced install's namespaces, and the retry cap.
  const common = { ...where, maxBackoffMs: WATCH_RETRY_CAP_MS };
  const kindInformer = (kind: KindName) => {
    const info = KINDS.find((k) => k.kind === KIND_OF[kind])!;
    return new Informer({ kubeConfig, resource: { group: GROUP, version: VERSION, plural: info.plural }, labelSelector: instance, resyncPeriodMs, logger: log, ...common });
  };
  const kinds = { auths: kindInformer("auths"), users: kindInformer("users"), apiKeys: kindInformer("apiKeys"), webhooks: kindInformer("webhooks") };
  const ownedSelector = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${instance}`;
  const references = new SecretReferences();
  const secrets = new SecretCache({ kubeConfig, client: options.client, ownedSelector, references, resyncPeriodMs, logger: log, ...common });
  for (const kind of ["auths", "users"] as const) {
    kinds[kind].onAdd((o) => secrets.unreferenced(references.track(kind, o)));
    kinds[kind].onUpdate((_old, o) => secrets.unreferenced(references.track(kind, o)));
    kinds[kind].onDelete((o) => secrets.unreferenced(references.track(kind, o, true)));
  }
  const ownedInformer = (group: string, version: string, plural: string) =>
    new Informer({ kubeConfig, resource: { group, version, plural }, labelSelector: ownedSelector, resyncPeriodMs, logger: log, ...common });
  const owned = [ownedInformer("", "v1", "serviceaccounts"), ownedInformer("rbac.authorization.k8s.io", "v1", "roles"), ownedInformer("rbac.authorization.k8s.io", "v1", "rolebindings")] as const;
  const certificates = ownedInformer("cert-manager.io", "v1", "certificates");
  return { kinds, references, secrets, owned, certificates, all: [...Object.values(kinds), secrets.owned, secrets.referenced, ...owned] };
}

/**
 * Starts every cache but the Certificates'. The referenced Secrets' watch filters by what the custom
 * resources reference: it lists once their caches have (and not at all once `stopping()` says so).
 */
export function startCaches(caches: OperatorCaches, stopping: () => boolean): void {
  for (const i of Object.values(caches.kinds)) i.start();
  for (const i of caches.owned) i.start();
  caches.secrets.owned.start();
  void Promise.all(Object.values(caches.kinds).map((i) => i.hasSynced)).then(
    () => void (stopping() || caches.secrets.referenced.start()),
    () => undefined,
  );
}
