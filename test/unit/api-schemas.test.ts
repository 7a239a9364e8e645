// The zod schemas of src/api: defaults, refusals with field paths, durations, the credentials contract.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import type { z } from "zod";
import {
  type Credentials,
  DaguAuthSpec,
  DaguUserSpec,
  DaguWebhookSpec,
  KINDS,
  isCidr,
  joinShards,
  parseCredentials,
  parseCredentialsEntry,
  parsePasswordChanges,
  rfc3339ToNanos,
  shardCredentials,
} from "../../src/api/index.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The issues of a failed parse as "path: message" lines, for readable assertions. */
function issues(result: z.ZodSafeParseResult<unknown>): string[] {
  assert.equal(result.success, false, "expected the value to be refused");
  return result.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

const user = {
  authRef: { name: "dagu" },
  username: "alice",
  role: "admin",
  password: { secretRef: { name: "alice-password", key: "password" } },
};

test("DaguAuth spec: an empty spec means builtin mode with Dagu's defaults", () => {
  const spec = DaguAuthSpec.parse({});
  assert.equal(spec.mode, "builtin");
  assert.deepEqual(spec.login, { maxAttempts: 5, window: "15m", lockout: "15m" });
  assert.equal(spec.builtin, undefined);
  assert.deepEqual(DaguAuthSpec.parse({ builtin: {} }).builtin?.token, { ttl: "24h" });
});

test("DaguAuth spec: cross-field rules refuse with the field's path and the CEL message", () => {
  assert.deepEqual(issues(DaguAuthSpec.safeParse({ mode: "basic" })), [
    "basic: spec.basic is required when spec.mode is basic",
  ]);
  const basic = { username: "admin", passwordSecretRef: { name: "p", key: "password" } };
  assert.deepEqual(issues(DaguAuthSpec.safeParse({ basic })), ["basic: spec.basic must not be set when spec.mode is builtin"]);
  assert.deepEqual(issues(DaguAuthSpec.safeParse({ tls: { issuerRef: { name: "le" } } })), [
    "tls.dnsNames: spec.tls.dnsNames is required when spec.tls.issuerRef is set",
  ]);
  assert.deepEqual(issues(DaguAuthSpec.safeParse({ builtin: { token: { ttl: "30s" } } })), [
    "builtin.token.ttl: spec.builtin.token.ttl must be at least 1m",
  ]);
  assert.deepEqual(issues(DaguAuthSpec.safeParse({ trustedProxies: ["10.0.0.0/8", "10.0.0.1"] })), [
    "trustedProxies.1: spec.trustedProxies entries must be CIDRs such as 10.0.0.0/8 or fd00::/8",
  ]);
});

test("isCidr accepts IPv4 and IPv6 blocks and refuses bare addresses and bad prefixes", () => {
  for (const ok of ["10.0.0.0/8", "192.168.1.7/32", "0.0.0.0/0", "fd00::/8", "::1/128"]) assert.ok(isCidr(ok), ok);
  for (const bad of ["10.0.0.1", "10.0.0.0/33", "fd00::/129", "10.0.0.0/08", "10.0.0.0/", "host/8", ""]) {
    assert.ok(!isCidr(bad), bad);
  }
});

test("DaguUser spec: defaults, and exactly one password source", () => {
  const spec = DaguUserSpec.parse(user);
  assert.equal(spec.disabled, false);
  assert.equal(spec.allowPasswordChange, true);
  const msg = "password: spec.password must set exactly one of secretRef or generate";
  assert.deepEqual(issues(DaguUserSpec.safeParse({ ...user, password: {} })), [msg]);
  const both = { ...user.password, generate: { secretName: "alice-generated" } };
  assert.deepEqual(issues(DaguUserSpec.safeParse({ ...user, password: both })), [msg]);
});

test("DaguUser spec: role, username and email are checked", () => {
  assert.match(issues(DaguUserSpec.safeParse({ ...user, role: "root" })).join(), /^role: /);
  assert.match(issues(DaguUserSpec.safeParse({ ...user, username: "a b" })).join(), /^username: /);
  assert.match(issues(DaguUserSpec.safeParse({ ...user, email: "not-an-email" })).join(), /^email: /);
  assert.ok(DaguUserSpec.safeParse({ ...user, username: "alice.smith@example.com", email: "a+b@example.co" }).success);
  assert.match(issues(DaguUserSpec.safeParse({ ...user, authRef: undefined })).join(), /^authRef: /);
});

test("DaguWebhook spec: Dagu's DAG name rule, and hmacEnforcement only with tokenAndHmac", () => {
  const hook = { authRef: { name: "dagu" }, dagName: "hello", secretName: "hello-webhook" };
  const spec = DaguWebhookSpec.parse(hook);
  assert.deepEqual(spec.auth, { mode: "token" });
  assert.equal(spec.enabled, true);
  for (const ok of ["hello", "my.dag_v2-final", "a".repeat(40), ".hidden"]) {
    assert.ok(DaguWebhookSpec.safeParse({ ...hook, dagName: ok }).success, ok);
  }
  for (const bad of ["team/hello", "..", ".", "a".repeat(41), "", "with space"]) {
    assert.match(issues(DaguWebhookSpec.safeParse({ ...hook, dagName: bad })).join(), /^dagName: /, bad);
  }
  assert.deepEqual(issues(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "hmac", hmacEnforcement: "observe" } })), [
    "auth.hmacEnforcement: spec.auth.hmacEnforcement is only allowed when spec.auth.mode is tokenAndHmac",
  ]);
  assert.ok(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "tokenAndHmac", hmacEnforcement: "observe" } }).success);
});

