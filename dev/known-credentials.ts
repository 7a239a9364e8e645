// Credentials documents with known secrets (users with their passwords, API keys, webhook tokens and
// HMAC secrets, the signing key), for whatever drives a sidecar locally: the benches (scripts/bench-*.ts)
// and the tests (test/harness/sidecar.ts).
import { randomBytes, randomUUID } from "node:crypto";
import type { Credentials } from "../src/api/credentials.ts";
import type { Role } from "../src/api/common.ts";
import { hashPassword } from "../src/common/password-hash.ts";
import { generateApiKey, generateSecret, generateWebhookToken, keyPrefix, sha256Hex } from "../src/common/tokens.ts";


export interface UserSpec {
  username: string;
  password: string;
  role: Role;
  disabled?: boolean;
  allowPasswordChange?: boolean;
}
export interface ApiKeySpec {
  name: string;
  role: Role;
  expiresAt?: string;
  /** Dagu 2.15.1's surfaces (absent: both, as Dagu reads a key without them). */
  allowedSurfaces?: ("rest_api" | "mcp")[];
}
export interface WebhookSpec {
  dagName: string;
  mode: "token" | "tokenAndHmac" | "hmac";
  hmacEnforcement?: "strict" | "observe";
  enabled?: boolean;
  /** Replay protection (not in Dagu): X-Dagu-Timestamp within this many seconds. */
  timestampWindowSeconds?: number;
}

export interface TestCredentials {
  credentials: Credentials;
  /** Signing secret of the active key (base64url), to forge tokens in tests. */
  signingSecret: string;
  kid: string;
  apiKeys: Record<string, string>;
  webhookTokens: Record<string, string>;
  hmacSecrets: Record<string, string>;
  userIds: Record<string, string>;
}

/** One user for each of four roles, with their passwords: the usual cast of a sidecar test. */
export const ROLE_USERS = [
  { username: "admin", password: "admin-password-1", role: "admin" },
  { username: "dev", password: "developer-password-1", role: "developer" },
  { username: "opal", password: "operator-password-1", role: "operator" },
  { username: "vic", password: "viewer-password-1", role: "viewer" },
] as const satisfies readonly UserSpec[];

export async function buildCredentials(spec: {
  users?: UserSpec[];
  apiKeys?: ApiKeySpec[];
  webhooks?: WebhookSpec[];
  mode?: "builtin" | "basic";
  basic?: { username: string; password: string };
  generation?: number;
  trustedProxies?: string[];
  login?: Credentials["login"];
}): Promise<TestCredentials> {
  const signingSecret = generateSecret();
  const kid = `k-${randomBytes(4).toString("hex")}`;
  const userIds: Record<string, string> = {};
  const users = await Promise.all(
    (spec.users ?? []).map(async (u) => {
      const id = randomUUID();
      userIds[u.username] = id;
      return {
        id,
        username: u.username,
        role: u.role,
        passwordHash: await hashPassword(u.password),
        passwordChangedAt: "2026-01-01T00:00:00.000000000Z",
        disabled: u.disabled ?? false,
        allowPasswordChange: u.allowPasswordChange ?? true,
      };
    }),
  );
  const apiKeys: Record<string, string> = {};
  const keyEntries = (spec.apiKeys ?? []).map((k) => {
    const key = generateApiKey();
    apiKeys[k.name] = key;
    return { id: randomUUID(), name: k.name, role: k.role, digest: sha256Hex(key), prefix: keyPrefix(key), createdAt: "2026-01-01T00:00:00Z", expiresAt: k.expiresAt, ...(k.allowedSurfaces ? { allowedSurfaces: k.allowedSurfaces } : {}) };
  });
  const webhookTokens: Record<string, string> = {};
  const hmacSecrets: Record<string, string> = {};
  const webhooks = (spec.webhooks ?? []).map((w) => {
    const token = generateWebhookToken();
    const secret = generateSecret();
    webhookTokens[w.dagName] = token;
    hmacSecrets[w.dagName] = secret;
    return {
      id: randomUUID(),
      dagName: w.dagName,
      enabled: w.enabled ?? true,
      mode: w.mode,
      hmacEnforcement: w.hmacEnforcement ?? "strict",
      tokenDigests: w.mode === "hmac" ? [] : [{ digest: sha256Hex(token) }],
      hmacSecrets: w.mode === "token" ? [] : [{ secret }],
      ...(w.timestampWindowSeconds !== undefined ? { timestampWindowSeconds: w.timestampWindowSeconds } : {}),
    };
  });
  const mode = spec.mode ?? "builtin";
  const credentials: Credentials = {
    version: 1,
    authName: "test",
    authUid: randomUUID(),
    generation: spec.generation ?? 1,
    mode,
    token: mode === "builtin" ? { issuer: "dagu-auth-test", audience: "dagu", ttlSeconds: 3600, activeKid: kid, keys: [{ kid, secret: signingSecret }] } : undefined,
    users,
    basic: spec.basic ? { username: spec.basic.username, passwordHash: await hashPassword(spec.basic.password) } : undefined,
    apiKeys: keyEntries,
    webhooks,
    login: spec.login ?? { maxAttempts: 5, windowSeconds: 900, lockoutSeconds: 900 },
    trustedProxies: spec.trustedProxies ?? [],
  };
  return { credentials, signingSecret, kid, apiKeys, webhookTokens, hmacSecrets, userIds };
}
