// `POST <prefix>/webhooks/{fileName}` with Dagu's semantics. Dagu with `auth.mode: none` has no webhook
// store (it answers 404), so the sidecar checks the webhook's credential itself and then enqueues the
// DAG through Dagu's own enqueue API with the parameter string Dagu would have built:
//   Dagu 1: WEBHOOK_PAYLOAD=<strconv.Quote(json.Marshal(payload))>
//   Dagu 2: the same plus WEBHOOK_HEADERS=<quoted JSON of forwarded headers> (see below)
// Modes: token (`Authorization: Bearer dagu_wh_...`), tokenAndHmac (token plus
// `X-Dagu-Signature: sha256=<hex>` = HMAC-SHA256 over the raw body, keyed with the secret's text (its
// UTF-8 bytes, as Dagu and GitHub key it, never its decoded bytes); `observe` logs a missing or wrong
// signature instead of refusing), hmac (the signature alone). A repeated `dagRunId` is 409.
//
// No enumeration: what the sidecar reads and answers depends on the request's shape, never on whether
// the DAG has a webhook or in which mode. Without an X-Dagu-Signature header the headers decide and the
// body is read only once the token is accepted; with one the body (the signature's subject) is read
// first, within the budget of unauthenticated bytes, and every DAG, with a webhook or not, then costs the
// same HMACs. Until a caller has shown a valid token or a valid signature, an HMAC-only webhook answers
// exactly like a DAG without a webhook.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import type { CredentialWebhook } from "../../api/credentials.ts";
import { digestsEqual, isWebhookTokenShaped, sha256Hex } from "../../common/tokens.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";
import type { DaguApiProfile } from "../routes/dagu-api.ts";
import { goJsonMarshal, goQuote } from "../../dagu/go-format.ts";
import { HttpError, readBody, sendError, sendJson, type UnauthenticatedRead } from "./http-io.ts";
import type { Upstream, UpstreamJson } from "../proxy/upstream.ts";

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
  /** The caller's address (as admission found it), whose share of the unauthenticated-body budget is used. */
  readonly clientAddress: string;
}

export type Observed = "valid" | "missing" | "invalid";

export interface WebhookOutcome {
  readonly detail: string;
  /** tokenAndHmac in observe mode: what the signature check said (logged, never enforced). */
  readonly observed?: Observed;
  readonly dagRunId?: string;
}

/** The request headers a webhook's credential is made of (each sent at most once). */
export interface WebhookHeaders {
  readonly authorization: string | undefined;
  readonly signature: string | undefined;
  readonly timestamp: string | undefined;
  readonly profile: string | undefined;
}

export type WebhookRefusal = { readonly kind: "refuse"; readonly message: string; readonly detail: string };
export type WebhookAccept = { readonly kind: "accept"; readonly observed?: Observed };
/** The headers alone cannot decide: the body must be read and the signature checked. */
export type WebhookNeedsBody = { readonly kind: "verify" };

export const NO_TOKEN = "missing or invalid authorization header";
export const BAD_TOKEN = "invalid webhook token";

const bearerToken = (authorization: string | undefined) => (authorization?.startsWith("Bearer ") ? authorization.slice("Bearer ".length) : "");
const refuse = (message: string, detail: string): WebhookRefusal => ({ kind: "refuse", message, detail });
/** What a DAG without a webhook answers to these headers (Dagu 1.30.3's two messages). */
const asUnknown = (headers: WebhookHeaders, detail: string): WebhookRefusal => refuse(bearerToken(headers.authorization) === "" ? NO_TOKEN : BAD_TOKEN, detail);

/** The token check of the token modes; undefined when the token is the webhook's. */
function tokenRefusal(webhook: CredentialWebhook, headers: WebhookHeaders, now: number): WebhookRefusal | undefined {
  const token = bearerToken(headers.authorization);
  if (token === "") return refuse(NO_TOKEN, "no_token");
  if (!tokenMatches(webhook, token, now)) return refuse(BAD_TOKEN, "bad_token");
  return undefined;
}

