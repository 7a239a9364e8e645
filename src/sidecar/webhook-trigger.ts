// `POST <prefix>/webhooks/{fileName}` with Dagu's semantics. Dagu with `auth.mode: none` has no webhook
// store (it answers 404), so the sidecar checks the webhook's credential itself and then enqueues the
// DAG through Dagu's own enqueue API with the parameter string Dagu would have built:
//   Dagu 1: WEBHOOK_PAYLOAD=<strconv.Quote(json.Marshal(payload))>
//   Dagu 2: the same plus WEBHOOK_HEADERS=<quoted JSON of forwarded headers> (see below)
// Modes: token (`Authorization: Bearer dagu_wh_...`), tokenAndHmac (token plus
// `X-Dagu-Signature: sha256=<hex>` = HMAC-SHA256 over the raw body; `observe` logs a missing or wrong
// signature instead of refusing), hmac (the signature alone). A repeated `dagRunId` is 409.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { CredentialWebhook } from "../api/credentials.ts";
import { digestsEqual, isWebhookTokenShaped, sha256Hex } from "../common/tokens.ts";
import type { CredentialSnapshot } from "./credential-store.ts";
import type { DaguApiProfile } from "./dagu-api.ts";
import { goJsonMarshal, goQuote } from "./go-format.ts";
import { HttpError, readBody, sendError, sendJson } from "./http-util.ts";
import type { Upstream, UpstreamJson } from "./upstream.ts";

/** Dagu's maxWebhookPayloadSize. */
export const MAX_WEBHOOK_BODY = 1024 * 1024;

const DagRunId = z.string().regex(/^[a-zA-Z0-9_-]+$/).max(128);
const WebhookBody = z.looseObject({
  dagRunId: DagRunId.optional(),
  payload: z.record(z.string(), z.unknown()).optional(),
});

export interface WebhookCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly fileName: string;
  readonly snapshot: CredentialSnapshot;
}

export interface WebhookOutcome {
  readonly detail: string;
  /** tokenAndHmac in observe mode: what the signature check said (logged, never enforced). */
  readonly observed?: "valid" | "missing" | "invalid";
  readonly dagRunId?: string;
}

type AuthCheck = { ok: true; observed?: WebhookOutcome["observed"] } | { ok: false; message: string; detail: string };

/** Checks the webhook's own credential; an unknown DAG looks exactly like a wrong token. */
export function authorizeWebhook(
  webhook: CredentialWebhook | undefined,
  authorization: string | undefined,
  signatureHeader: string | undefined,
  signedBytes: Buffer,
  now = Date.now(),
): AuthCheck {
  const token = authorization?.startsWith("Bearer ") ? authorization.slice("Bearer ".length) : "";
  const mode = webhook?.mode ?? "token";
  if (mode !== "hmac") {
    if (token === "") return { ok: false, message: "missing or invalid authorization header", detail: "no_token" };
    if (!webhook || !tokenMatches(webhook, token, now)) return { ok: false, message: "invalid webhook token", detail: "bad_token" };
    if (mode === "token") return { ok: true };
  }
  if (!webhook) return { ok: false, message: "invalid webhook token", detail: "unknown_webhook" };
  const signature = signatureHeader === undefined ? "missing" : signatureMatches(webhook, signatureHeader, signedBytes, now) ? "valid" : "invalid";
  if (mode === "tokenAndHmac" && webhook.hmacEnforcement === "observe") return { ok: true, observed: signature };
  if (signature === "missing") return { ok: false, message: "missing webhook HMAC signature", detail: "no_signature" };
  if (signature === "invalid") return { ok: false, message: "invalid webhook HMAC signature", detail: "bad_signature" };
  return { ok: true };
}

const alive = (notAfter: string | undefined, now: number) => notAfter === undefined || Date.parse(notAfter) > now;

function tokenMatches(webhook: CredentialWebhook, token: string, now: number): boolean {
  if (!isWebhookTokenShaped(token)) return false;
  const digest = sha256Hex(token);
  let match = false;
  for (const entry of webhook.tokenDigests) if (digestsEqual(entry.digest, digest) && alive(entry.notAfter, now)) match = true;
  return match;
}

function signatureMatches(webhook: CredentialWebhook, header: string, signed: Buffer, now: number): boolean {
  const m = /^sha256=([0-9a-fA-F]{64})$/.exec(header.trim());
  if (!m) return false;
  const presented = Buffer.from(m[1]!, "hex");
  let match = false;
  for (const entry of webhook.hmacSecrets) {
    if (!alive(entry.notAfter, now)) continue;
    const expected = createHmac("sha256", Buffer.from(entry.secret, "base64url")).update(signed).digest();
    if (timingSafeEqual(expected, presented)) match = true;
  }
  return match;
}

