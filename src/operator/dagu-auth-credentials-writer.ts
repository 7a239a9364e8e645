// The DaguAuth reconciler's credentials writer: compares the assembled document with the one in force
// (`<daguauth>-credentials`, inline or an index of shards) and writes it, under the next generation, only
// when its content changed. An owned step of the reconciler, given only what it needs: the Secret cache,
// apply/get/delete of Secrets, the size limit and a log line. What this operator last wrote is the
// document in force while the Secret keeps the resourceVersion that write got (the cache may lag it), so
// a quick second reconcile neither writes the same content again nor bumps the generation.
import type { Logger } from "pino";
import { CREDENTIALS_KEY, Credentials, SHARD_KEY, credentialsSecretName, shardCredentials } from "../api/index.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { secretValue } from "../common/kube/secret-data.ts";
import { CredentialsReadError, readCredentials } from "../common/credentials-secret.ts";
import { stableStringify } from "../common/stable-json.ts";
import { isOwnedBy, ownedSecret, type SecretReader, type Writer } from "./context.ts";
import type { AuthMaterials } from "./materials.ts";
import { asWritten } from "./dagu-auth-state-store.ts";
import { deleteIfOwned, ForeignObjectError } from "./owned-objects.ts";

/** What the credentials writer may do: read Secrets (cache first), and apply, get and delete them in the API. */
export interface CredentialsWriterAccess {
  readonly secrets: SecretReader;
  readonly writer: Pick<Writer, "apply" | "get" | "delete">;
  /** Above this the document is sharded. */
  readonly maxInlineBytes: number;
  readonly log: Pick<Logger, "info">;
}

export interface CredentialsToWrite {
  /** The assembled document, without its generation. */
  document: Omit<Credentials, "generation">;
  /** False while a credential the document needs is missing (basic mode without its user, builtin without signing keys). */
  canWrite: boolean;
  /**
   * Lets the sidecar read these shards (its Role names them) before the index that points to them is
   * written; called with the shards in use before and after the write.
   */
  allowShards(shardNames: readonly string[]): Promise<unknown>;
}

/** The document in force after the step: its generation, its shards, and whether the content was already there. */
export interface WrittenCredentials {
  generation: number;
  shardNames: string[];
  sameContent: boolean;
}

interface CurrentCredentials {
  generation: number;
  document: Credentials;
  shardNames: string[];
  /** comparableText(), kept with the parsed Secret: a restart compares a 1,400-entry document many times. */
  comparable?: string;
}

/** Writes `next` when its content differs from the document in force; a generation is never reused. */
export async function writeCredentialsIfChanged(access: CredentialsWriterAccess, auth: KubeObject, materials: AuthMaterials, next: CredentialsToWrite): Promise<WrittenCredentials> {
  const existing = await readCurrentCredentials(access, materials, auth.metadata.namespace!, auth.metadata.name!);
  // Whatever a cache says: the sidecar ignores a repeated generation.
  let generation = Math.max(existing?.generation ?? 0, materials.published?.generation ?? 0);
  let shardNames = existing?.shardNames ?? [];
  const sameContent = existing !== undefined && stableStringify(next.document) === comparableText(existing);
  if (!sameContent && next.canWrite) {
    generation += 1;
    const doc = Credentials.parse({ ...next.document, generation });
    const oldShards = existing?.shardNames ?? [];
    const written = await writeDocument(access, auth, doc, oldShards, (names) => next.allowShards([...new Set([...oldShards, ...names])]));
    shardNames = written.shardNames;
    materials.writtenCredentials = { resourceVersion: written.resourceVersion, current: { generation, document: doc, shardNames }, at: Date.now() };
  }
  return { generation, shardNames, sameContent };
}

/** The stored document as an assembly is compared with it (the generation aside). */
function comparableText(existing: CurrentCredentials): string {
  return (existing.comparable ??= stableStringify({ ...existing.document, generation: undefined }));
}

