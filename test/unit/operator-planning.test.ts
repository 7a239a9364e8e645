// Pure planning logic of the operator: password resolution, generated Secrets,
// signing-key rotation and username conflicts, as tables without a cluster.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { newOperatorState, passwordFingerprint, resolvePassword, type PasswordRecord } from "../../src/operator/operator-state.ts";
import { planGeneratedSecret, PREVIOUS_NOT_AFTER_ANNOTATION, ROTATION_GENERATION_ANNOTATION } from "../../src/operator/generated-secret.ts";
import { planSigningKeys } from "../../src/operator/signing-keys.ts";
import { resolveConflicts } from "../../src/operator/claim-conflicts.ts";
import { Materials } from "../../src/operator/materials.ts";
import { generateApiKey, isApiKeyShaped, isWebhookTokenShaped, generateWebhookToken } from "../../src/common/tokens.ts";

const fakeHash = async (pw: string) => `$argon2id$v=19$m=19456,t=2,p=1$fake$${Buffer.from(pw).toString("base64url")}`;

test("resolvePassword hashes only when the fingerprint changes", async () => {
  const state = newOperatorState();
  let hashes = 0;
  const hash = async (pw: string) => (hashes++, fakeHash(pw));
  const first = await resolvePassword({ state, id: "u1", password: "correct horse", previous: undefined, change: undefined, hash });
  assert.equal(first.hashed, true);
  const again = await resolvePassword({ state, id: "u1", password: "correct horse", previous: first.record, change: undefined, hash });
  assert.equal(again.hashed, false);
  assert.deepEqual(again.record, first.record);
  const changed = await resolvePassword({ state, id: "u1", password: "battery staple", previous: first.record, change: undefined, hash });
  assert.equal(changed.hashed, true);
  assert.notEqual(changed.effectiveHash, first.effectiveHash);
  assert.equal(hashes, 2);
});

test("the fingerprint depends on the user id and the per-DaguAuth key", () => {
  const a = newOperatorState();
  const b = newOperatorState();
  assert.notEqual(passwordFingerprint(a, "u1", "pw"), passwordFingerprint(a, "u2", "pw"));
  assert.notEqual(passwordFingerprint(a, "u1", "pw"), passwordFingerprint(b, "u1", "pw"));
});

test("the newer of the source password and a self-service change wins", async () => {
  const state = newOperatorState();
  const previous: PasswordRecord = {
    fingerprint: passwordFingerprint(state, "u1", "source-password"),
    hash: await fakeHash("source-password"),
    sourceChangedAt: "2026-01-01T00:00:00.000000000Z",
  };
  const newer = { passwordHash: await fakeHash("self-service"), changedAt: "2026-01-02T00:00:00.000000001Z" };
  const r1 = await resolvePassword({ state, id: "u1", password: "source-password", previous, change: newer, hash: fakeHash });
  assert.equal(r1.effectiveHash, newer.passwordHash);
  assert.equal(r1.passwordChangedAt, newer.changedAt);
  const older = { passwordHash: newer.passwordHash, changedAt: "2025-12-31T00:00:00Z" };
  const r2 = await resolvePassword({ state, id: "u1", password: "source-password", previous, change: older, hash: fakeHash });
  assert.equal(r2.effectiveHash, previous.hash);
  // The source changes after the self-service change: the source wins again, with a later timestamp.
  const r3 = await resolvePassword({ state, id: "u1", password: "new-source", previous, change: newer, hash: fakeHash, now: () => new Date("2026-02-01T00:00:00Z") });
  assert.equal(r3.effectiveHash, await fakeHash("new-source"));
  assert.ok(r3.passwordChangedAt > newer.changedAt);
});

const gen = (v: string) => () => v;

