// The operator's private memory per DaguAuth, in Secret `<daguauth>-operator-state`
// (owned by the DaguAuth; the sidecar's Role cannot read it). It is what makes
// reconciles idempotent across restarts: a password is hashed again only when its
// fingerprint changes, and generated JWT signing keys survive the operator.
//
// The fingerprint is an HMAC of the password under a random per-DaguAuth key kept
// here. It is fast (that is the point), so it must never sit where the sidecar or a
// reader of the credentials could see it next to its key.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from "node:crypto";
import { z } from "zod";
import { PasswordChange, SigningKey, passwordChangeWins } from "../api/index.ts";

export const OPERATOR_STATE_KEY = "state.json";
export const operatorStateSecretName = (authName: string) => `${authName}-operator-state`;

export const PasswordRecord = z.object({
  /** HMAC-SHA256(fingerprintKey, id + "\n" + password), hex. */
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  /** argon2id hash of the source password. */
  hash: z.string().startsWith("$argon2id$"),
  /** When the operator first saw this source password (RFC 3339). */
  sourceChangedAt: z.string(),
});
export type PasswordRecord = z.infer<typeof PasswordRecord>;

export const OperatorState = z.object({
  version: z.literal(1),
  fingerprintKey: z.string().min(43),
  /** Keyed by credential user id (DaguUser uid, initial admin id) or "basic". */
  passwords: z.record(z.string(), PasswordRecord),
  /** Generated HS256 keys (absent when the DaguAuth references its own secret), newest first. */
  signingKeys: z.array(SigningKey),
  /** spec.builtin.token.rotation.generation the newest generated key answers to. */
  signingRotation: z.int().min(0),
  /** Whether the newest signing key came from spec.builtin.token.secretRef. */
  signingReferenced: z.boolean(),
});
export type OperatorState = z.infer<typeof OperatorState>;

export function newOperatorState(): OperatorState {
  return { version: 1, fingerprintKey: randomBytes(32).toString("base64url"), passwords: {}, signingKeys: [], signingRotation: 0, signingReferenced: false };
}

// createHmac() turns a Buffer key into a KeyObject on every call (~7 µs); there is one key per DaguAuth.
const fingerprintKeys = new Map<string, KeyObject>();
function fingerprintKeyObject(key: string): KeyObject {
  let keyObject = fingerprintKeys.get(key);
  if (!keyObject) {
    if (fingerprintKeys.size >= 64) fingerprintKeys.clear();
    keyObject = createSecretKey(Buffer.from(key, "base64url"));
    fingerprintKeys.set(key, keyObject);
  }
  return keyObject;
}

export function passwordFingerprint(state: Pick<OperatorState, "fingerprintKey">, id: string, password: string): string {
  return createHmac("sha256", fingerprintKeyObject(state.fingerprintKey)).update(`${id}\n${password}`).digest("hex");
}

function sameHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** RFC 3339 with nanoseconds, like Dagu's pwd_changed_at_ns (milliseconds are all Date has). */
export function nowRfc3339(now: Date = new Date()): string {
  return now.toISOString().replace(/\.(\d{3})Z$/, ".$1000000Z");
}

export interface ResolvedPassword {
  record: PasswordRecord;
  /** The hash the sidecar enforces: the source's, or a newer self-service change's. */
  effectiveHash: string;
  passwordChangedAt: string;
  /** Whether argon2 ran (for metrics and the no-rehash guarantee). */
  hashed: boolean;
}

/**
 * Decides the effective password of one user: the source password (hashed only when its
 * fingerprint differs from the remembered one) or a self-service change made after it.
 * The newer wins; passwordChangedAt follows the winner, so older tokens die either way.
 */
export async function resolvePassword(opts: {
  state: Pick<OperatorState, "fingerprintKey">;
  id: string;
  password: string;
  previous: PasswordRecord | undefined;
  change: PasswordChange | undefined;
  hash: (password: string) => Promise<string>;
  now?: () => Date;
}): Promise<ResolvedPassword> {
  const fingerprint = passwordFingerprint(opts.state, opts.id, opts.password);
  let record = opts.previous;
  let hashed = false;
  if (!record || !sameHex(record.fingerprint, fingerprint)) {
    record = { fingerprint, hash: await opts.hash(opts.password), sourceChangedAt: nowRfc3339(opts.now?.()) };
    hashed = true;
  }
  const change = opts.change;
  if (passwordChangeWins(change, record.sourceChangedAt)) {
    return { record, effectiveHash: change.passwordHash, passwordChangedAt: change.changedAt, hashed };
  }
  return { record, effectiveHash: record.hash, passwordChangedAt: record.sourceChangedAt, hashed };
}

/** Parses the state Secret's document; undefined when absent, an Error naming the field when invalid. */
export function parseOperatorState(json: string | undefined): OperatorState | undefined | Error {
  if (json === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return new Error("operator state is not valid JSON");
  }
  const r = OperatorState.safeParse(value);
  if (r.success) return r.data;
  const first = r.error.issues[0];
  return new Error(`operator state is invalid at ${first?.path.join(".") ?? "?"}: ${first?.message ?? "unknown"}`);
}