test("DaguWebhook spec: timestampWindow only with a signature, from 1s to 24h", () => {
  const hook = { authRef: { name: "dagu" }, dagName: "hello", secretName: "hello-webhook" };
  assert.ok(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "hmac", timestampWindow: "5m" } }).success);
  assert.ok(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "tokenAndHmac", timestampWindow: "24h" } }).success);
  assert.deepEqual(issues(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "token", timestampWindow: "5m" } })), [
    "auth.timestampWindow: spec.auth.timestampWindow needs a signature: spec.auth.mode tokenAndHmac or hmac",
  ]);
  assert.deepEqual(issues(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "hmac", timestampWindow: "0s" } })), ["auth.timestampWindow: spec.auth.timestampWindow must be at least 1s"]);
  assert.deepEqual(issues(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "hmac", timestampWindow: "25h" } })), ["auth.timestampWindow: spec.auth.timestampWindow must be at most 24h"]);
  assert.match(issues(DaguWebhookSpec.safeParse({ ...hook, auth: { mode: "hmac", timestampWindow: "5 minutes" } })).join(), /^auth.timestampWindow: /);
});

const HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$c29tZWhhc2hzb21laGFzaA";
const credentials: Credentials = {
  version: 1,
  authName: "dagu",
  authUid: "6f0c1b1e-0000-4000-8000-000000000001",
  generation: 7,
  mode: "builtin",
  token: {
    issuer: "dagu-auth",
    audience: "dagu",
    ttlSeconds: 86_400,
    activeKid: "k2",
    keys: [
      { kid: "k2", secret: Buffer.alloc(32, 2).toString("base64url") },
      { kid: "k1", secret: Buffer.alloc(32, 1).toString("base64url"), notAfter: "2030-01-02T00:00:00Z" },
    ],
  },
  users: [
    {
      id: "initial-admin:6f0c1b1e-0000-4000-8000-000000000001",
      username: "admin",
      role: "admin",
      passwordHash: HASH,
      passwordChangedAt: "2026-01-02T03:04:05.123456789Z",
      disabled: false,
      allowPasswordChange: true,
    },
  ],
  apiKeys: [
    {
      id: "k-uid",
      name: "runner",
      role: "operator",
      digest: "a".repeat(64),
      prefix: "dagu_3Fz",
      createdAt: "2026-01-01T00:00:00Z",
    },
  ],
  webhooks: [
    {
      id: "w-uid",
      dagName: "hello",
      enabled: true,
      mode: "tokenAndHmac",
      hmacEnforcement: "strict",
      tokenDigests: [{ digest: "b".repeat(64) }],
      hmacSecrets: [{ secret: Buffer.alloc(32, 3).toString("base64url") }],
    },
  ],
  login: { maxAttempts: 5, windowSeconds: 900, lockoutSeconds: 900 },
  trustedProxies: ["10.0.0.0/8"],
};