test("a generated Secret is created once and then left alone", () => {
  const now = new Date("2026-05-01T00:00:00Z");
  const created = planGeneratedSecret({ existing: undefined, fields: { apiKey: gen("k1") }, rotationGeneration: 0, overlapMs: 3600_000, now });
  assert.equal(created.changed, true);
  assert.deepEqual(created.current, { apiKey: "k1" });
  const kept = planGeneratedSecret({
    existing: { data: created.data, annotations: created.annotations },
    fields: { apiKey: gen("k2") },
    rotationGeneration: 0,
    overlapMs: 3600_000,
    now: new Date(now.getTime() + 1000),
  });
  assert.equal(kept.changed, false);
  assert.deepEqual(kept.current, { apiKey: "k1" });
});

test("rotation issues a new value and keeps the old one for the overlap", () => {
  const t0 = new Date("2026-05-01T00:00:00Z");
  const v1 = planGeneratedSecret({ existing: undefined, fields: { token: gen("t1") }, rotationGeneration: 0, overlapMs: 60_000, now: t0 });
  const t1 = new Date(t0.getTime() + 10_000);
  const v2 = planGeneratedSecret({ existing: { data: v1.data, annotations: v1.annotations }, fields: { token: gen("t2") }, rotationGeneration: 1, overlapMs: 60_000, now: t1 });
  assert.equal(v2.changed, true);
  assert.deepEqual(v2.current, { token: "t2" });
  assert.deepEqual(v2.previous?.values, { token: "t1" });
  assert.equal(v2.annotations[ROTATION_GENERATION_ANNOTATION], "1");
  assert.equal(v2.annotations[PREVIOUS_NOT_AFTER_ANNOTATION], new Date(t1.getTime() + 60_000).toISOString());
  // Within the overlap nothing changes; after it, the previous value is dropped.
  const within = planGeneratedSecret({ existing: { data: v2.data, annotations: v2.annotations }, fields: { token: gen("x") }, rotationGeneration: 1, overlapMs: 60_000, now: new Date(t1.getTime() + 30_000) });
  assert.equal(within.changed, false);
  assert.deepEqual(within.previous?.values, { token: "t1" });
  const after = planGeneratedSecret({ existing: { data: v2.data, annotations: v2.annotations }, fields: { token: gen("x") }, rotationGeneration: 1, overlapMs: 60_000, now: new Date(t1.getTime() + 61_000) });
  assert.equal(after.changed, true);
  assert.equal(after.previous, undefined);
  assert.deepEqual(after.data, { token: "t2" });
});

test("a field added by a mode change is generated without rotating the others", () => {
  const now = new Date();
  const v1 = planGeneratedSecret({ existing: undefined, fields: { token: gen("t1") }, rotationGeneration: 0, overlapMs: 0, now });
  const v2 = planGeneratedSecret({ existing: { data: v1.data, annotations: v1.annotations }, fields: { token: gen("t2"), hmacSecret: gen("h1") }, rotationGeneration: 0, overlapMs: 0, now });
  assert.equal(v2.changed, true);
  assert.deepEqual(v2.current, { token: "t1", hmacSecret: "h1" });
  const v3 = planGeneratedSecret({ existing: { data: v2.data, annotations: v2.annotations }, fields: { token: gen("t3") }, rotationGeneration: 0, overlapMs: 0, now });
  assert.equal(v3.changed, true, "a dropped field is removed");
  assert.deepEqual(v3.data, { token: "t1" });
});