/**
 * First step, on the headers alone (nothing read yet). Without a signature header every mode decides
 * here; with one the answer is always "verify", whatever the DAG (see the top of this file).
 */
export function checkWebhookHeaders(webhook: CredentialWebhook | undefined, headers: WebhookHeaders, now = Date.now()): WebhookRefusal | WebhookAccept | WebhookNeedsBody {
  if (headers.signature !== undefined) return { kind: "verify" };
  if (!webhook || webhook.mode === "hmac") return asUnknown(headers, webhook ? "no_signature" : "unknown_webhook");
  const refused = tokenRefusal(webhook, headers, now);
  if (refused) return refused;
  if (webhook.mode === "token") return { kind: "accept" };
  if (webhook.hmacEnforcement === "observe") return { kind: "accept", observed: "missing" };
  return refuse("missing webhook HMAC signature", "no_signature");
}

/** Accepted signatures of webhooks with a timestamp window, until their window ends: each is accepted once. */
export class ReplayGuard {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  constructor(max = 100_000) {
    this.#max = max;
  }
  /** Records `key` until `expiresAt`: "new"; "replay" when it is already recorded; "full" when no room is left. */
  admit(key: string, expiresAt: number, now: number): "new" | "replay" | "full" {
    const seen = this.#seen.get(key);
    if (seen !== undefined && seen > now) return "replay";
    if (this.#seen.size >= this.#max) for (const [k, until] of this.#seen) if (until <= now) this.#seen.delete(k);
    // Still full of live entries: refusing is safe (fail closed), accepting could let a replay through.
    if (this.#seen.size >= this.#max) return "full";
    this.#seen.set(key, expiresAt);
    return "new";
  }
  get size(): number {
    return this.#seen.size;
  }
}

/** A key of the process's own for the HMACs that stand in for missing secrets (same cost, never a match). */
const PADDING_KEY = createSecretKey(randomBytes(32));
/** Every signature check computes at least this many HMACs: a webhook in a rotation overlap has two secrets. */
const MIN_HMACS = 2;
const SIGNATURE_SHAPE = /^sha256=([0-9a-fA-F]{64})$/;

/**
 * Second step, once the body is read (only after checkWebhookHeaders said "verify"): the token where the
 * mode has one, then the signature, then (with a timestamp window) its time and its novelty.
 */
export function checkWebhookSignature(
  webhook: CredentialWebhook | undefined,
  headers: WebhookHeaders,
  body: Buffer,
  replays: ReplayGuard,
  now = Date.now(),
): WebhookRefusal | WebhookAccept {
  const window = webhook && webhook.mode !== "token" ? webhook.timestampWindowSeconds : undefined;
  const stamp = window !== undefined ? headers.timestamp : undefined;
  const lines = [stamp !== undefined ? `x-dagu-timestamp:${stamp}\n` : "", headers.profile !== undefined ? `x-dagu-profile:${headers.profile}\n` : ""].join("");
  const signed = lines === "" ? body : Buffer.concat([Buffer.from(lines), body]);
  const keys: KeyObject[] = (webhook?.hmacSecrets ?? []).filter((e) => alive(e.notAfter, now)).map((e) => createSecretKey(Buffer.from(e.secret, "utf8")));
  const shape = SIGNATURE_SHAPE.exec((headers.signature ?? "").trim());
  const presented = Buffer.from(shape?.[1] ?? "0".repeat(64), "hex");
  let valid = false;
  for (let i = 0; i < Math.max(MIN_HMACS, keys.length); i++) {
    const expected = createHmac("sha256", keys[i] ?? PADDING_KEY).update(signed).digest();
    if (timingSafeEqual(expected, presented) && i < keys.length && shape) valid = true;
  }

  if (!webhook || webhook.mode === "hmac") {
    if (!webhook || !valid) return asUnknown(headers, webhook ? "bad_signature" : "unknown_webhook");
  } else {
    const refused = tokenRefusal(webhook, headers, now);
    if (refused) return refused;
    if (webhook.mode === "token") return { kind: "accept" }; // Dagu ignores a signature in token mode
    const observe = webhook.hmacEnforcement === "observe";
    if (!valid) {
      if (observe) return { kind: "accept", observed: "invalid" };
      if (window !== undefined && headers.timestamp === undefined) return refuse("missing X-Dagu-Timestamp header", "no_timestamp");
      return refuse("invalid webhook HMAC signature", "bad_signature");
    }
  }
  // A valid signature from here on: the caller holds the secret (or replays what someone holding it sent).
  if (window !== undefined) {
    const observe = webhook!.mode === "tokenAndHmac" && webhook!.hmacEnforcement === "observe";
    if (stamp === undefined) return observe ? { kind: "accept", observed: "invalid" } : refuse("missing X-Dagu-Timestamp header", "no_timestamp");
    const at = /^\d{1,12}$/.test(stamp) ? Number(stamp) * 1000 : NaN;
    if (!(Math.abs(now - at) <= window * 1000)) return observe ? { kind: "accept", observed: "invalid" } : refuse("webhook timestamp outside the allowed window", "stale_timestamp");
    const seen = replays.admit(`${webhook!.id}:${shape![1]!.toLowerCase()}`, at + window * 1000, now);
    if (seen === "replay") return observe ? { kind: "accept", observed: "invalid" } : refuse("webhook request already received", "replayed");
    if (seen === "full") throw new HttpError(503, "service_unavailable", "too many signed webhook requests to remember; try again shortly", { "Retry-After": "1" });
  }
  return webhook!.mode === "tokenAndHmac" ? { kind: "accept", observed: webhook!.hmacEnforcement === "observe" ? "valid" : undefined } : { kind: "accept" };
}

const alive = (notAfter: string | undefined, now: number) => notAfter === undefined || Date.parse(notAfter) > now;

function tokenMatches(webhook: CredentialWebhook, token: string, now: number): boolean {
  if (!isWebhookTokenShaped(token)) return false;
  const digest = sha256Hex(token);
  let match = false;
  for (const entry of webhook.tokenDigests) if (digestsEqual(entry.digest, digest) && alive(entry.notAfter, now)) match = true;
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
  readonly #unauthenticated: UnauthenticatedRead;
  readonly #replays = new ReplayGuard();
  /** Run ids being enqueued right now: a concurrent repeat gets 409 too. */
  readonly #inFlight = new Set<string>();

  constructor(upstream: Upstream, profile: () => DaguApiProfile, unauthenticated: UnauthenticatedRead) {
    this.#upstream = upstream;
    this.#profile = profile;
    this.#unauthenticated = unauthenticated;
  }

  async handle(call: WebhookCall): Promise<WebhookOutcome> {
    const { req, res, fileName } = call;
    const webhook = call.snapshot.webhooksByDag.get(fileName);
    const headers: WebhookHeaders = {
      authorization: singleHeader(req, "authorization"),
      signature: singleHeader(req, "x-dagu-signature"),
      timestamp: singleHeader(req, "x-dagu-timestamp"),
      profile: singleHeader(req, "x-dagu-profile"),
    };
    const first = checkWebhookHeaders(webhook, headers);
    let auth: WebhookRefusal | WebhookAccept;
    let raw: Buffer;
    if (first.kind === "verify") {
      raw = await readBody(req, MAX_WEBHOOK_BODY, { ...this.#unauthenticated, client: call.clientAddress });
      auth = checkWebhookSignature(webhook, headers, raw, this.#replays);
    } else {
      auth = first;
      raw = Buffer.alloc(0);
    }
    if (auth.kind === "refuse") {
      sendError(res, 401, "unauthorized", auth.message);
      return { detail: auth.detail };
    }
    // The token was accepted on the headers alone: only now is the body read.
    if (first.kind !== "verify") raw = await readBody(req, MAX_WEBHOOK_BODY);
    if (!webhook!.enabled) {
      sendError(res, 403, "forbidden", "webhook is disabled");
      return { detail: "disabled", observed: auth.observed };
    }
    // Runtime profiles (Dagu 2) are not among what a DaguWebhook declares: none may be selected.
    if (headers.profile !== undefined) {
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
