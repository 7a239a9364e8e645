// The one cookie that binds an SSO login to the browser that started it: state, nonce and the PKCE
// verifier, sealed (AES-256-GCM) with a key derived from the DaguAuth's active token signing key, so any
// replica can open it and nobody can forge or read it. `__Host-` (Secure, Path=/, no Domain: no subdomain
// can plant one), HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET), 10 minutes,
// used once. On a plain-http loopback client URL (trying it out) the name has no prefix and no Secure.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { z } from "zod";
import type { CredentialSnapshot } from "../../credentials/credential-store.ts";

export const FLOW_TTL_SECONDS = 600;
const SECURE_NAME = "__Host-dagu-oidc";
const PLAIN_NAME = "dagu-oidc";

const Flow = z.object({ s: z.string().min(1), n: z.string().min(1), v: z.string().min(43).max(128), e: z.number() });
export interface FlowState {
  state: string;
  nonce: string;
  verifier: string;
}

export const flowCookieName = (clientUrl: string) => (clientUrl.startsWith("https://") ? SECURE_NAME : PLAIN_NAME);

function keyFor(snapshot: CredentialSnapshot, kid: string): Buffer | undefined {
  const key = snapshot.signingKeys.get(kid);
  if (!key || (key.notAfterMs !== undefined && key.notAfterMs <= Date.now())) return undefined;
  return Buffer.from(hkdfSync("sha256", key.secret, Buffer.alloc(0), "dagu-auth oidc login cookie v1", 32));
}

/** The Set-Cookie header carrying the sealed flow, or undefined without a signing key (not builtin mode). */
export function sealFlow(snapshot: CredentialSnapshot, clientUrl: string, flow: FlowState, now = Date.now()): string | undefined {
  const kid = snapshot.credentials.token?.activeKid;
  const key = kid ? keyFor(snapshot, kid) : undefined;
  if (!kid || !key) return undefined;
  const name = flowCookieName(clientUrl);
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(`${name}\n${kid}`));
  const body = JSON.stringify({ s: flow.state, n: flow.nonce, v: flow.verifier, e: now + FLOW_TTL_SECONDS * 1000 });
  const sealed = Buffer.concat([cipher.update(body, "utf8"), cipher.final(), cipher.getAuthTag()]);
  const value = [Buffer.from(kid).toString("base64url"), iv.toString("base64url"), sealed.toString("base64url")].join(".");
  return cookie(name, value, FLOW_TTL_SECONDS, clientUrl);
}

/** The Set-Cookie header that deletes the flow cookie (every callback ends the flow, good or bad). */
export function clearFlow(clientUrl: string): string {
  return cookie(flowCookieName(clientUrl), "", 0, clientUrl);
}

function cookie(name: string, value: string, maxAge: number, clientUrl: string): string {
  const secure = clientUrl.startsWith("https://") ? "; Secure" : "";
  return `${name}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${secure}`;
}

/** The flow from the request's Cookie header; undefined when absent, expired, forged or sealed with a retired key. */
export function openFlow(snapshot: CredentialSnapshot, clientUrl: string, cookieHeader: string | undefined, now = Date.now()): FlowState | undefined {
  const name = flowCookieName(clientUrl);
  const values = (cookieHeader ?? "")
    .split(";")
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${name}=`))
    .map((part) => part.slice(name.length + 1));
  // Two cookies of our name (one planted on a sibling path or domain, for the unprefixed name): refuse.
  if (values.length !== 1 || values[0]!.length > 2048) return undefined;
  const [kidPart, ivPart, sealedPart] = values[0]!.split(".");
  if (!kidPart || !ivPart || !sealedPart) return undefined;
  const kid = Buffer.from(kidPart, "base64url").toString("utf8");
  const key = keyFor(snapshot, kid);
  const iv = Buffer.from(ivPart, "base64url");
  const sealed = Buffer.from(sealedPart, "base64url");
  if (!key || iv.length !== 12 || sealed.length < 17) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(Buffer.from(`${name}\n${kid}`));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const body = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString("utf8");
    const flow = Flow.safeParse(JSON.parse(body));
    if (!flow.success || flow.data.e <= now) return undefined;
    return { state: flow.data.s, nonce: flow.data.n, verifier: flow.data.v };
  } catch {
    return undefined;
  }
}
