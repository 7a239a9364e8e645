// The longest DaguAuth name the CRD allows is computed from every name the operator derives from it;
// here the operator's own name functions are held to that table, so a new suffix cannot slip past it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildCrd, DAGU_AUTH_DERIVED_NAMES, DAGU_AUTH_NAME_MAX_LENGTH, KINDS, credentialsSecretName, loginThrottleSecretName, passwordChangesSecretName, shardSecretName, DNS_SUBDOMAIN } from "../../src/api/index.ts";
import { certificate, sidecarObjects } from "../../src/operator/auth-resources.ts";
import { ownedSecret } from "../../src/operator/context.ts";
import { operatorStateSecretName } from "../../src/operator/operator-state.ts";
import { STATE_BUCKETS, stateBucketSecretName } from "../../src/operator/operator-state-secret.ts";
import { DaguAuthSpec } from "../../src/api/index.ts";

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Every name and label value the operator derives from a DaguAuth called `name`, with the limit of each. */
function derived(name: string): { value: string; max: number; what: string }[] {
  const auth = { apiVersion: "auth.dagu.dev/v1alpha1", kind: "DaguAuth", metadata: { name, namespace: "ns", uid: "u" } };
  const spec = DaguAuthSpec.parse({ tls: { issuerRef: { name: "ca" }, dnsNames: ["a.example.com"] } });
  const objects = [...sidecarObjects(auth, spec, [shardSecretName(name, Number.MAX_SAFE_INTEGER, 999)]), certificate(auth, spec)!, ownedSecret(auth, credentialsSecretName(name), {}, { authName: name })];
  const out = objects.flatMap((o) => [
    { value: o.metadata.name!, max: 253, what: `${o.kind} name` },
    ...Object.entries(o.metadata.labels ?? {}).map(([k, v]) => ({ value: v, max: 63, what: `label ${k} of ${o.kind}` })),
  ]);
  for (const secret of [credentialsSecretName(name), passwordChangesSecretName(name), loginThrottleSecretName(name), operatorStateSecretName(name), stateBucketSecretName(name, STATE_BUCKETS - 1), shardSecretName(name, Number.MAX_SAFE_INTEGER, 999)]) {
    out.push({ value: secret, max: 253, what: `Secret ${secret.slice(name.length)}` });
  }
  return out;
}

test("a DaguAuth name of the longest allowed length gives valid names and label values everywhere", () => {
  assert.equal(DAGU_AUTH_NAME_MAX_LENGTH, 63, "the auth.dagu.dev/auth label value decides");
  const longest = `a${"b".repeat(DAGU_AUTH_NAME_MAX_LENGTH - 2)}c`;
  for (const d of derived(longest)) {
    assert.ok(d.value.length <= d.max, `${d.what}: ${d.value.length} > ${d.max}`);
    assert.match(d.value, d.max === 63 ? LABEL_VALUE : DNS_SUBDOMAIN, d.what);
  }
  // One more character breaks the label: the limit is tight, not just safe.
  assert.ok(derived(`${longest}d`).some((d) => d.value.length > d.max));
  // The table the CRD rule is computed from covers every suffix the operator uses.
  for (const d of derived(longest)) {
    if (d.max !== 253) continue;
    const suffix = d.value.slice(longest.length);
    const covered = DAGU_AUTH_DERIVED_NAMES.some((entry) => entry.max <= 253 && entry.name("").length >= suffix.length);
    assert.ok(covered, `the suffix ${suffix} is within the table`);
  }
  assert.ok(DAGU_AUTH_DERIVED_NAMES.some((e) => e.max === 63 && e.name("x") === "x"));
});

test("the CRDs carry the name limit and the immutable secretNames", () => {
  const byKind = Object.fromEntries(KINDS.map((k) => [k.kind, JSON.stringify(buildCrd(k))]));
  assert.match(byKind.DaguAuth!, new RegExp(`self\\.metadata\\.name\\.size\\(\\) <= ${DAGU_AUTH_NAME_MAX_LENGTH}`));
  assert.match(byKind.DaguAuth!, /metadata\.name: a DaguAuth name has at most 63 characters/);
  for (const [kind, field] of [["DaguApiKey", "spec.secretName"], ["DaguWebhook", "spec.secretName"], ["DaguUser", "spec.password.generate.secretName"]] as const) {
    assert.ok(byKind[kind]!.includes(`"rule":"self == oldSelf","message":"${field} is immutable`), `${kind} ${field}`);
  }
});
