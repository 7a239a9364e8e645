import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { contentHash, generationOrMetadataChanged, isResync } from "../../src/operator/runtime/predicates.ts";
import { stableStringify as stableJson } from "../../src/common/stable-json.ts";
import type { KubeObject, ObjectMeta } from "../../src/common/kube/client.ts";

const auth = (over: Partial<KubeObject["metadata"]> = {}, rest: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "auth.dagu.dev/v1alpha1",
  kind: "DaguAuth",
  metadata: { name: "a", namespace: "ns", resourceVersion: "1", generation: 1, labels: { x: "1" }, ...over },
  spec: { mode: "builtin" },
  ...rest,
});

const secret = (rv: string, data: Record<string, string>, over: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "s", namespace: "ns", resourceVersion: rv, ...over },
  type: "Opaque",
  data,
});

describe("generationOrMetadataChanged", () => {
  test("skips a status-only update (same generation and metadata)", () => {
    const before = auth();
    const after = auth({ resourceVersion: "2" }, { status: { observedGeneration: 1 } });
    assert.equal(generationOrMetadataChanged(before, after), false);
  });

  test("passes a spec change (generation bumped)", () => {
    assert.equal(generationOrMetadataChanged(auth(), auth({ resourceVersion: "2", generation: 2 })), true);
  });

  const metadataChanges: [string, Partial<ObjectMeta>][] = [
    ["labels", { labels: { x: "2" } }],
    ["annotations", { annotations: { note: "n" } }],
    ["finalizers", { finalizers: ["auth.dagu.dev/cleanup"] }],
    ["deletionTimestamp", { deletionTimestamp: "2025-01-01T00:00:00Z" }],
    ["ownerReferences", { ownerReferences: [{ apiVersion: "v1", kind: "X", name: "o", uid: "u" }] }],
  ];
  for (const [what, over] of metadataChanges) {
    test(`passes a change of ${what} with the same generation`, () => {
      assert.equal(generationOrMetadataChanged(auth(), auth({ resourceVersion: "2", ...over })), true);
    });
  }

  test("label order does not count as a change", () => {
    const a = auth({ labels: { x: "1", y: "2" } });
    const b = auth({ resourceVersion: "2", labels: { y: "2", x: "1" } });
    assert.equal(generationOrMetadataChanged(a, b), false);
  });

  test("Secrets (no generation): data changes pass, metadata-free rewrites do not", () => {
    assert.equal(generationOrMetadataChanged(secret("1", { k: "dg==" }), secret("2", { k: "dw==" })), true);
    assert.equal(generationOrMetadataChanged(secret("1", { k: "dg==" }), secret("2", { k: "dg==" })), false, "same data, new resourceVersion (e.g. managedFields)");
    assert.equal(generationOrMetadataChanged(secret("1", { k: "dg==" }), secret("2", { k: "dg==" }, { annotations: { a: "b" } })), true);
  });

  test("same resourceVersion is never a change; a resync is recognizable", () => {
    const s = secret("1", { k: "dg==" });
    assert.equal(generationOrMetadataChanged(s, secret("1", { k: "other" })), false);
    assert.equal(generationOrMetadataChanged(s, s), false);
    assert.equal(isResync(s, s), true);
    assert.equal(isResync(s, secret("1", { k: "dg==" })), false);
  });
});

test("contentHash ignores metadata and status, stableJson sorts keys", () => {
  assert.equal(contentHash(secret("1", { a: "1", b: "2" })), contentHash(secret("9", { b: "2", a: "1" }, { labels: { l: "x" } })));
  assert.notEqual(contentHash(secret("1", { a: "1" })), contentHash(secret("1", { a: "2" })));
  assert.equal(stableJson({ b: [{ d: 1, c: 2 }], a: null }), '{"a":null,"b":[{"c":2,"d":1}]}');
});
