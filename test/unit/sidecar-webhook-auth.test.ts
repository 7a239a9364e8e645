// A webhook's own credential, in each mode, in two steps (the headers alone, then the body when a
// signature needs it); no enumeration of HMAC-only webhooks; the timestamp window against replays; and
// the parameter string handed to Dagu.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { before, test } from "node:test";
import type { CredentialWebhook } from "../../src/api/credentials.ts";
import { generateWebhookToken } from "../../src/common/tokens.ts";
import { daguApiProfile } from "../../src/sidecar/routes/dagu-api.ts";
import {
  BAD_TOKEN,
  checkWebhookHeaders,
  checkWebhookSignature,
  NO_TOKEN,
  ReplayGuard,
  uuidv7,
  webhookParams,
  type WebhookHeaders,
} from "../../src/sidecar/answers/webhook-trigger.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

let built: TestCredentials;
const hook = (dag: string): CredentialWebhook => built.credentials.webhooks.find((w) => w.dagName === dag)!;
const sign = (dag: string, body: Buffer | string) => `sha256=${createHmac("sha256", built.hmacSecrets[dag]!).update(body).digest("hex")}`;
const bearer = (dag: string) => `Bearer ${built.webhookTokens[dag]}`;
const body = Buffer.from('{"payload":{"a":1}}');
const T0 = Date.parse("2026-06-01T00:00:00Z");
const WINDOW = 300;

const h = (headers: Partial<WebhookHeaders>): WebhookHeaders => ({ authorization: undefined, signature: undefined, timestamp: undefined, profile: undefined, ...headers });

/** Both steps, as the trigger runs them: the body only when the headers ask for it. */
function authorize(webhook: CredentialWebhook | undefined, headers: Partial<WebhookHeaders>, signed = body, replays = new ReplayGuard(), now = T0) {
  const first = checkWebhookHeaders(webhook, h(headers), now);
  if (first.kind !== "verify") return { ...first, bodyRead: false };
  return { ...checkWebhookSignature(webhook, h(headers), signed, replays, now), bodyRead: true };
}
const ok = (r: { kind: string }) => r.kind === "accept";
/** What the caller sees and what was read: everything but the audit log's detail. */
const seen = (r: object) => Object.fromEntries(Object.entries(r).filter(([k]) => k !== "detail"));

before(async () => {
  built = await buildCredentials({
    webhooks: [
      { dagName: "tok", mode: "token" },
      { dagName: "strict", mode: "tokenAndHmac", hmacEnforcement: "strict" },
      { dagName: "observe", mode: "tokenAndHmac", hmacEnforcement: "observe" },
      { dagName: "hmac", mode: "hmac" },
      { dagName: "hmac2", mode: "hmac" },
    ],
  });
});

test("the signature's key is the secret's text (UTF-8 bytes, as Dagu and GitHub), never its base64url-decoded bytes", () => {
  const secret = built.hmacSecrets.hmac!;
  const asText = `sha256=${createHmac("sha256", Buffer.from(secret, "utf8")).update(body).digest("hex")}`;
  const asDecoded = `sha256=${createHmac("sha256", Buffer.from(secret, "base64url")).update(body).digest("hex")}`;
  assert.equal(authorize(hook("hmac"), { signature: asText }).kind, "accept");
  assert.equal(authorize(hook("hmac"), { signature: asDecoded }).kind, "refuse");
  // A secret that Dagu generated (Base58 text, not base64url of anything meaningful) verifies as Dagu verifies it.
  const dagus = "7Yk3sQH2dVbF9nTqPx4ZcWmRjL8aEo5uKgN6tBiMhSy";
  const fromDagu: CredentialWebhook = { ...hook("hmac"), hmacSecrets: [{ secret: dagus }] };
  const goStyle = `sha256=${createHmac("sha256", dagus).update(body).digest("hex")}`;
  assert.equal(authorize(fromDagu, { signature: goStyle }).kind, "accept");
});

test("token mode: decided on the headers, the body is read only once the token is accepted", () => {
  assert.deepEqual(checkWebhookHeaders(hook("tok"), h({ authorization: bearer("tok") }), T0), { kind: "accept" });
  assert.deepEqual(checkWebhookHeaders(hook("tok"), h({}), T0), { kind: "refuse", message: NO_TOKEN, detail: "no_token" });
  assert.deepEqual(checkWebhookHeaders(hook("tok"), h({ authorization: `Bearer ${generateWebhookToken()}` }), T0), { kind: "refuse", message: BAD_TOKEN, detail: "bad_token" });
  assert.equal(checkWebhookHeaders(hook("tok"), h({ authorization: bearer("tok").toLowerCase() }), T0).kind, "refuse", "Dagu wants 'Bearer ' exactly");
  assert.equal(checkWebhookHeaders(hook("tok"), h({ authorization: bearer("strict") }), T0).kind, "refuse", "another webhook's token");
  assert.deepEqual(checkWebhookHeaders(undefined, h({ authorization: bearer("tok") }), T0), { kind: "refuse", message: BAD_TOKEN, detail: "unknown_webhook" });
  assert.ok(ok(authorize(hook("tok"), { authorization: bearer("tok"), signature: "sha256=zz" })), "a signature in token mode is ignored, as Dagu does");
});

test("token and HMAC, strict: both needed", () => {
  assert.ok(ok(authorize(hook("strict"), { authorization: bearer("strict"), signature: sign("strict", body) })));
  assert.deepEqual(authorize(hook("strict"), { authorization: bearer("strict") }), { kind: "refuse", message: "missing webhook HMAC signature", detail: "no_signature", bodyRead: false });
  assert.equal(authorize(hook("strict"), { authorization: bearer("strict"), signature: sign("strict", "{}") }).kind, "refuse");
  assert.deepEqual(authorize(hook("strict"), { signature: sign("strict", body) }), { kind: "refuse", message: NO_TOKEN, detail: "no_token", bodyRead: true });
  assert.equal(authorize(hook("strict"), { authorization: bearer("strict"), signature: "sha256=zz" }).kind, "refuse");
});

