// The context every reconciler is given (context.ts), assembled from the caches, the API writer, the
// Event recorder and the queues. Passwords are hashed in a bounded number of slots (argon2id takes
// 19 MiB and a core each), timed into the hashing metric.
import type { Logger } from "pino";
import pLimit from "p-limit";
import { hashPassword } from "../../common/password-hash.ts";
import type { Enqueue, OperatorContext, Writer } from "../context.ts";
import { Materials } from "../materials.ts";
import type { EventRecorder } from "../runtime/events.ts";
import type { OperatorMetrics } from "../runtime/metrics.ts";
import type { OperatorCaches } from "./caches.ts";

export interface ContextParts {
  log: Logger;
  caches: OperatorCaches;
  writer: Writer;
  events: Pick<EventRecorder, "normal" | "warning">;
  enqueue: Enqueue;
  metrics: Pick<OperatorMetrics, "timeHash">;
  hashConcurrency: number;
  maxInlineBytes: number;
}

export function operatorContext(parts: ContextParts): OperatorContext {
  const { caches, events, metrics } = parts;
  const hashSlots = pLimit(parts.hashConcurrency);
  return {
    log: parts.log,
    caches: caches.kinds,
    secrets: caches.secrets,
    writer: parts.writer,
    events: {
      normal: (o, r, m) => void events.normal(o, r, m),
      warning: (o, r, m) => void events.warning(o, r, m),
    },
    enqueue: parts.enqueue,
    materials: new Materials(),
    hashPassword: (password) => hashSlots(() => metrics.timeHash("argon2id", () => hashPassword(password))),
    now: () => new Date(),
    maxInlineBytes: parts.maxInlineBytes,
    applied: new Map(),
    ownedObjects: (namespace) => [...caches.owned, caches.certificates].flatMap((informer) => informer.list(namespace)),
  };
}