test("credentials document: a JSON round trip gives back the same document", () => {
  const result = parseCredentials(JSON.stringify(credentials));
  assert.ok(result.success, result.error?.message);
  assert.deepEqual(result.data, credentials);
});

test("credentials document: refusals name the field", () => {
  const bcrypt = structuredClone(credentials);
  bcrypt.users[0]!.passwordHash = "$2b$12$abcdefghijklmnopqrstuv";
  assert.deepEqual(issues(parseCredentials(JSON.stringify(bcrypt))), [
    "users.0.passwordHash: must be an argon2id PHC string ($argon2id$...)",
  ]);
  const weak = structuredClone(credentials);
  weak.token!.keys[0]!.secret = Buffer.alloc(16).toString("base64url");
  weak.token!.activeKid = "nope";
  assert.deepEqual(issues(parseCredentials(JSON.stringify(weak))).sort(), [
    "token.activeKid: no key has the activeKid",
    "token.keys.0.secret: must decode to at least 32 bytes",
  ]);
  const shortHmac = structuredClone(credentials);
  shortHmac.webhooks[0]!.hmacSecrets = [{ secret: "4vJ9" + "x".repeat(30) }, { secret: "a+b/".repeat(12) }];
  assert.deepEqual(issues(parseCredentials(JSON.stringify(shortHmac))), [
    "webhooks.0.hmacSecrets.0.secret: must be at least 40 characters (32 random bytes, base64url or Base58)",
    "webhooks.0.hmacSecrets.1.secret: must be base64url or Base58 text (letters, digits, '_', '-')",
  ]);
  const dup = structuredClone(credentials);
  dup.users.push({ ...dup.users[0]!, id: "other" });
  assert.deepEqual(issues(parseCredentials(JSON.stringify(dup))), ["users.1.username: duplicate username"]);
  const noHmac = structuredClone(credentials);
  noHmac.webhooks[0]!.hmacSecrets = [];
  assert.deepEqual(issues(parseCredentials(JSON.stringify(noHmac))), [
    "webhooks.0.hmacSecrets: mode tokenAndHmac needs an HMAC secret",
  ]);
  // Dagu's page: API keys and webhooks require builtin auth. A basic-mode document carrying them is refused.
  const basic = { ...structuredClone(credentials), mode: "basic", token: undefined, basic: { username: "ops", passwordHash: HASH } };
  assert.deepEqual(issues(parseCredentials(JSON.stringify(basic))), [
    "apiKeys: apiKeys must be empty in basic mode: API keys need builtin mode, as in Dagu",
    "webhooks: webhooks must be empty in basic mode: webhooks need builtin mode, as in Dagu",
  ]);
  assert.ok(parseCredentials(JSON.stringify({ ...basic, apiKeys: [], webhooks: [] })).success);
  const tokenWindow = structuredClone(credentials);
  Object.assign(tokenWindow.webhooks[0]!, { mode: "token", hmacSecrets: [], timestampWindowSeconds: 300 });
  assert.deepEqual(issues(parseCredentials(JSON.stringify(tokenWindow))), [
    "webhooks.0.timestampWindowSeconds: a timestamp window needs a signature (mode tokenAndHmac or hmac)",
  ]);
});

test("credentials document: a webhook secret from Dagu (Base58 of 32 bytes, 43-44 characters) is a valid HMAC secret", () => {
  // One that Dagu v2.15.1's hmac/enable answered (Base58 of 32 random bytes).
  const fromDagu = structuredClone(credentials);
  fromDagu.webhooks[0]!.hmacSecrets = [{ secret: "7Yk3sQH2dVbF9nTqPx4ZcWmRjL8aEo5uKgN6tBiMhSy" }];
  assert.ok(parseCredentials(JSON.stringify(fromDagu)).success);
});

