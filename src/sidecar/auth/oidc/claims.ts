// What the sidecar accepts from a provider's claims (ID token, merged with userinfo as Dagu does): size
// limits, the email address (one `@`, not marked unverified, allowed by the whitelist or a domain), the
// groups (a list of strings), and Dagu's username derived from them. Pure functions; refusals carry a
// reason for the audit log and a message for the login page that helps no attacker.
import { z } from "zod";
import type { OidcSettings } from "../../../api/oidc.ts";

/** A provider that sends more than this is misconfigured or hostile; Keycloak with ~100 groups sends ~8 KiB. */
export const MAX_CLAIMS_BYTES = 64 * 1024;
export const MAX_GROUPS = 1000;
const MAX_EMAIL_LENGTH = 254;

export type Claims = Record<string, unknown>;
export type Refusal = { readonly ok: false; readonly reason: string; readonly message: string };
export const refusal = (reason: string, message: string): Refusal => ({ ok: false, reason, message });

/**
 * ID token claims with userinfo merged the way Dagu merges it: userinfo's email (and its verification
 * flag) win, other userinfo claims only fill gaps. A userinfo answer for another subject never reaches
 * here (openid-client checks `sub`).
 */
export function mergeUserinfo(idToken: Claims, userinfo: Claims | undefined): Claims {
  if (!userinfo) return { ...idToken };
  const merged: Claims = { ...idToken };
  for (const [key, value] of Object.entries(userinfo)) if (!Object.hasOwn(merged, key)) merged[key] = value;
  if (typeof userinfo.email === "string" && userinfo.email !== "") {
    merged.email = userinfo.email;
    // The flag that goes with the address in force: an unverified userinfo address is not verified by the ID token's flag.
    if (Object.hasOwn(userinfo, "email_verified")) merged.email_verified = userinfo.email_verified;
    else delete merged.email_verified;
  }
  return merged;
}

export function checkSize(claims: Claims): Refusal | undefined {
  if (Buffer.byteLength(JSON.stringify(claims)) > MAX_CLAIMS_BYTES) return refusal("claims_too_large", "Authentication failed: the identity provider sent too much user information");
  return undefined;
}

const EmailClaims = z.object({ email: z.string().optional(), email_verified: z.unknown().optional() });

/**
 * The verified, allowed address, lower-cased. Dagu requires an email claim; an address with a second `@`
 * or spaces could compare equal to an allowed one in some other parser, so it is refused outright.
 */
export function checkEmail(claims: Claims, settings: OidcSettings): { ok: true; email: string } | Refusal {
  const parsed = EmailClaims.safeParse(claims);
  const email = parsed.success ? parsed.data.email : undefined;
  if (!email) return refusal("email_missing", "Authentication failed: the identity provider sent no email address (request the email scope)");
  const at = email.indexOf("@");
  if (email.length > MAX_EMAIL_LENGTH || at <= 0 || at === email.length - 1 || email.indexOf("@", at + 1) >= 0 || /[\s\p{Cc}]/u.test(email)) {
    return refusal("email_malformed", "Authentication failed: the email address from the identity provider is not valid");
  }
  // Explicitly unverified (false, or "false" from providers that send strings) is refused; absent is accepted, as by Dagu.
  const verified = parsed.success ? parsed.data.email_verified : undefined;
  if (verified === false || verified === "false") return refusal("email_unverified", "Authentication failed: your email address is not verified at the identity provider");
  const lower = email.toLowerCase();
  const domain = lower.slice(at + 1);
  const restricted = settings.whitelist.length > 0 || settings.allowedDomains.length > 0;
  // Whitelist first, then domains (Dagu's order); either admits.
  if (restricted && !settings.whitelist.includes(lower) && !settings.allowedDomains.includes(domain)) {
    return refusal("email_not_allowed", "Authentication failed: your email address is not authorized");
  }
  return { ok: true, email: lower };
}

/** A claim at a dotted path (`realm_access.roles`); a key without dots (`cognito:groups`) is read as it is. */
export function claimAt(claims: Claims, path: string): unknown {
  let current: unknown = claims;
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null || Array.isArray(current) || !Object.hasOwn(current, part)) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/**
 * The groups: absent means none; anything but a list of strings is refused (Dagu would split a string at
 * spaces and drop non-strings, which turns a provider's mistake into a silently different role).
 */
export function groupsOf(claims: Claims, groupsClaim: string): { ok: true; groups: string[] } | Refusal {
  const value = claimAt(claims, groupsClaim);
  if (value === undefined || value === null) return { ok: true, groups: [] };
  if (!Array.isArray(value) || !value.every((g) => typeof g === "string")) {
    return refusal("groups_not_a_list", "Authentication failed: the identity provider sent groups in an unexpected form");
  }
  if (value.length > MAX_GROUPS) return refusal("too_many_groups", "Authentication failed: the identity provider sent too many groups");
  return { ok: true, groups: value };
}

/** Dagu's sanitization: lower case, `.`, `-` and spaces to `_`, then only [a-z0-9_], trimmed of `_`. */
export function sanitizeUsername(value: string): string {
  return value
    .toLowerCase()
    .replace(/[.\- ]/g, "_")
    .replace(/[^a-z0-9_]/g, "")
    .replace(/^_+|_+$/g, "")
    .slice(0, 48);
}

/**
 * A free username the way Dagu picks one: preferred_username, else the address's local part; taken by
 * another SSO user, add 2..99; taken by a password user, add `_sso` (then `_sso2`..). Last resort:
 * `user_` and the start of the subject.
 */
export function pickUsername(claims: Claims, email: string, subject: string, taken: (name: string) => "free" | "sso" | "password"): string {
  const preferred = typeof claims.preferred_username === "string" ? claims.preferred_username : "";
  for (const candidate of [preferred, email.slice(0, email.indexOf("@"))]) {
    const base = sanitizeUsername(candidate);
    if (base === "") continue;
    const holder = taken(base);
    if (holder === "free") return base;
    if (holder === "sso") {
      for (let i = 2; i <= 99; i++) if (taken(`${base}${i}`) === "free") return `${base}${i}`;
    }
    for (const suffix of ["_sso", ...Array.from({ length: 98 }, (_v, i) => `_sso${i + 2}`)]) {
      if (taken(`${base}${suffix}`) === "free") return `${base}${suffix}`;
    }
  }
  const fallback = `user_${sanitizeUsername(subject).slice(0, 8) || "sso"}`;
  for (let i = 1; i <= 999; i++) {
    const name = i === 1 ? fallback : `${fallback}${i}`;
    if (taken(name) === "free") return name;
  }
  throw new Error("no free username");
}
