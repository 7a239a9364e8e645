// Webhook triggers through the sidecar create real DAG runs in a real Dagu (v2.15.1, auth off, which
// itself answers 404 to webhooks), with the parameter Dagu would have built; each auth mode; a wrong
// HMAC is 401 and enqueues nothing; a repeated dagRunId is 409. Differentials against Dagu v2.15.1's own
// webhooks (a second Dagu with builtin auth): the parameters of the run, and the HMAC key (a secret that
// Dagu generated, signed as Dagu's UI tells senders to, verifies on both).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { startDagu, HELLO_DAG, type DaguInstance } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import type { Recorder, SidecarInstance } from "../harness/sidecar.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";
import type { TestCredentials } from "../../dev/known-credentials.ts";

const API = "/api/v1";
let stack: SidecarStack;
let dagu: DaguInstance;
let recorder: Recorder;
let sidecar: SidecarInstance;
let built: TestCredentials;

before(async () => {
  stack = await startSidecarStack({
    dags: { hello: HELLO_DAG, fromdagu: HELLO_DAG, signed: HELLO_DAG, observed: HELLO_DAG, hmaconly: HELLO_DAG, off: HELLO_DAG },
    recorder: true,
    credentials: {
      webhooks: [
        { dagName: "hello", mode: "token" },
        { dagName: "signed", mode: "tokenAndHmac", hmacEnforcement: "strict" },
        { dagName: "observed", mode: "tokenAndHmac", hmacEnforcement: "observe" },
        { dagName: "hmaconly", mode: "hmac" },
        { dagName: "off", mode: "token", enabled: false },
        { dagName: "missing-dag", mode: "token" },
      ],
    },
  });
  ({ dagu, sidecar, built } = stack);
  recorder = stack.recorder!;
});

after(() => stack?.stop());

/** Dagu v2.15.1 with its own builtin auth, logged in as its admin: the reference of the differentials. */
async function startReference(dags?: Record<string, string>) {
  const reference = await startDagu({
    dags,
    env: {
      DAGU_AUTH_MODE: "builtin",
      DAGU_AUTH_TOKEN_SECRET: "reference-secret-0123456789abcdef",
      DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "admin",
      DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "reference-password",
    },
  });
  const ref = `${reference.url}/api/v1`;
  const login = await fetch(`${ref}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "reference-password" }) });
  const admin = ((await login.json()) as { token: string }).token;
  return { reference, ref, admin };
}

const sign = (dag: string, body: string) => `sha256=${createHmac("sha256", built.hmacSecrets[dag]!).update(body).digest("hex")}`;

async function trigger(dag: string, body: unknown, headers: Record<string, string> = {}) {
  const text = body === undefined ? "" : JSON.stringify(body);
  const r = await fetch(`${sidecar.url}${API}/webhooks/${dag}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: text || undefined });
  return { status: r.status, json: (await r.json()) as Record<string, unknown> };
}

/** The run as Dagu itself reports it (asked directly, not through the sidecar). */
async function runInDagu(dag: string, dagRunId: string): Promise<{ params?: string; status?: number }> {
  return eventually(`run ${dagRunId} of ${dag} in Dagu`, async () => {
    const r = await fetch(`${dagu.url}/api/v1/dag-runs/${dag}/${dagRunId}`);
    if (r.status !== 200) return undefined;
    return ((await r.json()) as { dagRunDetails: { params?: string; status?: number } }).dagRunDetails;
  }, 20_000, 100);
}

const enqueues = () => recorder.requests.filter((r) => r.method === "POST" && r.url.endsWith("/enqueue"));