test("signing keys: generated once, rotated with overlap, replaced by a referenced secret", () => {
  const t0 = new Date("2026-05-01T00:00:00Z");
  const p1 = planSigningKeys({ remembered: [], rememberedRotation: 0, rememberedReferenced: false, rotationGeneration: 0, overlapMs: 60_000, now: t0 });
  assert.equal(p1.keys.length, 1);
  const p2 = planSigningKeys({ remembered: p1.keys, rememberedRotation: p1.rotation, rememberedReferenced: false, rotationGeneration: 0, overlapMs: 60_000, now: t0 });
  assert.deepEqual(p2.keys, p1.keys, "stable without a rotation");
  const p3 = planSigningKeys({ remembered: p2.keys, rememberedRotation: 0, rememberedReferenced: false, rotationGeneration: 1, overlapMs: 60_000, now: t0 });
  assert.equal(p3.keys.length, 2);
  assert.notEqual(p3.activeKid, p1.activeKid);
  assert.equal(p3.keys[1]!.kid, p1.activeKid);
  assert.equal(p3.keys[1]!.notAfter, new Date(t0.getTime() + 60_000).toISOString());
  const later = new Date(t0.getTime() + 120_000);
  const p4 = planSigningKeys({ remembered: p3.keys, rememberedRotation: 1, rememberedReferenced: false, rotationGeneration: 1, overlapMs: 60_000, now: later });
  assert.equal(p4.keys.length, 1, "the retired key is gone after its overlap");
  const ref = Buffer.alloc(32, 7).toString("base64url");
  const p5 = planSigningKeys({ remembered: p4.keys, rememberedRotation: 1, rememberedReferenced: false, referencedSecret: ref, rotationGeneration: 1, overlapMs: 60_000, now: later });
  assert.equal(p5.keys[0]!.secret, ref);
  assert.equal(p5.referenced, true);
  assert.equal(p5.keys.length, 2);
  const p6 = planSigningKeys({ remembered: p5.keys, rememberedRotation: 1, rememberedReferenced: true, rotationGeneration: 1, overlapMs: 60_000, now: later });
  assert.notEqual(p6.keys[0]!.secret, ref, "dropping secretRef generates a key");
  assert.equal(p6.referenced, false);
});

test("username conflicts resolve deterministically: initial admin, then oldest, then name", () => {
  const claims = [
    { id: "b", key: "alice", objectName: "alice-b", creationTimestamp: "2026-01-02T00:00:00Z", isInitialAdmin: false },
    { id: "a", key: "alice", objectName: "alice-a", creationTimestamp: "2026-01-02T00:00:00Z", isInitialAdmin: false },
    { id: "c", key: "alice", objectName: "alice-c", creationTimestamp: "2026-01-01T00:00:00Z", isInitialAdmin: false },
    { id: "admin", key: "root", objectName: "", creationTimestamp: "2027-01-01T00:00:00Z", isInitialAdmin: true },
    { id: "d", key: "root", objectName: "root", creationTimestamp: "2020-01-01T00:00:00Z", isInitialAdmin: false },
  ];
  const r = resolveConflicts(claims);
  assert.deepEqual([...r.winners].sort(), ["admin", "c"]);
  assert.equal(r.losers.get("a")?.heldByName, "alice-c");
  assert.equal(r.losers.get("d")?.heldByName, "the initial admin");
  fc.assert(
    fc.property(fc.shuffledSubarray(claims, { minLength: claims.length }), (shuffled) => {
      assert.deepEqual([...resolveConflicts(shuffled).winners].sort(), ["admin", "c"]);
    }),
  );
});

test("generated keys and tokens have Dagu's formats", () => {
  for (let i = 0; i < 200; i++) {
    const key = generateApiKey();
    assert.ok(isApiKeyShaped(key), key.slice(0, 6));
    assert.ok(!isWebhookTokenShaped(key));
    const token = generateWebhookToken();
    assert.ok(isWebhookTokenShaped(token));
    assert.ok(!isApiKeyShaped(token));
  }
  assert.ok(!isApiKeyShaped("dagu_short"));
  assert.ok(!isApiKeyShaped(`dagu_${"0".repeat(40)}`), "0 is not base58");
});

test("a child created again under the same name (new uid) takes the old one's contribution out of its DaguAuth", () => {
  const m = new Materials();
  const problem = { ready: false, reason: "X", message: "x" } as const;
  m.rememberKey("apiKeys", "ns/ci", "uid-1");
  m.of("ns/dagu").apiKeys.set("uid-1", { ok: false, generation: 1, problem });
  assert.deepEqual(m.rememberKey("apiKeys", "ns/ci", "uid-1"), [], "the same object: nothing to drop");
  assert.deepEqual(m.rememberKey("apiKeys", "ns/ci", "uid-2"), ["ns/dagu"], "the DaguAuth to reconcile");
  assert.equal(m.of("ns/dagu").apiKeys.has("uid-1"), false);
  assert.deepEqual(m.forgetKey("apiKeys", "ns/ci"), [], "uid-2 offered nothing yet");
});
