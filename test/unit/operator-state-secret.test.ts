// The operator state as Secrets: inline while small, in hashed buckets past the inline limit, read
// back whole; a bucket that cannot be read yet or is damaged is reported, never half-used.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { newOperatorState, OPERATOR_STATE_KEY, type OperatorState } from "../../src/operator/operator-state.ts";
import { readOperatorState, stateBucketOf, stateBucketSecretName, storeOperatorState, STATE_BUCKETS } from "../../src/operator/operator-state-secret.ts";

const secret = (name: string, document: string, resourceVersion = "1"): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: "ns", resourceVersion },
  data: { [OPERATOR_STATE_KEY]: Buffer.from(document).toString("base64") },
});

function stateWith(users: number): OperatorState {
  const state = newOperatorState();
  for (let i = 0; i < users; i++) {
    state.passwords[`uid-${i}`] = { fingerprint: "a".repeat(64), hash: `$argon2id$v=19$m=19456,t=2,p=1$${"s".repeat(22)}$${String(i).padStart(43, "h")}`, sourceChangedAt: "2026-01-01T00:00:00.000000000Z" };
  }
  return state;
}

test("a small state stays inline; past the limit its records go to buckets by a hash of the id", () => {
  const small = storeOperatorState(stateWith(2), { bucketed: false, maxInlineBytes: 100_000 });
  assert.equal(small.buckets.size, 0);
  assert.equal(Object.keys((JSON.parse(small.main) as OperatorState).passwords).length, 2);

  const big = storeOperatorState(stateWith(200), { bucketed: false, maxInlineBytes: 10_000 });
  const main = JSON.parse(big.main) as OperatorState & { passwordBuckets: number[] };
  assert.deepEqual(main.passwords, {});
  assert.deepEqual(main.passwordBuckets, [...big.buckets.keys()]);
  assert.equal(big.buckets.size, STATE_BUCKETS, "200 ids fill all 16 buckets");
  for (const [bucket, document] of big.buckets) {
    for (const id of Object.keys((JSON.parse(document) as OperatorState).passwords)) assert.equal(stateBucketOf(id), bucket);
  }
  // Once bucketed, it stays bucketed even when small again.
  assert.ok(storeOperatorState(stateWith(1), { bucketed: true, maxInlineBytes: 10_000 }).buckets.size === 1);
});

test("read back whole; a missing bucket is incomplete, a damaged one invalid and named", async () => {
  const state = stateWith(40);
  const stored = storeOperatorState(state, { bucketed: true, maxInlineBytes: 0 });
  const secrets = new Map([...stored.buckets].map(([b, doc]) => [stateBucketSecretName("dagu", b), secret(stateBucketSecretName("dagu", b), doc)]));
  const main = secret("dagu-operator-state", stored.main);
  const loaded = await readOperatorState(main, "dagu", async (name) => secrets.get(name));
  assert.equal(loaded.kind, "loaded");
  assert.deepEqual(loaded.kind === "loaded" && loaded.state, state);

  const [firstName] = secrets.keys();
  const withoutOne = new Map(secrets);
  withoutOne.delete(firstName!);
  assert.deepEqual(await readOperatorState(secret("dagu-operator-state", stored.main), "dagu", async (name) => withoutOne.get(name)), { kind: "incomplete", missing: firstName });

  const damaged = new Map(secrets).set(firstName!, secret(firstName!, '{"passwords": {"x": {"fingerprint": "nothex"}}}', "2"));
  const invalid = await readOperatorState(secret("dagu-operator-state", stored.main), "dagu", async (name) => damaged.get(name));
  assert.equal(invalid.kind, "invalid");
  assert.match(invalid.kind === "invalid" ? invalid.error.message : "", new RegExp(firstName!));

  assert.deepEqual(await readOperatorState(undefined, "dagu", async () => undefined), { kind: "absent" });
});

test("a changed bucket is read again even when the main Secret did not change", async () => {
  const stored = storeOperatorState(stateWith(3), { bucketed: true, maxInlineBytes: 0 });
  const main = secret("dagu-operator-state", stored.main);
  const buckets = new Map([...stored.buckets].map(([b, doc]) => [stateBucketSecretName("dagu", b), secret(stateBucketSecretName("dagu", b), doc)]));
  const first = await readOperatorState(main, "dagu", async (name) => buckets.get(name));
  const next = stateWith(3);
  next.passwords["uid-0"]!.sourceChangedAt = "2026-02-02T00:00:00.000000000Z";
  const name = stateBucketSecretName("dagu", stateBucketOf("uid-0"));
  buckets.set(name, secret(name, storeOperatorState(next, { bucketed: true, maxInlineBytes: 0 }).buckets.get(stateBucketOf("uid-0"))!, "2"));
  const second = await readOperatorState(main, "dagu", async (n) => buckets.get(n));
  assert.ok(first.kind === "loaded" && second.kind === "loaded");
  assert.equal(second.state.passwords["uid-0"]!.sourceChangedAt, "2026-02-02T00:00:00.000000000Z");
});
