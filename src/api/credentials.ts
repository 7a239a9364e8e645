// The credentials document: what the operator materializes per DaguAuth and the sidecar enforces.
// It lives in Secret `<daguauth>-credentials`, key `credentials.json`; past ~900 KiB that key holds
// an index of immutable, hash-checked shards instead (see docs/adr/0001-api-design.md).
import { createHash } from "node:crypto";
import { z } from "zod";
import { AUTH_MODES } from "./dagu-auth.ts";
import { HMAC_ENFORCEMENTS, WEBHOOK_MODES } from "./dagu-webhook.ts";
import { Role, isCidr } from "./common.ts";
import { OidcSettings } from "./oidc.ts";

export const CREDENTIALS_KEY = "credentials.json";
export const SHARD_KEY = "shard.json";
export const PASSWORD_CHANGES_KEY = "password-changes.json";
/** Above this many bytes the document is sharded (a Secret holds at most 1 MiB). */
export const MAX_INLINE_BYTES = 900 * 1024;

export const credentialsSecretName = (authName: string) => `${authName}-credentials`;
export const passwordChangesSecretName = (authName: string) => `${authName}-password-changes`;
/** Login throttling shared by the sidecar replicas (src/sidecar/sources/kubernetes-throttle.ts). */
export const loginThrottleSecretName = (authName: string) => `${authName}-login-throttle`;
/** Users created by single sign-on: the operator creates it, the sidecar adds to it (see SsoUsers). */
export const ssoUsersSecretName = (authName: string) => `${authName}-sso-users`;
export const SSO_USERS_KEY = "sso-users.json";
/** Shard Secrets carry the generation in their name: a shard is written once and never changed. */
export const shardSecretName = (authName: string, generation: number, index: number) =>
  `${authName}-credentials-g${generation}-${index}`;
/** User id of a DaguAuth's initial admin (a DaguUser's id is its metadata.uid). */
export const initialAdminUserId = (authUid: string) => `initial-admin:${authUid}`;

const rfc3339 = z.iso.datetime({ offset: true });
const base64url = z.string().regex(/^[A-Za-z0-9_-]+$/, "must be base64url without padding");
/** HMAC keys of at least 256 bits: shorter secrets make HS256 and webhook signatures guessable. */
const secret256 = base64url.refine(
  (s) => Buffer.from(s, "base64url").length >= 32,
  "must decode to at least 32 bytes",
);
/**
 * A webhook's HMAC secret is text, and the signature's key is that text's UTF-8 bytes, as in Dagu
 * (`hmac.New(sha256.New, []byte(secret))`) and GitHub: what a sender is handed is what it keys with.
 * Dagu's are Base58 of 32 random bytes (43-44 characters), the operator's base64url of 32 random bytes
 * (43); both alphabets fit here. At least 40 characters: >= 234 bits for random Base58 text, and every
 * 32-byte secret of either encoding except Base58 ones with 4+ leading zero bytes (odds 2^-32).
 */
export const WEBHOOK_SECRET_MIN_LENGTH = 40;
const webhookSecret = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, "must be base64url or Base58 text (letters, digits, '_', '-')")
  .min(WEBHOOK_SECRET_MIN_LENGTH, `must be at least ${WEBHOOK_SECRET_MIN_LENGTH} characters (32 random bytes, base64url or Base58)`)
  .max(1024, "must be at most 1024 characters");
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "must be a lowercase hex SHA-256 digest");
const argon2id = z.string().startsWith("$argon2id$", "must be an argon2id PHC string ($argon2id$...)");
/** Set on a superseded key, token or secret: it keeps working until then (rotation overlap). */
const notAfter = rfc3339.optional();

/** Dagu 2.15.1's API-key surfaces and attribution classes (api.yaml APIKey). */
export const API_KEY_SURFACES = ["rest_api", "mcp"] as const;
export const API_KEY_ATTRIBUTIONS = ["user_owned", "service_account"] as const;

export const SigningKey = z.object({ kid: z.string().min(1), secret: secret256, notAfter });

