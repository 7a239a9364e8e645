// A whole OperatorContext over the in-memory API (kube-objects.ts), for unit tests of the reconcilers:
// caches of the four kinds that a status write reaches (as their informers would deliver it), Events
// and enqueues recorded as strings, and a hashing stand-in that counts. Pure logic only: the integration
// tests run the reconcilers against a real kube-apiserver.
import pino from "pino";
import { MAX_INLINE_BYTES, type Condition } from "../../../src/api/index.ts";
import type { KubeObject } from "../../../src/common/kube/client.ts";
import type { ObjectCache, OperatorContext } from "../../../src/operator/context.ts";
import { Materials } from "../../../src/operator/materials.ts";
import { FakeKube } from "./kube-objects.ts";

export class MapCache implements ObjectCache {
  readonly objects = new Map<string, KubeObject>();
  constructor(objects: KubeObject[] = []) {
    for (const o of objects) this.put(o);
  }
  put(o: KubeObject): void {
    this.objects.set(`${o.metadata.namespace}/${o.metadata.name}`, o);
  }
  get(namespace: string, name: string) {
    return this.objects.get(`${namespace}/${name}`);
  }
  list(namespace?: string) {
    return [...this.objects.values()].filter((o) => namespace === undefined || o.metadata.namespace === namespace);
  }
}

export interface FakeOperatorObjects {
  auths?: KubeObject[];
  users?: KubeObject[];
  apiKeys?: KubeObject[];
  webhooks?: KubeObject[];
  maxInlineBytes?: number;
}

const CACHE_OF_KIND = { DaguAuth: "auths", DaguUser: "users", DaguApiKey: "apiKeys", DaguWebhook: "webhooks" } as const;

export function fakeOperator(objects: FakeOperatorObjects = {}) {
  const kube = new FakeKube();
  const caches = { auths: new MapCache(objects.auths), users: new MapCache(objects.users), apiKeys: new MapCache(objects.apiKeys), webhooks: new MapCache(objects.webhooks) };
  const events: string[] = [];
  const enqueued: string[] = [];
  let hashes = 0;
  const ctx: OperatorContext = {
    log: pino({ level: "silent" }),
    caches,
    secrets: kube.secrets,
    writer: {
      ...kube.writer,
      applyStatus: async (o) => {
        await kube.writer.applyStatus(o);
        const cache = caches[CACHE_OF_KIND[o.kind as keyof typeof CACHE_OF_KIND]];
        const cached = cache.get(o.metadata.namespace!, o.metadata.name!);
        if (cached) cache.put({ ...cached, status: o.status });
      },
    },
    events: { normal: (_o, reason) => void events.push(`Normal ${reason}`), warning: (_o, reason) => void events.push(`Warning ${reason}`) },
    enqueue: { auth: (k) => void enqueued.push(`auth ${k}`), user: (k) => void enqueued.push(`user ${k}`), apiKey: (k) => void enqueued.push(`apiKey ${k}`), webhook: (k) => void enqueued.push(`webhook ${k}`) },
    materials: new Materials(),
    hashPassword: async (password) => `$argon2id$v=19$m=19456,t=2,p=1$fake$${++hashes}-${password.length}`,
    now: () => new Date(),
    maxInlineBytes: objects.maxInlineBytes ?? MAX_INLINE_BYTES,
    applied: new Map(),
    ownedObjects: (namespace) => kube.list(namespace, ["ServiceAccount", "Role", "RoleBinding", "Certificate"]),
  };
  /** The Ready condition last written for `kind/name` (the last status write of any object when omitted). */
  const ready = (kind?: string, name?: string): Condition | undefined => {
    const written = kind === undefined ? kube.statuses.at(-1) : kube.statuses.findLast((s) => s.kind === kind && s.metadata.name === name);
    return (written?.status as { conditions?: Condition[] } | undefined)?.conditions?.find((c) => c.type === "Ready");
  };
  return { kube, ctx, caches, events, enqueued, ready, hashes: () => hashes };
}
