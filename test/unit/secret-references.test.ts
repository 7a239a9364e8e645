// The index of which DaguAuths and DaguUsers reference a Secret, as the operator's informers feed it.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { SecretReferences } from "../../src/operator/secret-references.ts";

const user = (name: string, secret: string | undefined, extra: Partial<KubeObject["metadata"]> = {}): KubeObject => ({
  metadata: { namespace: "ns", name, ...extra },
  spec: secret ? { password: { secretRef: { name: secret, key: "password" } } } : { password: { generate: { secretName: `${name}-pw` } } },
});

test("users and DaguAuths are found by the Secrets they reference, through updates and deletes", () => {
  const refs = new SecretReferences();
  refs.track("users", user("alice", "shared"));
  refs.track("users", user("bob", "shared"));
  refs.track("users", user("carol", undefined));
  assert.deepEqual([...refs.referrers("users", "ns", "shared")].sort(), ["ns/alice", "ns/bob"]);
  assert.equal(refs.isReferenced("ns", "carol-pw"), false, "a generated password Secret is owned, not referenced");
  assert.equal(refs.isReferenced("other", "shared"), false, "namespaced");

  assert.deepEqual(refs.track("users", user("alice", "alice-own")), [], "bob still references shared");
  assert.deepEqual([...refs.referrers("users", "ns", "shared")], ["ns/bob"]);
  assert.deepEqual(refs.track("users", user("bob", "shared"), true), ["ns/shared"], "the last reference is gone: its cached body can go");
  assert.equal(refs.isReferenced("ns", "shared"), false);
  assert.deepEqual(refs.track("users", user("alice", "alice-own", { deletionTimestamp: "2026-01-01T00:00:00Z" })), ["ns/alice-own"]);
  assert.equal(refs.isReferenced("ns", "alice-own"), false, "a resource being deleted references nothing");

  const auth: KubeObject = {
    metadata: { namespace: "ns", name: "dagu" },
    spec: { builtin: { token: { secretRef: { name: "tok", key: "k" } }, initialAdmin: { passwordSecretRef: { name: "adm", key: "p" } } }, tls: { secretName: "own-tls" } },
  };
  refs.track("auths", auth);
  assert.deepEqual(["tok", "adm", "own-tls"].map((n) => [...refs.referrers("auths", "ns", n)]), [["ns/dagu"], ["ns/dagu"], ["ns/dagu"]]);
  refs.track("auths", { ...auth, spec: { ...(auth.spec as object), tls: { issuerRef: { name: "ca" }, secretName: "issued" } } });
  assert.equal(refs.isReferenced("ns", "issued"), false, "a Secret cert-manager issues is not watched as a reference");
  assert.equal(refs.isReferenced("ns", "own-tls"), false);
});