export const TokenSettings = z
  .object({
    issuer: z.string().min(1),
    audience: z.string().min(1),
    ttlSeconds: z.int().min(1),
    activeKid: z.string().min(1),
    keys: z.array(SigningKey).min(1),
  })
  .superRefine((t, ctx) => {
    const active = t.keys.find((k) => k.kid === t.activeKid);
    if (!active) ctx.addIssue({ code: "custom", message: "no key has the activeKid", path: ["activeKid"] });
    else if (active.notAfter) ctx.addIssue({ code: "custom", message: "the active key must not expire", path: ["activeKid"] });
    unique(t.keys, (k) => k.kid, ["keys"], "kid", ctx);
  });

export const CredentialUser = z.object({
  /** The DaguUser's metadata.uid, or initialAdminUserId(authUid): the JWT subject. */
  id: z.string().min(1),
  username: z.string().min(1),
  role: Role,
  email: z.string().optional(),
  /** Absent for a user who only signs in through SSO: a password login is refused like an unknown user's. */
  passwordHash: argon2id.optional(),
  /** May sign in through the OpenID provider, matched by `email` (a DaguUser with `sso: true`). */
  sso: z.boolean().optional(),
  /** Tokens issued before this instant are refused (nanosecond precision, like Dagu's claim). */
  passwordChangedAt: rfc3339,
  disabled: z.boolean(),
  allowPasswordChange: z.boolean(),
  /** Known for users kept by a standalone sidecar (Dagu's listings show them). */
  createdAt: rfc3339.optional(),
  updatedAt: rfc3339.optional(),
});
export type CredentialUser = z.infer<typeof CredentialUser>;

export const CredentialApiKey = z.object({
  /** The DaguApiKey's metadata.uid. During a rotation overlap two entries share it. */
  id: z.string().min(1),
  name: z.string().min(1),
  description: z.string().optional(),
  role: Role,
  /** SHA-256 of the whole key (`dagu_...`): a 256-bit random key needs no slow hash. */
  digest: sha256Hex,
  prefix: z.string().max(16),
  createdAt: rfc3339,
  expiresAt: rfc3339.optional(),
  notAfter,
  // Dagu 2.15.1's API-key metadata, set for keys created through a standalone sidecar's API.
  updatedAt: rfc3339.optional(),
  createdBy: z.string().optional(),
  /** Where the key is accepted (Dagu: rest_api, mcp); absent: both, Dagu's default for older keys. */
  allowedSurfaces: z.array(z.enum(API_KEY_SURFACES)).min(1).optional(),
  attributionClass: z.enum(API_KEY_ATTRIBUTIONS).optional(),
  /** A user_owned key works only while this user exists and is enabled (as in Dagu). */
  ownerUserId: z.string().min(1).optional(),
  serviceAccountName: z.string().optional(),
});
export type CredentialApiKey = z.infer<typeof CredentialApiKey>;

export const CredentialWebhook = z
  .object({
    id: z.string().min(1),
    dagName: z.string().min(1),
    enabled: z.boolean(),
    mode: z.enum(WEBHOOK_MODES),
    hmacEnforcement: z.enum(HMAC_ENFORCEMENTS),
    /** SHA-256 digests of the `dagu_wh_...` tokens: the current one, and the previous during an overlap. */
    tokenDigests: z.array(z.object({ digest: sha256Hex, notAfter })),
    /** HMAC-SHA256 secrets (key: the text's UTF-8 bytes); a list so a rotated-out one keeps verifying during the overlap. */
    hmacSecrets: z.array(z.object({ secret: webhookSecret, notAfter })),
    // Shown in Dagu's webhook listings, set for webhooks created through a standalone sidecar's API.
    tokenPrefix: z.string().max(16).optional(),
    createdAt: rfc3339.optional(),
    updatedAt: rfc3339.optional(),
    createdBy: z.string().optional(),
    hmacUpdatedAt: rfc3339.optional(),
    /** Replay protection (not in Dagu): X-Dagu-Timestamp within this many seconds, signed, each request once. */
    timestampWindowSeconds: z.int().min(1).max(86_400).optional(),
  })
  .superRefine((w, ctx) => {
    if (w.mode === "token" && w.timestampWindowSeconds !== undefined) {
      ctx.addIssue({ code: "custom", message: "a timestamp window needs a signature (mode tokenAndHmac or hmac)", path: ["timestampWindowSeconds"] });
    }
    if (w.mode !== "hmac" && w.tokenDigests.length === 0) {
      ctx.addIssue({ code: "custom", message: `mode ${w.mode} needs a token digest`, path: ["tokenDigests"] });
    }
    if (w.mode !== "token" && w.hmacSecrets.length === 0) {
      ctx.addIssue({ code: "custom", message: `mode ${w.mode} needs an HMAC secret`, path: ["hmacSecrets"] });
    }
  });