test("credentials document: broken JSON is a zod error that does not echo the input", () => {
  const secretish = '{"token": {"keys": [{"secret": "TOPSECRET"';
  const found = issues(parseCredentials(secretish));
  assert.deepEqual(found, [": not valid JSON"]);
  assert.ok(!JSON.stringify(parseCredentials(secretish).error).includes("TOPSECRET"));
});

test("sharding: shards reassemble to the document, a stale or altered shard is refused", () => {
  const json = JSON.stringify(credentials);
  const { index, shards } = shardCredentials(json, "dagu", 7, 100);
  assert.ok(shards.length > 3);
  assert.equal(shards[0]!.secretName, "dagu-credentials-g7-0");
  const entry = parseCredentialsEntry(JSON.stringify(index));
  assert.ok(entry.success && entry.data.kind === "index");
  assert.equal(joinShards(index, shards.map((s) => s.shard)), json);

  const stale = shards.map((s) => ({ ...s.shard }));
  stale[1]!.generation = 6;
  assert.throws(() => joinShards(index, stale), /generation 6 part 1, expected generation 7 part 1/);
  const altered = shards.map((s) => ({ ...s.shard }));
  altered[2]!.part = Buffer.from("x".repeat(100)).toString("base64");
  assert.throws(() => joinShards(index, altered), /does not match its digest/);

  const whole = parseCredentialsEntry(json);
  assert.ok(whole.success && whole.data.kind === "document" && whole.data.credentials.generation === 7);
});

test("password changes and nanosecond timestamps", () => {
  const ok = parsePasswordChanges(JSON.stringify({ "u-1": { passwordHash: HASH, changedAt: "2026-01-02T03:04:05.5Z" } }));
  assert.ok(ok.success);
  assert.deepEqual(issues(parsePasswordChanges(JSON.stringify({ "u-1": { passwordHash: "plain", changedAt: "now" } }))).sort(), [
    "u-1.changedAt: Invalid ISO datetime",
    "u-1.passwordHash: must be an argon2id PHC string ($argon2id$...)",
  ]);
  assert.equal(rfc3339ToNanos("1970-01-01T00:00:01.000000002Z"), 1_000_000_002n);
  assert.equal(rfc3339ToNanos("2026-01-02T03:04:05.123456789+01:00"), 1_767_319_445_123_456_789n);
});

/** Every YAML document in a directory tree, with its file. */
async function manifests(dir: string): Promise<{ file: string; text: string; doc: { kind?: string } }[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  const out = [];
  for (const e of entries.filter((e) => e.isFile() && e.name.endsWith(".yaml"))) {
    const file = join(e.parentPath, e.name);
    const text = await readFile(file, "utf8");
    for (const doc of YAML.parseAllDocuments(text)) out.push({ file, text, doc: doc.toJS() as { kind?: string } });
  }
  return out;
}

test("zod agrees with the apiserver: every example is valid, every invalid fixture is refused", async () => {
  const schemaOf = (kind: string | undefined) => KINDS.find((k) => k.kind === kind)?.schema;
  const examples = (await manifests(join(root, "examples"))).filter((m) => schemaOf(m.doc.kind));
  assert.ok(examples.length >= 9);
  for (const { file, doc } of examples) {
    const r = schemaOf(doc.kind)!.safeParse(doc);
    assert.ok(r.success, `${file}: ${r.error?.message}`);
  }
  const invalid = await manifests(join(root, "test", "fixtures", "invalid"));
  assert.ok(invalid.length >= 18);
  for (const { file, text, doc } of invalid) {
    // zod strips unknown fields (the operator must read objects of a newer CRD); the apiserver refuses them.
    if (text.includes("unknown field")) continue;
    assert.ok(schemaOf(doc.kind), `${file} is one of our kinds`);
    assert.equal(schemaOf(doc.kind)!.safeParse(doc).success, false, `${file} should be refused`);
  }
});
