// Webhook triggers through the real sidecar in front of a real Dagu (issue 15, points 3 and 5):
// - an HMAC-only webhook answers every refused request exactly as a DAG without a webhook: the same
//   status, body and headers, and the same choice of reading the body first or not;
// - an optional timestamp window (not in Dagu, off by default) stops replays of a signed request;
// - a token is checked before any byte of the body is read.
// Version-neutral: the API prefix follows the Dagu in use.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { generateWebhookToken, generateSecret } from "../../src/common/tokens.ts";
import { HELLO_DAG } from "../harness/dagu.ts";
import { rawExchange, type RawAnswer } from "../harness/raw-http.ts";
import { startSidecar, type Recorder, type SidecarInstance } from "../harness/sidecar.ts";
import { type TestCredentials } from "../../dev/known-credentials.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

const WINDOW_SECONDS = 2;
let stack: SidecarStack;
let recorder: Recorder;
let sidecar: SidecarInstance;
let built: TestCredentials;
let prefix: string;

before(async () => {
  stack = await startSidecarStack({
    dags: { hmaconly: HELLO_DAG, nohook: HELLO_DAG, tok: HELLO_DAG, stamped: HELLO_DAG, stampedtok: HELLO_DAG },
    recorder: true,
    credentials: {
      webhooks: [
        { dagName: "hmaconly", mode: "hmac" },
        { dagName: "tok", mode: "token" },
        { dagName: "stamped", mode: "hmac", timestampWindowSeconds: WINDOW_SECONDS },
        { dagName: "stampedtok", mode: "tokenAndHmac", timestampWindowSeconds: WINDOW_SECONDS },
      ],
    },
  });
  ({ sidecar, built, prefix } = stack);
  recorder = stack.recorder!;
});

after(() => stack?.stop());

const hmac = (secret: string, data: string) => `sha256=${createHmac("sha256", secret).update(data).digest("hex")}`;
const enqueues = () => recorder.requests.filter((r) => r.method === "POST" && r.url.endsWith("/enqueue"));

