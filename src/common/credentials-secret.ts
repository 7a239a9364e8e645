// The read path of the credentials Secret (`<daguauth>-credentials`, src/api/credentials.ts), one piece of
// code for the operator (which compares with what it last wrote), the sidecar's Kubernetes source (which
// enforces it), bench:operator and the tests: `credentials.json` holds the document itself or an index;
// an index's shards are fetched by name, each checked against the index (generation, part, digest) before
// the reassembled document is parsed. A half-written generation is never loaded. Errors name a Secret and
// what is wrong with it, never its content.
import { z } from "zod";
import { CredentialsShard, parseCredentials, parseCredentialsEntry, joinShards, type Credentials, type CredentialsIndex, type ShardRef } from "../api/credentials.ts";

/**
 * Where the read failed: `credentials.json` itself, fetching a shard (the reader's own error is the
 * cause), a shard's content, or the reassembled document.
 */
export type CredentialsReadStage = "entry" | "fetch" | "shards" | "document";

export class CredentialsReadError extends Error {
  readonly stage: CredentialsReadStage;
  /** The index's generation, once the index is read. */
  readonly generation: number | undefined;

  constructor(stage: CredentialsReadStage, message: string, options?: ErrorOptions & { generation?: number }) {
    super(message, options);
    this.name = "CredentialsReadError";
    this.stage = stage;
    this.generation = options?.generation;
  }
}

export interface CredentialsRead {
  credentials: Credentials;
  /** The index `credentials.json` held, when the document is sharded. */
  index?: CredentialsIndex;
}

/** Fetches the text at `ref.key` of Secret `ref.secretName`; undefined when absent. */
export type ShardReader = (ref: ShardRef) => Promise<string | undefined>;

/** One shard's text, parsed; the error names the Secret, never its content (JSON.parse would quote it). */
function parseShard(ref: ShardRef, text: string | undefined, generation: number): CredentialsShard {
  const fail = (message: string) => new CredentialsReadError("shards", `shard ${ref.secretName} ${message}`, { generation });
  if (text === undefined) throw fail(`has no key ${ref.key}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw fail("is not JSON");
  }
  const shard = CredentialsShard.safeParse(json);
  if (!shard.success) throw fail(`is not valid: ${z.prettifyError(shard.error)}`);
  return shard.data;
}

/**
 * The document the value of `credentials.json` stands for. `reuse` may return the document already read
 * for an index's generation (shards are immutable), which saves fetching them again.
 */
export async function readCredentials(entryText: string, readShard: ShardReader, reuse?: (generation: number) => Credentials | undefined): Promise<CredentialsRead> {
  const entry = parseCredentialsEntry(entryText);
  if (!entry.success) throw new CredentialsReadError("entry", z.prettifyError(entry.error));
  if (entry.data.kind === "document") return { credentials: entry.data.credentials };
  const index = entry.data.index;
  const { generation } = index;
  const reused = reuse?.(generation);
  if (reused) return { credentials: reused, index };
  const shards = await Promise.all(
    index.shards.map(async (ref) => {
      let text: string | undefined;
      try {
        text = await readShard(ref);
      } catch (err) {
        throw new CredentialsReadError("fetch", err instanceof Error ? err.message : String(err), { cause: err, generation });
      }
      return parseShard(ref, text, generation);
    }),
  );
  let json: string;
  try {
    json = joinShards(index, shards);
  } catch (err) {
    throw new CredentialsReadError("shards", err instanceof Error ? err.message : String(err), { cause: err, generation });
  }
  const parsed = parseCredentials(json);
  if (!parsed.success) throw new CredentialsReadError("document", z.prettifyError(parsed.error), { generation });
  return { credentials: parsed.data, index };
}