export type CredentialWebhook = z.infer<typeof CredentialWebhook>;

/** A remote node the sidecar's egress reaches: where, and which Secret holds the key it sends (never the key). */
export const CredentialRemoteNode = z.object({
  name: z.string().min(1),
  url: z.string().min(1),
  token: z.object({ secretName: z.string().min(1), key: z.string().min(1) }),
  ca: z.object({ secretName: z.string().min(1), key: z.string().min(1) }).optional(),
});
export type CredentialRemoteNode = z.infer<typeof CredentialRemoteNode>;

export const Credentials = z
  .object({
    version: z.literal(1),
    authName: z.string().min(1),
    authUid: z.string().min(1),
    /** Increases with every change; the sidecar never goes back to an older generation. */
    generation: z.int().min(0),
    mode: z.enum(AUTH_MODES),
    /** Present in builtin mode. */
    token: TokenSettings.optional(),
    users: z.array(CredentialUser),
    /** Present in basic mode. */
    basic: z.object({ username: z.string().min(1), passwordHash: argon2id }).optional(),
    apiKeys: z.array(CredentialApiKey),
    webhooks: z.array(CredentialWebhook),
    login: z.object({
      maxAttempts: z.int().min(1),
      windowSeconds: z.int().min(1),
      lockoutSeconds: z.int().min(1),
    }),
    trustedProxies: z.array(z.string().refine(isCidr, "must be a CIDR such as 10.0.0.0/8")),
    /** Remote nodes of this Dagu (absent: none). */
    remoteNodes: z.array(CredentialRemoteNode).optional(),
    /** Single sign-on settings (builtin mode), with the client secret. */
    oidc: OidcSettings.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.oidc && c.mode !== "builtin") ctx.addIssue({ code: "custom", message: "OIDC needs builtin mode", path: ["oidc"] });
    c.users.forEach((u, i) => {
      if (!u.passwordHash && !u.sso) ctx.addIssue({ code: "custom", message: "a user needs a password hash or sso", path: ["users", i, "passwordHash"] });
      if (u.sso && !u.email) ctx.addIssue({ code: "custom", message: "an sso user needs an email", path: ["users", i, "email"] });
    });
    if (c.mode === "builtin" && !c.token) {
      ctx.addIssue({ code: "custom", message: "builtin mode needs token settings", path: ["token"] });
    }
    if (c.mode === "basic" && !c.basic) {
      ctx.addIssue({ code: "custom", message: "basic mode needs the basic credential", path: ["basic"] });
    }
    // Dagu's page: API keys and webhooks require builtin auth; basic mode is one user and nothing else.
    if (c.mode === "basic" && c.apiKeys.length > 0) {
      ctx.addIssue({ code: "custom", message: "apiKeys must be empty in basic mode: API keys need builtin mode, as in Dagu", path: ["apiKeys"] });
    }
    if (c.mode === "basic" && c.webhooks.length > 0) {
      ctx.addIssue({ code: "custom", message: "webhooks must be empty in basic mode: webhooks need builtin mode, as in Dagu", path: ["webhooks"] });
    }
    // The sidecar indexes these: a duplicate would make a lookup ambiguous.
    unique(c.users, (u) => u.id, ["users"], "id", ctx);
    unique(c.users, (u) => u.username, ["users"], "username", ctx);
    unique(c.apiKeys, (k) => k.digest, ["apiKeys"], "digest", ctx);
    unique(c.webhooks, (w) => w.dagName, ["webhooks"], "dagName", ctx);
    unique(c.remoteNodes ?? [], (n) => n.name, ["remoteNodes"], "name", ctx);
  });