// Parsed documents by Secret object (the cache hands out the same frozen object until
// the Secret changes): a DaguAuth reconciled many times parses its document once.
const parsedCredentials = new WeakMap<KubeObject, CurrentCredentials | undefined>();

/**
 * The credentials document in force. What this operator last wrote, while the Secret keeps the
 * resourceVersion it got: the cache may lag our own write, and comparing with a stale document would
 * write the same content again under a new generation (and make every child look again).
 */
async function readCurrentCredentials(access: CredentialsWriterAccess, materials: AuthMaterials, namespace: string, authName: string): Promise<CurrentCredentials | undefined> {
  const name = credentialsSecretName(authName);
  let secret: KubeObject | undefined;
  const written = materials.writtenCredentials;
  if (written) {
    const check = await asWritten(access, namespace, name, written.resourceVersion);
    if (check.ours) return written.current;
    materials.writtenCredentials = undefined; // someone else changed it: read what is there
    secret = check.live;
  } else secret = await access.secrets.get(namespace, name);
  if (secret && parsedCredentials.has(secret)) return parsedCredentials.get(secret);
  const current = await parseCurrentCredentials(access, namespace, secret);
  if (secret) parsedCredentials.set(secret, current);
  return current;
}

async function parseCurrentCredentials(access: CredentialsWriterAccess, namespace: string, secret: KubeObject | undefined): Promise<CurrentCredentials | undefined> {
  const raw = secretValue(secret, CREDENTIALS_KEY);
  if (!raw) return undefined;
  try {
    const { credentials, index } = await readCredentials(raw, async (ref) => secretValue(await access.secrets.get(namespace, ref.secretName), ref.key));
    return { generation: index?.generation ?? credentials.generation, document: credentials, shardNames: index?.shards.map((s) => s.secretName) ?? [] };
  } catch (err) {
    // A fetch that failed is retried with the reconcile; a document that is not valid is rewritten from scratch.
    if (err instanceof CredentialsReadError) {
      if (err.stage === "fetch") throw err.cause;
      return undefined;
    }
    throw err;
  }
}

/** Writes the document inline, or its shards then the index (the commit point); returns the shards in use and the version written. */
async function writeDocument(
  access: CredentialsWriterAccess,
  auth: KubeObject,
  doc: Credentials,
  oldShards: readonly string[],
  allowShards: (names: readonly string[]) => Promise<unknown>,
): Promise<{ shardNames: string[]; resourceVersion: string | undefined }> {
  const name = auth.metadata.name!;
  const json = JSON.stringify(doc);
  let value = json;
  let shardNames: string[] = [];
  if (Buffer.byteLength(json) > access.maxInlineBytes) {
    // Shards take two thirds of the limit: base64 inflates them by a third.
    const { index, shards } = shardCredentials(json, name, doc.generation, Math.floor((access.maxInlineBytes * 2) / 3));
    for (const s of shards) {
      const live = await access.secrets.get(auth.metadata.namespace!, s.secretName);
      if (live && !isOwnedBy(live, auth)) throw new ForeignObjectError([live]);
      await access.writer.apply(ownedSecret(auth, s.secretName, { [SHARD_KEY]: JSON.stringify(s.shard) }, { authName: name }));
    }
    value = JSON.stringify(index);
    shardNames = shards.map((s) => s.secretName);
    await allowShards(shardNames);
  }
  const applied = await access.writer.apply(ownedSecret(auth, credentialsSecretName(name), { [CREDENTIALS_KEY]: value }, { authName: name }));
  for (const old of oldShards) if (!shardNames.includes(old)) await deleteIfOwned(access, auth, "v1", "Secret", auth.metadata.namespace!, old);
  access.log.info({ daguAuth: `${auth.metadata.namespace}/${name}`, generation: doc.generation, users: doc.users.length, apiKeys: doc.apiKeys.length, webhooks: doc.webhooks.length, shards: shardNames.length }, "credentials written");
  return { shardNames, resourceVersion: applied.metadata.resourceVersion };
}