test("token and HMAC, observe: the token decides, the signature is reported", () => {
  assert.deepEqual(authorize(hook("observe"), { authorization: bearer("observe") }), { kind: "accept", observed: "missing", bodyRead: false });
  assert.deepEqual(authorize(hook("observe"), { authorization: bearer("observe"), signature: sign("strict", body) }), { kind: "accept", observed: "invalid", bodyRead: true });
  assert.deepEqual(authorize(hook("observe"), { authorization: bearer("observe"), signature: sign("observe", body) }), { kind: "accept", observed: "valid", bodyRead: true });
  assert.equal(authorize(hook("observe"), { signature: sign("observe", body) }).kind, "refuse");
});

test("HMAC only: the signature alone (a token beside it is ignored, as Dagu does)", () => {
  assert.ok(ok(authorize(hook("hmac"), { signature: sign("hmac", body) })));
  assert.ok(ok(authorize(hook("hmac"), { signature: sign("hmac", body), authorization: `Bearer ${generateWebhookToken()}` })));
  assert.equal(authorize(hook("hmac"), {}).kind, "refuse");
  assert.equal(authorize(hook("hmac"), { signature: sign("hmac", '{"payload":{"a":2}}') }).kind, "refuse");
  assert.equal(authorize(hook("hmac"), { signature: sign("hmac2", body) }).kind, "refuse", "another webhook's secret");
});

test("an HMAC-only webhook answers every refused request exactly as a DAG without a webhook, reading the same", () => {
  const variants: Partial<WebhookHeaders>[] = [
    {},
    { authorization: `Bearer ${generateWebhookToken()}` },
    { authorization: "Basic dXNlcjpwYXNz" },
    { signature: sign("hmac2", body) },
    { signature: "sha256=zz" },
    { signature: sign("hmac2", body), authorization: `Bearer ${generateWebhookToken()}` },
    { signature: sign("hmac2", body), timestamp: String(T0 / 1000) },
    { profile: "p" },
    { signature: sign("hmac2", body), profile: "p" },
  ];
  for (const headers of variants) {
    const asHmac = seen(authorize(hook("hmac"), headers));
    const asNone = seen(authorize(undefined, headers));
    assert.equal(asHmac.kind, "refuse", JSON.stringify(headers));
    assert.deepEqual(asHmac, asNone, JSON.stringify(headers));
  }
});

test("timestamp window: signed with the body, within the window, each signed request once", () => {
  const windowed: CredentialWebhook = { ...hook("hmac"), timestampWindowSeconds: WINDOW };
  const stamp = String(T0 / 1000);
  const signedBytes = Buffer.concat([Buffer.from(`x-dagu-timestamp:${stamp}\n`), body]);
  const signature = sign("hmac", signedBytes);
  const replays = new ReplayGuard();
  assert.ok(ok(authorize(windowed, { signature, timestamp: stamp }, body, replays, T0 + 1000)));
  assert.deepEqual(authorize(windowed, { signature, timestamp: stamp }, body, replays, T0 + 2000), {
    kind: "refuse",
    message: "webhook request already received",
    detail: "replayed",
    bodyRead: true,
  });
  assert.deepEqual(authorize(windowed, { signature, timestamp: stamp }, body, new ReplayGuard(), T0 + (WINDOW + 1) * 1000), {
    kind: "refuse",
    message: "webhook timestamp outside the allowed window",
    detail: "stale_timestamp",
    bodyRead: true,
  });
  assert.equal(authorize(windowed, { signature, timestamp: stamp }, body, new ReplayGuard(), T0 - (WINDOW + 1) * 1000).kind, "refuse", "from the future too");
  // The timestamp is not covered by a signature over the body alone: that is no valid signature (answered as unknown).
  assert.deepEqual(seen(authorize(windowed, { signature: sign("hmac", body), timestamp: stamp }, body, new ReplayGuard(), T0)), { kind: "refuse", message: NO_TOKEN, bodyRead: true });
  assert.equal(authorize(windowed, { signature, timestamp: String(T0 / 1000 + 1) }, body, new ReplayGuard(), T0).kind, "refuse", "another timestamp than signed");
  // The same window with tokenAndHmac: the token was shown, so the answers say what is wrong.
  const strict: CredentialWebhook = { ...hook("strict"), timestampWindowSeconds: WINDOW };
  const sig = sign("strict", signedBytes);
  assert.ok(ok(authorize(strict, { authorization: bearer("strict"), signature: sig, timestamp: stamp })));
  assert.equal((authorize(strict, { authorization: bearer("strict"), signature: sign("strict", body) }) as { message?: string }).message, "missing X-Dagu-Timestamp header");
  // Without a window the header means nothing and the signature is Dagu's (body only).
  assert.ok(ok(authorize(hook("hmac"), { signature: sign("hmac", body), timestamp: "12" })));
});

test("the replay guard is bounded: past its size it refuses rather than forget a live entry", () => {
  const guard = new ReplayGuard(2);
  assert.equal(guard.admit("a", T0 + 10, T0), "new");
  assert.equal(guard.admit("b", T0 + 10, T0), "new");
  assert.equal(guard.admit("a", T0 + 10, T0 + 1), "replay");
  assert.equal(guard.admit("c", T0 + 10, T0 + 1), "full");
  assert.equal(guard.admit("c", T0 + 20, T0 + 11), "new", "expired entries make room");
  assert.equal(guard.size, 1);
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
