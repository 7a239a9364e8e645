// Ready, Reconciling and Stalled as every kind writes them (src/operator/conditions.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { pending, withConditions, type ReadyState } from "../../src/operator/conditions.ts";

const t0 = new Date("2030-01-01T00:00:00Z");
const t1 = new Date("2030-01-01T00:01:00Z");
const t2 = new Date("2030-01-01T00:02:00Z");
const types = (c: { type: string; status: string }[]) => c.map((x) => `${x.type}=${x.status}`);

test("each state sets Ready and at most one of Reconciling and Stalled, with the same reason", () => {
  const cases: [ReadyState, string[]][] = [
    [{ ready: true, reason: "Materialized", message: "ok" }, ["Ready=True"]],
    [pending("waiting"), ["Ready=Unknown", "Reconciling=True"]],
    [{ ready: false, reason: "SecretNotFound", message: "m" }, ["Ready=False", "Reconciling=True"]],
    [{ ready: false, reason: "DaguAuthNotFound", message: "m" }, ["Ready=False", "Reconciling=True"]],
    [{ ready: false, reason: "DuplicateUsername", message: "m" }, ["Ready=False", "Stalled=True"]],
    [{ ready: false, reason: "OwnedObjectConflict", message: "m" }, ["Ready=False", "Stalled=True"]],
  ];
  for (const [state, expected] of cases) {
    const c = withConditions(undefined, state, 3, t0);
    assert.deepEqual(types(c), expected, state.reason);
    for (const x of c) assert.deepEqual([x.reason, x.message, x.observedGeneration], [state.reason, state.message, 3]);
  }
});

test("a transition keeps each condition's time while its status stays, and drops what is no longer True", () => {
  const stalled = withConditions(undefined, { ready: false, reason: "PasswordTooShort", message: "m" }, 1, t0);
  const stillStalled = withConditions(stalled, { ready: false, reason: "DuplicateUsername", message: "m2" }, 2, t1);
  assert.deepEqual(stillStalled.map((c) => c.lastTransitionTime), ["2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z"], "same statuses: the times stay");
  const waiting = withConditions(stillStalled, { ready: false, reason: "SecretNotFound", message: "m3" }, 2, t2);
  assert.deepEqual(types(waiting), ["Ready=False", "Reconciling=True"], "Stalled is gone");
  assert.deepEqual(waiting.map((c) => c.lastTransitionTime), ["2030-01-01T00:00:00Z", "2030-01-01T00:02:00Z"]);
  const other = { type: "SomethingElse", status: "True" as const, reason: "X", message: "", lastTransitionTime: "2029-01-01T00:00:00Z" };
  const ready = withConditions([other, ...waiting], { ready: true, reason: "Materialized", message: "ok" }, 2, t2);
  assert.deepEqual(types(ready), ["SomethingElse=True", "Ready=True"], "a condition of another type is kept; Reconciling is gone");
  assert.equal(ready[1]!.lastTransitionTime, "2030-01-01T00:02:00Z");
});