export type Credentials = z.infer<typeof Credentials>;

function unique<T>(
  items: readonly T[],
  key: (item: T) => string,
  path: (string | number)[],
  field: string,
  ctx: z.RefinementCtx,
): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const k = key(item);
    if (seen.has(k)) ctx.addIssue({ code: "custom", message: `duplicate ${field}`, path: [...path, i, field] });
    seen.add(k);
  });
}

/** Parses and validates a credentials document; on failure the zod error names every bad field. */
export function parseCredentials(json: string): z.ZodSafeParseResult<Credentials> {
  return parseJsonWith(Credentials, json);
}

// ---------------------------------------------------------------------------------------------
// Sharding: an index in `credentials.json`, and immutable shard Secrets named by generation.

export const ShardRef = z.object({
  secretName: z.string().min(1),
  key: z.string().min(1),
  /** SHA-256 (hex) of the shard's decoded bytes. */
  sha256: sha256Hex,
});

export const CredentialsIndex = z.object({
  version: z.literal(1),
  kind: z.literal("index"),
  generation: z.int().min(0),
  /** SHA-256 (hex) of the whole reassembled document. */
  sha256: sha256Hex,
  shards: z.array(ShardRef).min(1),
});
export type CredentialsIndex = z.infer<typeof CredentialsIndex>;

export const CredentialsShard = z.object({
  version: z.literal(1),
  kind: z.literal("shard"),
  generation: z.int().min(0),
  index: z.int().min(0),
  /** base64 of a byte range of the UTF-8 document (bytes, so no character is ever cut in two). */
  part: z.string(),
});
export type CredentialsShard = z.infer<typeof CredentialsShard>;

/** What `credentials.json` holds: the document itself, or an index of shards. */
export type CredentialsEntry =
  | { kind: "document"; credentials: Credentials }
  | { kind: "index"; index: CredentialsIndex };

/** The document has no `kind`; an index says `kind: "index"`. Issues keep their field paths. */
const CredentialsEntrySchema = z.unknown().transform((value, ctx): CredentialsEntry => {
  const isIndex = typeof value === "object" && value !== null && "kind" in value && value.kind === "index";
  const r = isIndex ? CredentialsIndex.safeParse(value) : Credentials.safeParse(value);
  if (!r.success) {
    for (const issue of r.error.issues) ctx.addIssue({ ...issue, code: "custom", input: value });
    return z.NEVER;
  }
  return "kind" in r.data ? { kind: "index", index: r.data } : { kind: "document", credentials: r.data };
});