/** UUIDv7 (time-ordered), as Dagu generates run ids. */
export function uuidv7(now = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const h = bytes.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Builds Dagu's runtime parameter string for a webhook run. */
export function webhookParams(profile: DaguApiProfile, payloadJson: string): string {
  const payload = `WEBHOOK_PAYLOAD=${goQuote(payloadJson)}`;
  // Dagu 2 forwards only headers a DAG allow-lists (`webhook.forwardHeaders` in its spec); the sidecar
  // does not read DAG specs, so it forwards none, which is Dagu's answer for a DAG without the list.
  return profile.webhookHeadersParam ? `${payload} WEBHOOK_HEADERS=${goQuote("{}")}` : payload;
}

const DagDetails = z.looseObject({ dag: z.looseObject({ name: z.string() }).optional() });
const DagRuns = z.looseObject({ dagRuns: z.array(z.unknown()).nullable().optional() });

export class WebhookTrigger {
  readonly #upstream: Upstream;
  readonly #profile: () => DaguApiProfile;
  /** Run ids being enqueued right now: a concurrent repeat gets 409 too. */
  readonly #inFlight = new Set<string>();

  constructor(upstream: Upstream, profile: () => DaguApiProfile) {
    this.#upstream = upstream;
    this.#profile = profile;
  }

  async handle(call: WebhookCall): Promise<WebhookOutcome> {
    const { req, res, fileName } = call;
    const raw = await readBody(req, MAX_WEBHOOK_BODY);
    const webhook = call.snapshot.webhooksByDag.get(fileName);
    const profileName = singleHeader(req, "x-dagu-profile");
    const signed = profileName === undefined ? raw : Buffer.concat([Buffer.from(`x-dagu-profile:${profileName}\n`), raw]);
    const auth = authorizeWebhook(webhook, singleHeader(req, "authorization"), singleHeader(req, "x-dagu-signature"), signed);
    if (!auth.ok) {
      sendError(res, 401, "unauthorized", auth.message);
      return { detail: auth.detail };
    }
    if (!webhook!.enabled) {
      sendError(res, 403, "forbidden", "webhook is disabled");
      return { detail: "disabled", observed: auth.observed };
    }
    // Runtime profiles (Dagu 2) are not among what a DaguWebhook declares: none may be selected.
    if (profileName !== undefined) {
      sendError(res, 403, "forbidden", "runtime profile selection is not allowed for this webhook");
      return { detail: "profile_not_allowed", observed: auth.observed };
    }

    let body: z.infer<typeof WebhookBody> = {};
    let rawIsJson = false;
    if (raw.length > 0) {
      let json: unknown;
      try {
        json = JSON.parse(raw.toString("utf8"));
        rawIsJson = true;
      } catch {
        throw new HttpError(400, "bad_request", "failed to process request body");
      }
      const parsed = WebhookBody.safeParse(json);
      if (!parsed.success) throw new HttpError(400, "bad_request", "failed to process request body: want {dagRunId?, payload?: object}");
      body = parsed.data;
    }

    const profile = this.#profile();
    const encodedName = encodeURIComponent(fileName);
    const dag = await this.#ask("GET", `${profile.prefix}/dags/${encodedName}`);
    if (dag.status === 404) {
      sendError(res, 404, "not_found", `DAG ${fileName} not found`);
      return { detail: "dag_not_found", observed: auth.observed };
    }
    if (dag.status !== 200) throw new HttpError(502, "bad_gateway", `Dagu answered ${dag.status} when looking up DAG ${fileName}`);
    const dagName = DagDetails.safeParse(dag.json).data?.dag?.name ?? fileName;

    let payload: string;
    if (body.payload !== undefined) payload = goJsonMarshal(body.payload);
    else if (profile.webhookHeadersParam && rawIsJson) payload = raw.toString("utf8");
    else payload = "{}";
    if (Buffer.byteLength(payload) > MAX_WEBHOOK_BODY) throw new HttpError(413, "payload_too_large", `webhook payload too large (max ${MAX_WEBHOOK_BODY} bytes)`);

    const dagRunId = body.dagRunId ?? uuidv7();
    if (this.#inFlight.has(dagRunId)) return this.#conflict(res, dagRunId, auth.observed);
    this.#inFlight.add(dagRunId);
    try {
      if (body.dagRunId !== undefined) {
        const existing = await this.#ask("GET", `${profile.prefix}/dag-runs?dagRunId=${encodeURIComponent(dagRunId)}`);
        if (existing.status !== 200) throw new HttpError(502, "bad_gateway", `Dagu answered ${existing.status} when looking up dag-run ${dagRunId}`);
        if ((DagRuns.safeParse(existing.json).data?.dagRuns ?? []).length > 0) return this.#conflict(res, dagRunId, auth.observed);
      }
      const enqueued = await this.#ask("POST", `${profile.prefix}/dags/${encodedName}/enqueue`, {
        params: webhookParams(profile, payload),
        dagRunId,
      });
      if (enqueued.status === 404) {
        sendError(res, 404, "not_found", `DAG ${fileName} not found`);
        return { detail: "dag_not_found", observed: auth.observed };
      }
      if (enqueued.status === 409) return this.#conflict(res, dagRunId, auth.observed);
      if (enqueued.status !== 200) throw new HttpError(500, "internal_error", "failed to enqueue DAG run");
    } finally {
      this.#inFlight.delete(dagRunId);
    }
    sendJson(res, 200, { dagRunId, dagName });
    return { detail: "enqueued", observed: auth.observed, dagRunId };
  }

  /** A request of the sidecar's own to Dagu; an unreachable Dagu is 502, not a crash. */
  async #ask(method: "GET" | "POST", path: string, body?: unknown): Promise<UpstreamJson> {
    try {
      return await this.#upstream.requestJson(method, path, body);
    } catch (error) {
      throw new HttpError(502, "bad_gateway", `Dagu is not reachable: ${(error as Error).message}`);
    }
  }

  #conflict(res: ServerResponse, dagRunId: string, observed: WebhookOutcome["observed"]): WebhookOutcome {
    sendError(res, 409, "already_exists", `dag-run with ID ${dagRunId} already exists`);
    return { detail: "duplicate_run", observed, dagRunId };
  }
}

/** The header's value when sent once; a repeated credential header is refused (which one is meant?). */
function singleHeader(req: IncomingMessage, name: string): string | undefined {
  let value: string | undefined;
  let count = 0;
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) {
      value = req.rawHeaders[i + 1];
      count++;
    }
  }
  if (count > 1) throw new HttpError(400, "bad_request", `the ${name} header must be sent once`);
  return value;
}
