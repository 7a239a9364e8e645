// The DaguAuth reconciler's credentials writer (src/operator/dagu-auth-credentials-writer.ts) over an
// in-memory API: it writes a document once and not again while its content is the same (also while the
// cache lags its own write), gives a change the next generation, reads someone else's change from the
// API, and shards a large document: shards, then the Role that names them, then the index.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CREDENTIALS_KEY, type Credentials } from "../../src/api/index.ts";
import { secretValue } from "../../src/common/kube/secret-data.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";
import { ownedSecret } from "../../src/operator/context.ts";
import { Materials, type AuthMaterials } from "../../src/operator/materials.ts";
import { writeCredentialsIfChanged, type CredentialsWriterAccess } from "../../src/operator/dagu-auth-credentials-writer.ts";
import { ForeignObjectError } from "../../src/operator/owned-objects.ts";
import { FakeKube } from "./fakes/kube-objects.ts";

const auth = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", metadata: { name: "dagu", namespace: "ns", uid: "auth-uid" } };

/** A document without its generation, with `keys` API keys (about 250 bytes each). */
async function documentWith(keys: number): Promise<Omit<Credentials, "generation">> {
  const { credentials } = await buildCredentials({ apiKeys: Array.from({ length: keys }, (_, i) => ({ name: `key-${i}`, role: "viewer" as const })) });
  return { ...credentials, generation: undefined } as Omit<Credentials, "generation">;
}

function setup(maxInlineBytes = 900 * 1024) {
  const kube = new FakeKube();
  const logged: unknown[] = [];
  const access: CredentialsWriterAccess = { secrets: kube.secrets, writer: kube.writer, maxInlineBytes, log: { info: (o: unknown) => void logged.push(o) } };
  const materials: AuthMaterials = new Materials().of("ns/dagu");
  const allowed: string[][] = [];
  const write = (document: Omit<Credentials, "generation">, canWrite = true) =>
    writeCredentialsIfChanged(access, auth, materials, { document, canWrite, allowShards: async (names) => void (allowed.push([...names]), kube.writes.push(`allow ${names.join(",")}`)) });
  return { kube, materials, allowed, write, logged };
}

const storedGeneration = (kube: FakeKube) => (JSON.parse(secretValue(kube.secret("ns", "dagu-credentials"), CREDENTIALS_KEY)!) as { generation: number }).generation;

test("writes the document once, and not again while its content is the same", async () => {
  const { kube, write, materials } = setup();
  const doc = await documentWith(2);
  assert.deepEqual(await write(doc), { generation: 1, shardNames: [], sameContent: false });
  assert.deepEqual(kube.writes, ["apply Secret/dagu-credentials"]);
  assert.equal(storedGeneration(kube), 1);
  assert.equal(materials.writtenCredentials?.resourceVersion, kube.secret("ns", "dagu-credentials")!.metadata.resourceVersion, "the resourceVersion of its write is kept");

  assert.deepEqual(await write(structuredClone(doc)), { generation: 1, shardNames: [], sameContent: true });
  assert.deepEqual(kube.writes, ["apply Secret/dagu-credentials"], "nothing written the second time");
});

test("a changed document gets the next generation; the same content after a restart is not written again", async () => {
  const { kube, write } = setup();
  await write(await documentWith(1));
  const changed = await documentWith(2);
  assert.deepEqual(await write(changed), { generation: 2, shardNames: [], sameContent: false });
  assert.equal(storedGeneration(kube), 2);

  // A restarted operator (no memory of its writes) compares with what the Secret holds.
  const restarted = setup();
  restarted.kube.seed(kube.secret("ns", "dagu-credentials")!);
  assert.deepEqual(await restarted.write(changed), { generation: 2, shardNames: [], sameContent: true });
  assert.deepEqual(restarted.kube.writes, []);
});

