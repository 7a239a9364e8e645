// The operator state (operator-state.ts) as Secrets. Small states live in one Secret,
// `<daguauth>-operator-state`. A state whose password records would pass the inline
// limit (about 280 bytes per user: past ~3,000 users, Kubernetes refuses a Secret over
// 1 MiB) keeps its records in up to 16 bucket Secrets, `<daguauth>-operator-state-<i>`,
// a user's bucket chosen by a hash of its id; the main Secret then lists the buckets.
// Once bucketed, a state stays bucketed (no flapping at the limit).
//
// Writes go bucket by bucket, then the main Secret: each record is valid on its own, so
// a crash between two writes leaves a state that re-derives the same document. Parsed
// states are memoized by the resourceVersions they were read from: a thousand children
// reading an unchanged state parse it once.
import { createHash } from "node:crypto";
import { z } from "zod";
import { secretData } from "../common/kube/secret-data.ts";
import { OPERATOR_STATE_KEY, OperatorState, PasswordRecord, parseOperatorState } from "./operator-state.ts";
import type { KubeObject } from "../common/kube/client.ts";

export const STATE_BUCKETS = 16;
export const stateBucketSecretName = (authName: string, bucket: number) => `${authName}-operator-state-${bucket}`;

/** The bucket of a credential user id: stable across processes and versions. */
export function stateBucketOf(id: string): number {
  return createHash("sha256").update(id).digest()[0]! % STATE_BUCKETS;
}

/** What the main Secret holds: the state, with `passwordBuckets` when its records live in buckets. */
const StoredState = OperatorState.extend({ passwordBuckets: z.array(z.int().min(0).max(STATE_BUCKETS - 1)).optional() });
const StoredBucket = z.object({ passwords: z.record(z.string(), PasswordRecord) });

export interface StateSecrets {
  /** The main Secret's document. */
  main: string;
  /** Bucket documents by bucket, when bucketed. */
  buckets: Map<number, string>;
}

/** The documents to store for `state`; bucketed when asked or when the records would not fit inline. */
export function storeOperatorState(state: OperatorState, options: { bucketed: boolean; maxInlineBytes: number }): StateSecrets {
  if (!options.bucketed) {
    const inline = JSON.stringify(state);
    if (Buffer.byteLength(inline) <= options.maxInlineBytes) return { main: inline, buckets: new Map() };
  }
  const byBucket = new Map<number, Record<string, PasswordRecord>>();
  for (const [id, record] of Object.entries(state.passwords)) {
    const bucket = stateBucketOf(id);
    const records = byBucket.get(bucket) ?? {};
    records[id] = record;
    byBucket.set(bucket, records);
  }
  const buckets = new Map([...byBucket].sort(([a], [b]) => a - b).map(([bucket, passwords]) => [bucket, JSON.stringify({ passwords })] as const));
  return { main: JSON.stringify({ ...state, passwords: {}, passwordBuckets: [...buckets.keys()] }), buckets };
}

export type LoadedState =
  | { kind: "absent" }
  | { kind: "invalid"; error: Error }
  /** The main Secret lists a bucket that cannot be read yet (just created, or a torn read): try again. */
  | { kind: "incomplete"; missing: string }
  | { kind: "loaded"; state: OperatorState; bucketed: boolean };

const memo = new WeakMap<KubeObject, { listed: number[]; versions: string; loaded: LoadedState }>();

/** Reads the state of DaguAuth `authName` from its main Secret and, when bucketed, its buckets. */
export async function readOperatorState(
  main: KubeObject | undefined,
  authName: string,
  getSecret: (name: string) => Promise<KubeObject | undefined>,
): Promise<LoadedState> {
  if (!main) return { kind: "absent" };
  const cached = memo.get(main);
  // Decoded only on a miss: a thousand children read the same (large) Secret.
  let raw: string | undefined;
  const listed = cached?.listed ?? bucketsListed((raw = secretData(main)[OPERATOR_STATE_KEY]));
  const buckets: KubeObject[] = [];
  for (const bucket of listed) {
    const name = stateBucketSecretName(authName, bucket);
    const secret = await getSecret(name);
    if (!secret) return { kind: "incomplete", missing: name };
    buckets.push(secret);
  }
  const versions = buckets.map((b) => b.metadata.resourceVersion ?? "").join(",");
  if (cached && cached.versions === versions) return cached.loaded;
  const loaded = parseStored(raw ?? secretData(main)[OPERATOR_STATE_KEY], buckets);
  memo.set(main, { listed, versions, loaded });
  return loaded;
}

function bucketsListed(raw: string | undefined): number[] {
  // An inline state (the usual case) is not parsed twice just to learn it has no buckets.
  if (raw === undefined || !raw.includes('"passwordBuckets"')) return [];
  try {
    return (StoredState.pick({ passwordBuckets: true }).safeParse(JSON.parse(raw)).data?.passwordBuckets ?? []);
  } catch {
    return []; // parseStored says what is wrong with it
  }
}

function parseStored(raw: string | undefined, buckets: KubeObject[]): LoadedState {
  const parsed = parseOperatorState(raw);
  if (parsed === undefined) return { kind: "invalid", error: new Error(`no ${OPERATOR_STATE_KEY}`) };
  if (parsed instanceof Error) return { kind: "invalid", error: parsed };
  if (buckets.length === 0) return { kind: "loaded", state: parsed, bucketed: false };
  const passwords = { ...parsed.passwords };
  for (const secret of buckets) {
    let value: unknown;
    try {
      value = JSON.parse(secretData(secret)[OPERATOR_STATE_KEY] ?? "");
    } catch {
      return { kind: "invalid", error: new Error(`Secret ${secret.metadata.name} is not valid JSON`) };
    }
    const bucket = StoredBucket.safeParse(value);
    if (!bucket.success) return { kind: "invalid", error: new Error(`Secret ${secret.metadata.name} is invalid at ${bucket.error.issues[0]?.path.join(".") ?? "?"}`) };
    Object.assign(passwords, bucket.data.passwords);
  }
  // (parseOperatorState drops passwordBuckets: it is storage, not state.)
  return { kind: "loaded", state: { ...parsed, passwords }, bucketed: true };
}
