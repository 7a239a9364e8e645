// A webhook's own credential, in each mode, and the parameter string handed to Dagu.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { before, test } from "node:test";
import type { CredentialWebhook } from "../../src/api/credentials.ts";
import { generateWebhookToken } from "../../src/common/tokens.ts";
import { daguApiProfile } from "../../src/sidecar/dagu-api.ts";
import { authorizeWebhook, uuidv7, webhookParams } from "../../src/sidecar/webhook-trigger.ts";
import { buildCredentials, type TestCredentials } from "../harness/sidecar.ts";

let built: TestCredentials;
const hook = (dag: string): CredentialWebhook => built.credentials.webhooks.find((w) => w.dagName === dag)!;
const sign = (dag: string, body: Buffer) => `sha256=${createHmac("sha256", Buffer.from(built.hmacSecrets[dag]!, "base64url")).update(body).digest("hex")}`;
const bearer = (dag: string) => `Bearer ${built.webhookTokens[dag]}`;
const body = Buffer.from('{"payload":{"a":1}}');

before(async () => {
  built = await buildCredentials({
    webhooks: [
      { dagName: "tok", mode: "token" },
      { dagName: "strict", mode: "tokenAndHmac", hmacEnforcement: "strict" },
      { dagName: "observe", mode: "tokenAndHmac", hmacEnforcement: "observe" },
      { dagName: "hmac", mode: "hmac" },
    ],
  });
});

test("token mode", () => {
  assert.deepEqual(authorizeWebhook(hook("tok"), bearer("tok"), undefined, body), { ok: true });
  assert.equal(authorizeWebhook(hook("tok"), undefined, undefined, body).ok, false);
  assert.equal(authorizeWebhook(hook("tok"), `Bearer ${generateWebhookToken()}`, undefined, body).ok, false);
  assert.equal(authorizeWebhook(hook("tok"), bearer("tok").toLowerCase(), undefined, body).ok, false, "Dagu wants 'Bearer ' exactly");
  assert.equal(authorizeWebhook(hook("tok"), bearer("strict"), undefined, body).ok, false, "another webhook's token");
  assert.deepEqual(authorizeWebhook(undefined, bearer("tok"), undefined, body), { ok: false, message: "invalid webhook token", detail: "bad_token" });
});

test("token and HMAC, strict: both needed", () => {
  assert.deepEqual(authorizeWebhook(hook("strict"), bearer("strict"), sign("strict", body), body), { ok: true });
  assert.equal(authorizeWebhook(hook("strict"), bearer("strict"), undefined, body).ok, false);
  assert.equal(authorizeWebhook(hook("strict"), bearer("strict"), sign("strict", Buffer.from("{}")), body).ok, false);
  assert.equal(authorizeWebhook(hook("strict"), undefined, sign("strict", body), body).ok, false);
  assert.equal(authorizeWebhook(hook("strict"), bearer("strict"), "sha256=zz", body).ok, false);
});

test("token and HMAC, observe: the token decides, the signature is reported", () => {
  assert.deepEqual(authorizeWebhook(hook("observe"), bearer("observe"), undefined, body), { ok: true, observed: "missing" });
  assert.deepEqual(authorizeWebhook(hook("observe"), bearer("observe"), sign("strict", body), body), { ok: true, observed: "invalid" });
  assert.deepEqual(authorizeWebhook(hook("observe"), bearer("observe"), sign("observe", body), body), { ok: true, observed: "valid" });
  assert.equal(authorizeWebhook(hook("observe"), undefined, sign("observe", body), body).ok, false);
});

test("HMAC only: the signature alone", () => {
  assert.deepEqual(authorizeWebhook(hook("hmac"), undefined, sign("hmac", body), body), { ok: true });
  assert.equal(authorizeWebhook(hook("hmac"), undefined, undefined, body).ok, false);
  assert.equal(authorizeWebhook(hook("hmac"), undefined, sign("hmac", Buffer.from('{"payload":{"a":2}}')), body).ok, false);
});

test("Dagu's parameter string per API generation", () => {
  assert.equal(webhookParams(daguApiProfile("v2"), '{"a":"b c"}'), 'WEBHOOK_PAYLOAD="{\\"a\\":\\"b c\\"}"');
  assert.equal(webhookParams(daguApiProfile("v1"), "{}"), 'WEBHOOK_PAYLOAD="{}" WEBHOOK_HEADERS="{}"');
});

test("run ids are UUIDv7 in Dagu's dag-run id alphabet", () => {
  const id = uuidv7(Date.parse("2026-01-01T00:00:00Z"));
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(id, /^[a-zA-Z0-9_-]+$/);
});