test("the cache lagging its own write does not make it write the same content again", async () => {
  const { kube, write } = setup();
  const doc = await documentWith(1);
  kube.lagging = true;
  await write(doc);
  assert.equal(await kube.secrets.get("ns", "dagu-credentials"), undefined, "the cache has not seen the write");
  assert.deepEqual(await write(doc), { generation: 1, shardNames: [], sameContent: true });
  assert.equal(kube.writes.length, 1);
});

test("someone else's change is read from the API, and the document written again under a new generation", async () => {
  const { kube, write, materials } = setup();
  const doc = await documentWith(1);
  await write(doc);
  // Someone writes another document, generation 5.
  const { credentials: theirs } = await buildCredentials({ generation: 5 });
  await kube.writer.apply(ownedSecret(auth, "dagu-credentials", { [CREDENTIALS_KEY]: JSON.stringify(theirs) }, { authName: "dagu" }));
  assert.deepEqual(await write(doc), { generation: 6, shardNames: [], sameContent: false });
  assert.equal(storedGeneration(kube), 6);

  // Replaced by something unreadable: rewritten, still above every generation published.
  materials.published = { generation: 6, users: new Map(), userInputs: new Map(), rejectedUsers: new Map(), apiKeyInputs: new Map(), webhookInputs: new Map(), rejectedWebhooks: new Map() };
  await kube.writer.apply(ownedSecret(auth, "dagu-credentials", { [CREDENTIALS_KEY]: "{}" }, { authName: "dagu" }));
  assert.deepEqual(await write(doc), { generation: 7, shardNames: [], sameContent: false }, "a generation is never reused");
});

test("nothing is written while the document cannot be (its user or signing keys missing)", async () => {
  const { kube, write, materials } = setup();
  assert.deepEqual(await write(await documentWith(1), false), { generation: 0, shardNames: [], sameContent: false });
  assert.deepEqual(kube.writes, []);
  assert.equal(materials.writtenCredentials, undefined);
});

test("a large document: shards, then the Role names them, then the index; old shards go once unused", async () => {
  const { kube, write, allowed } = setup(4096);
  const large = await write(await documentWith(60));
  assert.ok(large.shardNames.length > 1, `sharded (${large.shardNames.length})`);
  const shardWrites = large.shardNames.map((n) => `apply Secret/${n}`);
  assert.deepEqual(kube.writes, [...shardWrites, `allow ${large.shardNames.join(",")}`, "apply Secret/dagu-credentials"], "the index is the commit point, written last");
  const index = JSON.parse(secretValue(kube.secret("ns", "dagu-credentials"), CREDENTIALS_KEY)!) as { shards: unknown[] };
  assert.equal(index.shards.length, large.shardNames.length);

  // The next generation's shards: the Role names both sets until the old ones are deleted.
  kube.writes.length = 0;
  const next = await write(await documentWith(61));
  assert.equal(next.generation, 2);
  assert.deepEqual(allowed[1], [...large.shardNames, ...next.shardNames]);
  for (const old of large.shardNames) {
    assert.ok(kube.writes.includes(`delete Secret/${old}`), `old shard ${old} deleted`);
    assert.equal(kube.secret("ns", old), undefined);
  }

  // Small again: inline, and every shard deleted after the index no longer names them.
  kube.writes.length = 0;
  const small = await write(await documentWith(1));
  assert.deepEqual(small.shardNames, []);
  assert.equal(kube.writes[0], "apply Secret/dagu-credentials");
  assert.deepEqual(kube.writes.slice(1).sort(), next.shardNames.map((n) => `delete Secret/${n}`).sort());
});

test("a shard name held by someone else's Secret stops the write before anything is written", async () => {
  const { kube, write } = setup(4096);
  const doc = await documentWith(60);
  kube.seed({ apiVersion: "v1", kind: "Secret", metadata: { name: "dagu-credentials-g1-0", namespace: "ns" }, data: {} });
  const err = await write(doc).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ForeignObjectError, `a ForeignObjectError, got ${String(err)}`);
  assert.deepEqual(kube.writes, []);
});