describe("webhook triggers", () => {
  test("token mode creates a real run in Dagu, through Dagu's own enqueue API", async () => {
    const r = await trigger("hello", { dagRunId: "push-1", payload: { ref: "refs/heads/main" } }, { authorization: `Bearer ${built.webhookTokens.hello}` });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json, { dagRunId: "push-1", dagName: "hello" });
    assert.equal((await runInDagu("hello", "push-1")).params, 'WEBHOOK_PAYLOAD={"ref":"refs/heads/main"} WEBHOOK_HEADERS={}');
    assert.equal(enqueues().at(-1)!.url, `${API}/dags/hello/enqueue`);
  });

  test("the run's WEBHOOK_PAYLOAD is exactly what Dagu's own webhook (builtin auth) makes of the same payload", async () => {
    // A second, real Dagu with its own builtin auth and its own webhook, as the reference.
    const { reference, ref, admin } = await startReference();
    try {
      const created = await fetch(`${ref}/dags/hello/webhook`, { method: "POST", headers: { authorization: `Bearer ${admin}` } });
      const refToken = ((await created.json()) as { token: string }).token;
      const payloads: unknown[] = [
        { ref: "refs/heads/main", commits: [{ id: "abc", message: 'fix <b> & "quote"' }], a: 1 },
        { u: "é😀\u2028 x", n: 1e21, f: 0.1, big: 2 ** 64, z: -0, nul: null, arr: [], nested: { b: { y: 1, x: 2 } } },
        {},
      ];
      for (const [i, payload] of payloads.entries()) {
        const body = JSON.stringify({ dagRunId: `cmp-${i}`, payload });
        const viaDagu = await fetch(`${ref}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${refToken}`, "content-type": "application/json" }, body });
        assert.equal(viaDagu.status, 200, await viaDagu.text());
        const viaSidecar = await fetch(`${sidecar.url}${API}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${built.webhookTokens.hello}`, "content-type": "application/json" }, body });
        assert.equal(viaSidecar.status, 200, await viaSidecar.text());
        const expected = await eventually(`reference run cmp-${i}`, async () => {
          const r = await fetch(`${ref}/dag-runs/hello/cmp-${i}`, { headers: { authorization: `Bearer ${admin}` } });
          return r.status === 200 ? ((await r.json()) as { dagRunDetails: { params: string } }).dagRunDetails.params : undefined;
        }, 20_000, 100);
        assert.equal((await runInDagu("hello", `cmp-${i}`)).params, expected, `payload ${i}`);
      }
    } finally {
      await reference.stop();
    }
  });

  test("HMAC differential: a secret Dagu v2.15.1 generated, signed as Dagu tells senders to, verifies on Dagu and on the sidecar", async () => {
    const { reference, ref, admin } = await startReference({ fromdagu: HELLO_DAG });
    try {
      const auth = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
      assert.equal((await fetch(`${ref}/dags/fromdagu/webhook`, { method: "POST", headers: auth })).status, 201);
      const enabled = await fetch(`${ref}/dags/fromdagu/webhook/hmac/enable`, { method: "POST", headers: auth, body: JSON.stringify({ authMode: "hmac_only" }) });
      const { hmacSecret } = (await enabled.json()) as { hmacSecret: string };
      assert.equal(enabled.status, 200);
      assert.match(hmacSecret, /^[1-9A-HJ-NP-Za-km-z]{40,44}$/, "Dagu's secret is Base58 text");
      // The same secret handed to the sidecar, as a credentials document carries it (a carried-over secret).
      const carried = structuredClone(built.credentials);
      carried.webhooks.push({ id: "from-dagu", dagName: "fromdagu", enabled: true, mode: "hmac", hmacEnforcement: "strict", tokenDigests: [], hmacSecrets: [{ secret: hmacSecret }] });
      await writeFile(stack.credentialsFile, JSON.stringify(carried));

      // Dagu's UI gives two recipes: OpenSSL's `-hmac "$DAGU_HMAC_SECRET"` and Node's createHmac('sha256', secret).
      // Run ids that contain no other test's id: Dagu (and so the sidecar) calls a dagRunId taken when any
      // run's id contains it (its run listing filters with strings.Contains).
      const body = (i: number) => JSON.stringify({ dagRunId: `ref-sig-${i}`, payload: { n: i } });
      const viaNode = (text: string, key: string | Buffer) => `sha256=${createHmac("sha256", key).update(text).digest("hex")}`;
      const { stdout } = await promisify(execFile)("sh", ["-c", `printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$DAGU_HMAC_SECRET" -hex | sed 's/^.* //'`], {
        env: { PATH: process.env.PATH ?? "", BODY: body(0), DAGU_HMAC_SECRET: hmacSecret },
      });
      const viaOpenssl = `sha256=${stdout.trim()}`;
      assert.equal(viaOpenssl, viaNode(body(0), hmacSecret), "both recipes sign alike");
      const post = (base: string, text: string, signature: string) =>
        fetch(`${base}/webhooks/fromdagu`, { method: "POST", headers: { "content-type": "application/json", "x-dagu-signature": signature }, body: text });

      const rows: { case: string; dagu: number; sidecar: number }[] = [];
      const cases: [string, string, string][] = [
        ["openssl -hmac <secret text>", body(0), viaOpenssl],
        ["node createHmac(<secret text>)", body(1), viaNode(body(1), hmacSecret)],
        ["key = base64url-decoded secret", body(2), viaNode(body(2), Buffer.from(hmacSecret, "base64url"))],
        ["another secret", body(3), viaNode(body(3), built.hmacSecrets.hmaconly!)],
      ];
      for (const [name, text, signature] of cases) {
        const d = await post(ref, text, signature);
        await d.arrayBuffer();
        // The sidecar reads the rewritten file within about a second: the first case waits for it.
        const s = await eventually(`the sidecar's answer to ${name}`, async () => {
          const r = await post(`${sidecar.url}${API}`, text, signature);
          await r.arrayBuffer();
          return rows.length === 0 && r.status === 401 ? undefined : r.status;
        }, 10_000, 200);
        rows.push({ case: name, dagu: d.status, sidecar: s });
      }
      console.log("webhook HMAC differential (Dagu v2.15.1 builtin vs sidecar):");
      console.table(rows);
      assert.deepEqual(rows.map((r) => [r.dagu, r.sidecar]), [[200, 200], [200, 200], [401, 401], [401, 401]]);
      assert.equal((await runInDagu("fromdagu", "ref-sig-1")).params, 'WEBHOOK_PAYLOAD={"n":1} WEBHOOK_HEADERS={}');
    } finally {
      await writeFile(stack.credentialsFile, JSON.stringify(built.credentials));
      await reference.stop();
    }
  });

  test("a repeated dagRunId is 409 and enqueues nothing more", async () => {
    const before = enqueues().length;
    const r = await trigger("hello", { dagRunId: "push-1", payload: {} }, { authorization: `Bearer ${built.webhookTokens.hello}` });
    assert.equal(r.status, 409);
    assert.equal(r.json.code, "already_exists");
    assert.equal(enqueues().length, before);
  });

  test("without dagRunId a UUIDv7 run id is generated; an empty body means payload {}", async () => {
    const r = await fetch(`${sidecar.url}${API}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${built.webhookTokens.hello}` } });
    const json = (await r.json()) as { dagRunId: string };
    assert.equal(r.status, 200);
    assert.match(json.dagRunId, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    assert.equal((await runInDagu("hello", json.dagRunId)).params, "WEBHOOK_PAYLOAD={} WEBHOOK_HEADERS={}");
  });

  test("token and HMAC (strict): signed works, a wrong or missing signature is 401 and enqueues nothing", async () => {
    const body = { dagRunId: "signed-1", payload: { x: 1 } };
    const text = JSON.stringify(body);
    const before = enqueues().length;
    const wrong = await trigger("signed", body, { authorization: `Bearer ${built.webhookTokens.signed}`, "x-dagu-signature": sign("hmaconly", text) });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.message, "invalid webhook HMAC signature");
    const missing = await trigger("signed", body, { authorization: `Bearer ${built.webhookTokens.signed}` });
    assert.equal(missing.status, 401);
    assert.equal(missing.json.message, "missing webhook HMAC signature");
    assert.equal(enqueues().length, before, "nothing reached Dagu's enqueue");
    const ok = await trigger("signed", body, { authorization: `Bearer ${built.webhookTokens.signed}`, "x-dagu-signature": sign("signed", text) });
    assert.equal(ok.status, 200);
    assert.equal((await runInDagu("signed", "signed-1")).params, 'WEBHOOK_PAYLOAD={"x":1} WEBHOOK_HEADERS={}');
  });

  test("token and HMAC (observe): a missing signature is allowed and logged", async () => {
    const r = await trigger("observed", { dagRunId: "observed-1" }, { authorization: `Bearer ${built.webhookTokens.observed}` });
    assert.equal(r.status, 200);
    await runInDagu("observed", "observed-1");
    await eventually("the observe log line", async () => sidecar.output().includes("observe mode: allowed"), 5_000, 50);
    const metrics = await (await fetch(`${sidecar.metricsUrl()}/metrics`)).text();
    assert.match(metrics, /dagu_auth_webhook_hmac_observed_total\{result="missing"\} 1/);
  });

  test("HMAC only: the signature alone is enough", async () => {
    const body = JSON.stringify({ dagRunId: "hmac-1", payload: { only: "signature" } });
    const r = await fetch(`${sidecar.url}${API}/webhooks/hmaconly`, { method: "POST", headers: { "x-dagu-signature": sign("hmaconly", body) }, body });
    assert.equal(r.status, 200, await r.text());
    assert.equal((await runInDagu("hmaconly", "hmac-1")).params, 'WEBHOOK_PAYLOAD={"only":"signature"} WEBHOOK_HEADERS={}');
  });

  test("a disabled webhook is 403, a webhook of a DAG that does not exist is 404", async () => {
    const off = await trigger("off", {}, { authorization: `Bearer ${built.webhookTokens.off}` });
    assert.equal(off.status, 403);
    assert.equal(off.json.message, "webhook is disabled");
    const gone = await trigger("missing-dag", {}, { authorization: `Bearer ${built.webhookTokens["missing-dag"]}` });
    assert.equal(gone.status, 404);
  });

  test("Dagu without the sidecar answers 404 to the same trigger (why the sidecar performs it)", async () => {
    const r = await fetch(`${dagu.url}${API}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${built.webhookTokens.hello}` }, body: "{}" });
    assert.equal(r.status, 404);
    await r.arrayBuffer();
  });
});
