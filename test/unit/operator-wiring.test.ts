// Pieces of the operator's start-up (src/operator/wiring/) that decide something on their own: which
// reconciles a Secret's change asks for, and a graceful stop that goes on past a step that hangs.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { AUTH_LABEL } from "../../src/operator/context.ts";
import { secretInterest } from "../../src/operator/wiring/event-routing.ts";
import { stopInSteps } from "../../src/operator/wiring/graceful-stop.ts";

const noReferrers = { referrers: () => [] };

test("a Secret's change asks for its DaguAuth (label), its owners, and the resources that reference it", () => {
  const credentials: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "dagu-credentials", namespace: "ns", labels: { [AUTH_LABEL]: "dagu" } } };
  assert.deepEqual(secretInterest(credentials, noReferrers), [{ kind: "auth", key: "ns/dagu" }]);

  const consumer: KubeObject = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "ci-key", namespace: "ns", ownerReferences: [{ apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguApiKey", name: "ci", uid: "u" }, { apiVersion: "v1", kind: "ConfigMap", name: "other", uid: "v" }] },
  };
  assert.deepEqual(secretInterest(consumer, noReferrers), [{ kind: "apiKey", key: "ns/ci" }], "an owner of another kind asks for nothing");

  const password: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "alice-password", namespace: "ns" } };
  const references = { referrers: (kind: "users" | "auths", namespace: string, name: string) => (namespace === "ns" && name === "alice-password" ? (kind === "users" ? ["ns/alice"] : ["ns/dagu"]) : []) };
  assert.deepEqual(secretInterest(password, references), [{ kind: "user", key: "ns/alice" }, { kind: "auth", key: "ns/dagu" }]);
  assert.deepEqual(secretInterest({ ...password, metadata: { ...password.metadata, namespace: "other" } }, references), [], "a namesake elsewhere concerns nobody");
});

test("a graceful stop goes on past a step that does not finish, and says which", async () => {
  const ran: string[] = [];
  const warned: unknown[] = [];
  await stopInSteps(
    [
      { what: "hangs", run: () => (ran.push("hangs"), new Promise(() => undefined)) },
      { what: "next", run: async () => void ran.push("next") },
    ],
    { warn: (o: unknown) => void warned.push(o) },
    5,
  );
  assert.deepEqual(ran, ["hangs", "next"]);
  assert.deepEqual(warned, [{ step: "hangs", waitedMs: 5 }]);
});