export function parseCredentialsEntry(json: string): z.ZodSafeParseResult<CredentialsEntry> {
  return parseJsonWith(CredentialsEntrySchema, json);
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/**
 * Splits a serialized document into an index and shards of at most `maxPartBytes` bytes each.
 * The operator writes the shards first, then the index: the index is the single commit point.
 */
export function shardCredentials(
  json: string,
  authName: string,
  generation: number,
  maxPartBytes = 600 * 1024, // base64 makes it 800 KiB inside the shard Secret
): { index: CredentialsIndex; shards: { secretName: string; shard: CredentialsShard }[] } {
  const bytes = Buffer.from(json, "utf8");
  const shards: { secretName: string; shard: CredentialsShard }[] = [];
  const refs: z.infer<typeof ShardRef>[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; offset += maxPartBytes, i++) {
    const chunk = bytes.subarray(offset, offset + maxPartBytes);
    const secretName = shardSecretName(authName, generation, i);
    shards.push({
      secretName,
      shard: { version: 1, kind: "shard", generation, index: i, part: chunk.toString("base64") },
    });
    refs.push({ secretName, key: SHARD_KEY, sha256: sha256(chunk) });
  }
  return { index: { version: 1, kind: "index", generation, sha256: sha256(bytes), shards: refs }, shards };
}

/**
 * Reassembles a sharded document, refusing any shard that does not belong to the index's generation
 * or whose bytes differ from the index's digest: a half-written generation is never loaded.
 * `shards[i]` is the parsed content of `index.shards[i]`.
 */
export function joinShards(index: CredentialsIndex, shards: readonly CredentialsShard[]): string {
  if (shards.length !== index.shards.length) {
    throw new Error(`credentials index names ${index.shards.length} shards, got ${shards.length}`);
  }
  const parts = index.shards.map((ref, i) => {
    const shard = shards[i]!;
    if (shard.generation !== index.generation || shard.index !== i) {
      throw new Error(
        `shard ${ref.secretName} is generation ${shard.generation} part ${shard.index}, ` +
          `expected generation ${index.generation} part ${i}`,
      );
    }
    const bytes = Buffer.from(shard.part, "base64");
    if (sha256(bytes) !== ref.sha256) throw new Error(`shard ${ref.secretName} does not match its digest`);
    return bytes;
  });
  const whole = Buffer.concat(parts);
  if (sha256(whole) !== index.sha256) throw new Error("reassembled credentials do not match the index digest");
  return whole.toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// Self-service password changes: Secret `<daguauth>-password-changes`, key `password-changes.json`.
// The sidecar patches it (with a resourceVersion precondition); the operator merges it.

export const PasswordChange = z.object({
  passwordHash: argon2id,
  /** When the user changed it (RFC 3339, nanoseconds): the newer of this and the source Secret wins. */
  changedAt: rfc3339,
});
export type PasswordChange = z.infer<typeof PasswordChange>;

/** Keyed by user id (a DaguUser's uid, or the initial admin's id). */
export const PasswordChanges = z.record(z.string().min(1), PasswordChange);
export type PasswordChanges = z.infer<typeof PasswordChanges>;

export function parsePasswordChanges(json: string): z.ZodSafeParseResult<PasswordChanges> {
  return parseJsonWith(PasswordChanges, json);
}

// ---------------------------------------------------------------------------------------------
// Users created by single sign-on: Secret `<daguauth>-sso-users`, key `sso-users.json`. The sidecar adds
// and updates records (with a resourceVersion precondition); every replica watches it; the operator only
// reports them. Keyed by the record's id, which is the JWT subject.

export const SsoUser = z.object({
  /** The provider that vouched for the person, and its subject: the identity a later login is matched by. */
  issuer: z.string().min(1).max(2048),
  subject: z.string().min(1).max(255),
  username: z.string().min(1).max(64),
  email: z.string().max(254).optional(),
  role: Role,
  /** Tokens issued before this instant are refused: a record removed and created again kills old tokens. */
  createdAt: rfc3339,
  updatedAt: rfc3339,
  /** Set by an admin (kubectl, or Dagu's Users page): logins and tokens refused. */
  disabled: z.boolean().optional(),
});
export type SsoUser = z.infer<typeof SsoUser>;

/** Keyed by id (`sso:<uuid>`). */
export const SsoUsers = z.record(z.string().regex(/^sso:[0-9a-f-]{36}$/, "must be sso:<uuid>"), SsoUser);
export type SsoUsers = z.infer<typeof SsoUsers>;

export function parseSsoUsers(json: string): z.ZodSafeParseResult<SsoUsers> {
  return parseJsonWith(SsoUsers, json);
}

// ---------------------------------------------------------------------------------------------

/** Nanoseconds since the epoch of an RFC 3339 timestamp, keeping all 9 fraction digits. */
export function rfc3339ToNanos(value: string): bigint {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(value);
  const seconds = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(seconds)) throw new Error(`invalid RFC 3339 timestamp ${JSON.stringify(value)}`);
  return BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? "").padEnd(9, "0"));
}

/**
 * JSON.parse, then the schema; a syntax error becomes a zod error too, so callers handle one kind.
 * The parser's own message is dropped: it quotes the input, which may be secret.
 */
function parseJsonWith<T>(schema: z.ZodType<T>, json: string): z.ZodSafeParseResult<T> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    const issue = { code: "custom" as const, path: [], message: "not valid JSON", input: undefined };
    return { success: false, error: new z.ZodError([issue]) as z.ZodError<T> };
  }
  return schema.safeParse(value);
}