/** A trigger at the byte level: the head first, the body after `withholdMs` (was it answered before?). */
function trigger(dag: string, body: string, headers: Record<string, string>, withholdMs = 0): Promise<RawAnswer> {
  const lines = [`POST ${prefix}/webhooks/${dag} HTTP/1.1`, "Host: dagu.test", "Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return rawExchange({ port: sidecar.port, head: lines.join("\r\n"), body, withholdMs });
}

/** What a client can compare between two answers: everything but the clock. */
const comparable = (a: RawAnswer) => ({ ...a, headers: Object.fromEntries(Object.entries(a.headers).filter(([name]) => name !== "date")) });

describe("no enumeration of HMAC-only webhooks", () => {
  test("an HMAC-only webhook answers exactly like a DAG without one (in Dagu or not): status, body, headers, body read first or not", async () => {
    const body = JSON.stringify({ payload: { probe: true } });
    const otherSecret = generateSecret();
    const variants: { name: string; headers: Record<string, string>; readsBody: boolean }[] = [
      { name: "no credential", headers: {}, readsBody: false },
      { name: "a webhook-shaped token", headers: { Authorization: `Bearer ${generateWebhookToken()}` }, readsBody: false },
      { name: "Basic credentials", headers: { Authorization: "Basic dXNlcjpwYXNz" }, readsBody: false },
      { name: "a signature with another secret", headers: { "X-Dagu-Signature": hmac(otherSecret, body) }, readsBody: true },
      { name: "a malformed signature", headers: { "X-Dagu-Signature": "sha256=zz" }, readsBody: true },
      { name: "a token and a signature", headers: { Authorization: `Bearer ${generateWebhookToken()}`, "X-Dagu-Signature": hmac(otherSecret, body) }, readsBody: true },
      { name: "a signature and a timestamp", headers: { "X-Dagu-Signature": hmac(otherSecret, body), "X-Dagu-Timestamp": String(Math.floor(Date.now() / 1000)) }, readsBody: true },
      { name: "a runtime profile", headers: { "X-Dagu-Profile": "prod" }, readsBody: false },
    ];
    recorder.clear();
    for (const variant of variants) {
      // hmaconly: an HMAC-only webhook; nohook: a DAG in Dagu without a webhook; absent: neither.
      const answers = [];
      for (const dag of ["hmaconly", "nohook", "absent"]) answers.push(comparable(await trigger(dag, body, variant.headers, 600)));
      assert.equal(answers[0]!.status, 401, `${variant.name}: ${answers[0]!.body}`);
      assert.deepEqual(answers[1], answers[0], `${variant.name}: a DAG without a webhook answers the same`);
      assert.deepEqual(answers[2], answers[0], `${variant.name}: a DAG that does not exist answers the same`);
      assert.equal(answers[0]!.answeredBeforeBody, !variant.readsBody, `${variant.name}: the body is read first only to check a signature`);
    }
    assert.deepEqual(recorder.requests, [], "nothing reached Dagu");
  });

  test("the right signature still triggers the HMAC-only webhook", async () => {
    const body = JSON.stringify({ payload: { ok: 1 } });
    const r = await trigger("hmaconly", body, { "X-Dagu-Signature": hmac(built.hmacSecrets.hmaconly!, body) });
    assert.equal(r.status, 200, r.body);
  });
});

describe("replay protection", () => {
  const send = (dag: string, body: string, headers: Record<string, string>) => trigger(dag, body, headers);

  test("without a window (Dagu's behaviour, the default) the same signed request is accepted again", async () => {
    const body = JSON.stringify({ payload: { n: 1 } });
    const headers = { "X-Dagu-Signature": hmac(built.hmacSecrets.hmaconly!, body) };
    const before = enqueues().length;
    assert.equal((await send("hmaconly", body, headers)).status, 200);
    assert.equal((await send("hmaconly", body, headers)).status, 200, "replayed: a second run");
    assert.equal(enqueues().length, before + 2);
  });

  test("with a window: the signed timestamp is accepted once; a replay, a late copy and an unsigned or missing timestamp are refused", async () => {
    const body = JSON.stringify({ payload: { n: 2 } });
    const stamp = String(Math.floor(Date.now() / 1000));
    const signature = hmac(built.hmacSecrets.stamped!, `x-dagu-timestamp:${stamp}\n${body}`);
    const before = enqueues().length;
    const first = await send("stamped", body, { "X-Dagu-Signature": signature, "X-Dagu-Timestamp": stamp });
    assert.equal(first.status, 200, first.body);
    const replay = await send("stamped", body, { "X-Dagu-Signature": signature, "X-Dagu-Timestamp": stamp });
    assert.equal(replay.status, 401);
    assert.equal(JSON.parse(replay.body).message, "webhook request already received");
    // A signature over the body alone does not cover the timestamp: no valid signature at all.
    const unsigned = await send("stamped", body, { "X-Dagu-Signature": hmac(built.hmacSecrets.stamped!, body), "X-Dagu-Timestamp": stamp });
    assert.equal(unsigned.status, 401);
    const moved = await send("stamped", body, { "X-Dagu-Signature": signature, "X-Dagu-Timestamp": String(Number(stamp) + 1) });
    assert.equal(moved.status, 401, "a timestamp other than the signed one");
    assert.equal(enqueues().length, before + 1, "one run only");

    // A request captured and replayed after the window, against a fresh sidecar that remembers nothing.
    const late = await startSidecar({ upstream: recorder.url, args: ["--credentials-file", stack.credentialsFile] });
    try {
      await new Promise((r) => setTimeout(r, (WINDOW_SECONDS + 1.2) * 1000));
      const r = await fetch(`${late.url}${prefix}/webhooks/stamped`, { method: "POST", headers: { "x-dagu-signature": signature, "x-dagu-timestamp": stamp }, body });
      assert.equal(r.status, 401);
      assert.equal(((await r.json()) as { message: string }).message, "webhook timestamp outside the allowed window");
    } finally {
      await late.stop();
    }
    assert.equal(enqueues().length, before + 1);
  });

  test("token and HMAC with a window: a missing timestamp is named, since the token was shown", async () => {
    const body = JSON.stringify({ payload: { n: 3 } });
    const r = await send("stampedtok", body, { Authorization: `Bearer ${built.webhookTokens.stampedtok}`, "X-Dagu-Signature": hmac(built.hmacSecrets.stampedtok!, body) });
    assert.equal(r.status, 401);
    assert.equal(JSON.parse(r.body).message, "missing X-Dagu-Timestamp header");
    const stamp = String(Math.floor(Date.now() / 1000));
    const ok = await send("stampedtok", body, {
      Authorization: `Bearer ${built.webhookTokens.stampedtok}`,
      "X-Dagu-Signature": hmac(built.hmacSecrets.stampedtok!, `x-dagu-timestamp:${stamp}\n${body}`),
      "X-Dagu-Timestamp": stamp,
    });
    assert.equal(ok.status, 200, ok.body);
  });
});

describe("the token before the body", () => {
  test("a missing or wrong token is answered before any byte of a 1 MiB body is sent; nothing reaches Dagu", async () => {
    const body = "x".repeat(1024 * 1024);
    recorder.clear();
    for (const [dag, headers] of [
      ["tok", {}],
      ["tok", { Authorization: `Bearer ${generateWebhookToken()}` }],
      ["absent", { Authorization: `Bearer ${generateWebhookToken()}` }],
    ] as [string, Record<string, string>][]) {
      const r = await trigger(dag, body, headers, 1500);
      assert.equal(r.answeredBeforeBody, true, `${dag} ${JSON.stringify(headers)}: answered without waiting for the body`);
      assert.equal(r.status, 401);
    }
    assert.deepEqual(recorder.requests, []);
  });

  test("the right token: the body is read then, and the run is made", async () => {
    const body = JSON.stringify({ payload: { after: "token" } });
    const before = enqueues().length;
    const r = await trigger("tok", body, { Authorization: `Bearer ${built.webhookTokens.tok}` }, 300);
    assert.equal(r.answeredBeforeBody, false);
    assert.equal(r.status, 200, r.body);
    assert.equal(enqueues().length, before + 1);
  });
});
