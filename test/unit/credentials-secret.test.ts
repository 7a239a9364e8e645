// The credentials Secret's read path (src/common/credentials-secret.ts), shared by the operator, the
// sidecar's Kubernetes source, bench:operator and the tests; and the one "newer password change wins" rule.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseCredentials, passwordChangeWins, shardCredentials, type ShardRef } from "../../src/api/credentials.ts";
import { CredentialsReadError, readCredentials } from "../../src/common/credentials-secret.ts";
import { secretData, secretValue } from "../../src/common/kube/secret-data.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

const built = await buildCredentials({
  apiKeys: [{ name: "ci", role: "operator" }],
  webhooks: [{ dagName: "hello", mode: "tokenAndHmac" }],
  generation: 7,
});
const json = JSON.stringify(built.credentials);
/** The document as the schema reads it (defaults filled in). */
const parsed = parseCredentials(json);
assert.ok(parsed.success);
const credentials = parsed.data;
const { index, shards } = shardCredentials(json, "dagu", 7, 200);
const shardTexts = new Map(shards.map((s) => [s.secretName, JSON.stringify(s.shard)]));
const fromMap = (texts: Map<string, string>) => async (ref: ShardRef) => texts.get(ref.secretName);
const noShards = async (): Promise<string> => assert.fail("an inline document fetches no shard");

async function readError(entry: string, reader: (ref: ShardRef) => Promise<string | undefined>): Promise<CredentialsReadError> {
  const err: unknown = await readCredentials(entry, reader).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof CredentialsReadError, `a CredentialsReadError, got ${String(err)}`);
  return err;
}

test("an inline document is read as it is, without an index", async () => {
  const read = await readCredentials(json, noShards);
  assert.deepEqual(read.credentials, credentials);
  assert.equal(read.index, undefined);
});

test("a sharded document is reassembled from the shards its index names", async () => {
  assert.ok(shards.length > 2);
  const read = await readCredentials(JSON.stringify(index), fromMap(shardTexts));
  assert.deepEqual(read.credentials, credentials);
  assert.deepEqual(read.index, index);
});

test("reuse: the document already read for the index's generation saves fetching the shards", async () => {
  const read = await readCredentials(JSON.stringify(index), noShards, (generation) => (generation === 7 ? credentials : undefined));
  assert.equal(read.credentials, credentials);
  const fresh = await readCredentials(JSON.stringify(index), fromMap(shardTexts), (generation) => (generation === 6 ? credentials : undefined));
  assert.deepEqual(fresh.credentials, credentials);
});

test("each way the format can be wrong is refused at its stage, naming the Secret and never its content", async () => {
  const cases: { what: string; entry: string; texts?: Map<string, string>; stage: string; message: RegExp }[] = [
    { what: "credentials.json not JSON", entry: '{"token": "TOPSECRET', stage: "entry", message: /not valid JSON/ },
    { what: "credentials.json not a document", entry: JSON.stringify({ ...credentials, users: "TOPSECRET" }), stage: "entry", message: /users/ },
    { what: "a shard Secret without its key", entry: JSON.stringify(index), texts: new Map([...shardTexts].slice(1)), stage: "shards", message: /^shard dagu-credentials-g7-0 has no key shard\.json$/ },
    { what: "a shard that is not JSON", entry: JSON.stringify(index), texts: new Map([...shardTexts, [shards[1]!.secretName, "TOPSECRET"]]), stage: "shards", message: /^shard dagu-credentials-g7-1 is not JSON$/ },
    { what: "a shard of another generation", entry: JSON.stringify(index), texts: new Map([...shardTexts, [shards[1]!.secretName, JSON.stringify({ ...shards[1]!.shard, generation: 6 })]]), stage: "shards", message: /generation 6 part 1, expected generation 7 part 1/ },
    { what: "a shard whose bytes differ from the digest", entry: JSON.stringify(index), texts: new Map([...shardTexts, [shards[2]!.secretName, JSON.stringify({ ...shards[2]!.shard, part: Buffer.from("TOPSECRET").toString("base64") })]]), stage: "shards", message: /does not match its digest/ },
  ];
  for (const c of cases) {
    const err = await readError(c.entry, fromMap(c.texts ?? shardTexts));
    assert.equal(err.stage, c.stage, c.what);
    assert.match(err.message, c.message, c.what);
    assert.ok(!err.message.includes("TOPSECRET"), `${c.what}: the message quotes no content`);
    if (c.stage === "shards") assert.equal(err.generation, 7, c.what);
  }
});

test("a reassembled document that is not valid is refused as a document", async () => {
  const broken = JSON.stringify({ ...credentials, mode: "nonsense" });
  const sharded = shardCredentials(broken, "dagu", 8, 200);
  const err = await readError(JSON.stringify(sharded.index), fromMap(new Map(sharded.shards.map((s) => [s.secretName, JSON.stringify(s.shard)]))));
  assert.equal(err.stage, "document");
  assert.equal(err.generation, 8);
  assert.match(err.message, /mode/);
});

test("a fetch that fails is told apart from a bad format: stage fetch, the reader's error as cause", async () => {
  const denied = new Error("secrets \"dagu-credentials-g7-1\" is forbidden");
  const err = await readError(JSON.stringify(index), async (ref) => {
    if (ref.secretName === shards[1]!.secretName) throw denied;
    return shardTexts.get(ref.secretName);
  });
  assert.equal(err.stage, "fetch");
  assert.equal(err.cause, denied);
  assert.equal(err.generation, 7);
});

test("Secret data: values decoded, an absent key or Secret stays absent", () => {
  const secret = { metadata: {}, data: { a: Buffer.from("ä-1").toString("base64"), empty: "" } };
  assert.equal(secretValue(secret, "a"), "ä-1");
  assert.equal(secretValue(secret, "empty"), "");
  assert.equal(secretValue(secret, "b"), undefined);
  assert.equal(secretValue(undefined, "a"), undefined);
  assert.equal(secretValue({ metadata: {} }, "a"), undefined);
  assert.deepEqual(secretData(secret), { a: "ä-1", empty: "" });
  assert.deepEqual(secretData(undefined), {});
});

test("the one password-change rule: a change wins only when strictly newer (nanoseconds count)", () => {
  const change = (changedAt: string) => ({ passwordHash: "h", changedAt });
  const table: [string, ReturnType<typeof change> | undefined, string, boolean][] = [
    ["no change", undefined, "2026-01-01T00:00:00Z", false],
    ["newer", change("2026-01-02T00:00:00Z"), "2026-01-01T00:00:00Z", true],
    ["older", change("2025-12-31T00:00:00Z"), "2026-01-01T00:00:00Z", false],
    ["same instant: the source stays", change("2026-01-01T00:00:00.000000000Z"), "2026-01-01T00:00:00Z", false],
    ["one nanosecond newer", change("2026-01-01T00:00:00.000000001Z"), "2026-01-01T00:00:00Z", true],
  ];
  for (const [what, c, at, wins] of table) assert.equal(passwordChangeWins(c, at), wins, what);
});
