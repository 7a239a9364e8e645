// A DaguAuth's Ready condition as a chain of pure policies (src/operator/dagu-auth-readiness.ts): a table
// of facts and the condition they give, whatever order the reconciler noticed them in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DaguAuthSpec } from "../../src/api/index.ts";
import { READINESS_POLICIES, readiness, type ReadinessFacts, type SecretValue } from "../../src/operator/dagu-auth-readiness.ts";

const builtin = DaguAuthSpec.parse({ mode: "builtin" });
const basic = DaguAuthSpec.parse({ mode: "basic", basic: { username: "admin", passwordSecretRef: { name: "basic", key: "password" } } });
const admin = { role: "admin", disabled: false };
const base: ReadinessFacts = {
  spec: builtin,
  remoteNodeProblems: [],
  certManagerMissing: false,
  document: { generation: 3, users: [admin], apiKeys: 2, webhooks: 1 },
};
const problem = (reason: string): { ready: false; reason: string; message: string } => ({ ready: false, reason, message: `${reason} message` });
const ok = (value: string): SecretValue => ({ ok: true, value });
const missing: SecretValue = { ok: false, problem: problem("SecretNotFound") };
const tokenRef = { name: "token", key: "secret" };

test("each policy alone: facts -> condition", () => {
  const table: [string, Partial<ReadinessFacts>, string, RegExp?][] = [
    ["nothing wrong", {}, "Materialized", /^credentials generation 3: 1 users, 2 API keys, 1 webhooks$/],
    ["someone else's object", { conflict: problem("OwnedObjectConflict") }, "OwnedObjectConflict"],
    ["OIDC", { oidcProblem: problem("OidcClientSecretNotFound") }, "OidcClientSecretNotFound"],
    ["token secret missing", { tokenSecret: { ref: tokenRef, value: missing } }, "SecretNotFound"],
    ["token secret empty", { tokenSecret: { ref: tokenRef, value: ok("") } }, "TokenSecretEmpty", /Secret token \(key secret\) is empty/],
    ["token secret fine", { tokenSecret: { ref: tokenRef, value: ok("x".repeat(40)) } }, "Materialized"],
    ["password missing", { password: { field: "spec.builtin.initialAdmin", value: missing } }, "SecretNotFound"],
    ["password too short", { password: { field: "spec.basic", value: ok("short") } }, "PasswordTooShort", /the password of spec\.basic is shorter than/],
    ["password fine", { password: { field: "spec.basic", value: ok("a-long-enough-password") } }, "Materialized"],
    ["own TLS Secret absent", { tls: { secretName: "tls", data: undefined } }, "SecretNotFound", /Secret tls \(spec\.tls\.secretName\) does not exist/],
    ["own TLS Secret without a pair", { tls: { secretName: "tls", data: { "tls.crt": "c" } } }, "SecretKeyNotFound"],
    ["own TLS Secret fine", { tls: { secretName: "tls", data: { "tls.crt": "c", "tls.key": "k" } } }, "Materialized"],
    ["remote nodes: the first problem", { remoteNodeProblems: [problem("RemoteNodeKeyNotFound"), problem("Other")] }, "RemoteNodeKeyNotFound"],
    ["password changes unreadable", { passwordChangesInvalid: { secretName: "dagu-password-changes" } }, "PasswordChangesInvalid", /Secret dagu-password-changes is not valid/],
    ["cert-manager missing", { certManagerMissing: true }, "CertManagerMissing"],
    ["no admin in builtin mode", { document: { ...base.document, users: [{ role: "viewer", disabled: false }, { role: "admin", disabled: true }] } }, "NoAdmin"],
    ["basic mode needs no admin user", { spec: basic, document: { ...base.document, users: [] } }, "Materialized"],
  ];
  for (const [what, facts, reason, message] of table) {
    const condition = readiness({ ...base, ...facts });
    assert.equal(condition.reason, reason, what);
    assert.equal(condition.ready, reason === "Materialized", what);
    if (message) assert.match(condition.message, message, what);
  }
});

test("the order of importance decides, not the order things were found", () => {
  const everything: ReadinessFacts = {
    ...base,
    conflict: problem("OwnedObjectConflict"),
    oidcProblem: problem("OidcProblem"),
    tokenSecret: { ref: tokenRef, value: ok("") },
    password: { field: "spec.builtin.initialAdmin", value: ok("short") },
    tls: { secretName: "tls", data: undefined },
    remoteNodeProblems: [problem("RemoteNodeKeyNotFound")],
    passwordChangesInvalid: { secretName: "p" },
    certManagerMissing: true,
    document: { ...base.document, users: [] },
  };
  const expected = ["OwnedObjectConflict", "OidcProblem", "TokenSecretEmpty", "PasswordTooShort", "SecretNotFound", "RemoteNodeKeyNotFound", "PasswordChangesInvalid", "CertManagerMissing", "NoAdmin", "Materialized"];
  // Fixing the most important problem each time uncovers the next one.
  const fixes: ((f: ReadinessFacts) => ReadinessFacts)[] = [
    ({ conflict: _c, ...f }) => f,
    ({ oidcProblem: _o, ...f }) => f,
    ({ tokenSecret: _t, ...f }) => f,
    ({ password: _p, ...f }) => f,
    ({ tls: _t, ...f }) => f,
    (f) => ({ ...f, remoteNodeProblems: [] }),
    ({ passwordChangesInvalid: _p, ...f }) => f,
    (f) => ({ ...f, certManagerMissing: false }),
    (f) => ({ ...f, document: base.document }),
  ];
  let facts = everything;
  const seen = [readiness(facts).reason];
  for (const fix of fixes) {
    facts = fix(facts);
    seen.push(readiness(facts).reason);
  }
  assert.deepEqual(seen, expected);
  assert.equal(READINESS_POLICIES.length, fixes.length, "one fix per policy");
});
