// `DaguAuth.spec.oidc`: single sign-on through an OpenID provider under builtin mode, with Dagu's
// keys (auth.oidc in Dagu's config) in the API's camelCase. See docs/sso.md and docs/adr/0009.
import { z } from "zod";
import { Role, SecretKeySelector, cel } from "./common.ts";

/**
 * An https URL, or http on a loopback host (a provider or a Dagu on the same machine, for trying it
 * out): the code, the client secret and the tokens cross these connections. RE2-compatible.
 */
export const HTTPS_OR_LOOPBACK_PATTERN = /^(https:\/\/[^\s/?#@]+|http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?)(\/[^\s?#]*)?$/;
export const isHttpsOrLoopback = (value: string) => HTTPS_OR_LOOPBACK_PATTERN.test(value);

const httpsUrl = (description: string) => z.string().min(8).max(2048).regex(HTTPS_OR_LOOPBACK_PATTERN).describe(description);

/** A mail domain as Dagu compares it (exact, case-insensitive): `example.com`, no `@`, no wildcard. */
const DOMAIN = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
/** One `@`, something on both sides, no spaces: what an exact comparison needs. */
const EMAIL_ADDRESS = /^[^@\s]+@[^@\s]+$/;

export const DEFAULT_OIDC_SCOPES = ["openid", "profile", "email"] as const;
export const DEFAULT_BUTTON_LABEL = "Login with SSO";
export const MAX_GROUP_MAPPINGS = 256;
export const MAX_GROUP_NAME_LENGTH = 256;

export const OidcRoleMapping = cel(
  z
    .object({
      defaultRole: Role.default("viewer").describe(
        "Role of a user no rule maps (Dagu's default_role; default viewer). Ignored with roleAttributeStrict.",
      ),
      groupsClaim: z
        .string()
        .min(1)
        .max(256)
        .default("groups")
        .describe(
          "Claim holding the user's groups, a list of strings (default groups). Dots reach into objects, " +
            "e.g. realm_access.roles for Keycloak.",
        ),
      groupMappings: z
        .record(z.string().min(1).max(MAX_GROUP_NAME_LENGTH), Role)
        .meta({ maxProperties: MAX_GROUP_MAPPINGS })
        .optional()
        .describe("Group name to Dagu role. A user in several mapped groups gets the highest of their roles."),
      roleAttributePath: z
        .string()
        .min(1)
        .max(4096)
        .optional()
        .describe(
          "A jq expression over the claims giving a role name, e.g. " +
            "`if (.groups | index(\"admins\")) then \"admin\" else \"viewer\" end`. Evaluated before groupMappings; " +
            "an error, no output or an unknown role falls through to groupMappings. One that does not compile " +
            "makes the DaguAuth not Ready (InvalidRoleAttributePath).",
        ),
      roleAttributeStrict: z
        .boolean()
        .default(false)
        .describe("Refuse a login that neither roleAttributePath nor groupMappings maps to a role."),
      skipOrgRoleSync: z
        .boolean()
        .default(false)
        .describe("Keep the role given at a user's first login instead of mapping it again at every login."),
    })
    .describe(
      "How a provider's claims become a Dagu role, in Dagu's order: roleAttributePath, then groupMappings " +
        "(highest role wins), then defaultRole. A DaguUser declared for the person (sso: true) pins the role instead.",
    ),
  [
    {
      rule: "!has(self.groupMappings) || size(self.groupMappings) <= 256",
      message: `spec.oidc.roleMapping.groupMappings may hold at most ${MAX_GROUP_MAPPINGS} groups`,
      fieldPath: ".groupMappings",
      check: (m) => Object.keys(m.groupMappings ?? {}).length <= MAX_GROUP_MAPPINGS,
    },
    {
      // A map's keys have no maxLength in OpenAPI: the apiserver hears the bound zod keeps from this rule.
      rule: `!has(self.groupMappings) || self.groupMappings.all(g, size(g) >= 1 && size(g) <= ${MAX_GROUP_NAME_LENGTH})`,
      message: `spec.oidc.roleMapping.groupMappings: each group name must be 1 to ${MAX_GROUP_NAME_LENGTH} characters`,
      fieldPath: ".groupMappings",
      check: (m) => Object.keys(m.groupMappings ?? {}).every((g) => g.length >= 1 && g.length <= MAX_GROUP_NAME_LENGTH),
    },
  ],
);
export type OidcRoleMapping = z.infer<typeof OidcRoleMapping>;

const emailEntry = z
  .string()
  .min(3)
  .max(254)
  .regex(EMAIL_ADDRESS)
  .describe("An email address, compared exactly (case-insensitive).");
const domainEntry = z.string().min(1).max(253).regex(DOMAIN).describe("A mail domain such as example.com, compared exactly (case-insensitive).");

/** Restricting by address needs the email scope: Dagu refuses such a configuration too. */
const needsEmailScope = (s: { scopes: readonly string[]; whitelist?: readonly string[] | undefined; allowedDomains?: readonly string[] | undefined }) =>
  s.scopes.includes("email") || ((s.whitelist?.length ?? 0) === 0 && (s.allowedDomains?.length ?? 0) === 0);

export const OidcSpec = cel(
  z
    .object({
      issuer: httpsUrl(
        "The provider's issuer URL (its discovery document is at <issuer>/.well-known/openid-configuration). " +
          "https, or http on 127.0.0.1/localhost only.",
      ),
      clientId: z.string().min(1).max(1024).describe("The client ID registered at the provider."),
      clientSecretRef: SecretKeySelector.optional().describe(
        "Secret key holding the client secret. Without it the sidecar is a public client (PKCE only).",
      ),
      clientUrl: httpsUrl(
        "The public URL of this Dagu (what users' browsers open), with Dagu's base path if it has one: " +
          "the SSO routes and redirects live under its path. The provider must allow " +
          "<clientUrl>/oidc-callback as a redirect URI.",
      ),
      scopes: z
        .array(z.string().min(1).max(256).regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/).describe("One scope."))
        .min(1)
        .max(32)
        .default([...DEFAULT_OIDC_SCOPES])
        .describe("Scopes requested (default openid, profile, email). Must include openid."),
      autoSignup: z
        .boolean()
        .default(true)
        .describe(
          "Create a Dagu user at a person's first login. When false, only people declared as a DaguUser " +
            "with sso: true and their email get in.",
        ),
      whitelist: z
        .array(emailEntry)
        .max(1000)
        .optional()
        .describe("Email addresses allowed to log in. With allowedDomains, an address in either list gets in."),
      allowedDomains: z
        .array(domainEntry)
        .max(1000)
        .optional()
        .describe("Mail domains allowed to log in (exact, e.g. example.com; subdomains are not included)."),
      buttonLabel: z
        .string()
        .min(1)
        .max(64)
        .default(DEFAULT_BUTTON_LABEL)
        .describe("Label of the SSO button on Dagu's login page (default Login with SSO)."),
      caBundle: z
        .string()
        .min(1)
        .max(65536)
        .regex(/-----BEGIN CERTIFICATE-----/)
        .optional()
        .describe(
          "PEM certificates to trust for the provider besides the system's, e.g. an internal CA " +
            "(public data: it goes in the spec, not in a Secret).",
        ),
      roleMapping: OidcRoleMapping.prefault({}),
    })
    .describe("Single sign-on through an OpenID Connect provider (Dagu's auth.oidc). Builtin mode only."),
  [
    {
      rule: "self.scopes.exists(s, s == 'openid')",
      message: "spec.oidc.scopes must include openid",
      fieldPath: ".scopes",
      check: (s) => s.scopes.includes("openid"),
    },
    {
      rule:
        "self.scopes.exists(s, s == 'email') || ((!has(self.whitelist) || size(self.whitelist) == 0) && " +
        "(!has(self.allowedDomains) || size(self.allowedDomains) == 0))",
      message: "spec.oidc.scopes must include email when spec.oidc.whitelist or spec.oidc.allowedDomains is set",
      fieldPath: ".scopes",
      check: needsEmailScope,
    },
  ],
);
export type OidcSpec = z.infer<typeof OidcSpec>;


/**
 * The OIDC part of the credentials document: what the sidecar needs, the client secret included (the
 * document lives in a Secret). Addresses and domains are lower-cased by whoever writes it.
 */
export const OidcSettings = z.object({
  issuer: z.string().regex(HTTPS_OR_LOOPBACK_PATTERN, "must be an https URL (http only on a loopback host)"),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1).optional(),
  clientUrl: z.string().regex(HTTPS_OR_LOOPBACK_PATTERN, "must be an https URL (http only on a loopback host)"),
  scopes: z.array(z.string().min(1)).min(1).refine((s) => s.includes("openid"), "must include openid"),
  autoSignup: z.boolean(),
  whitelist: z.array(z.string().regex(EMAIL_ADDRESS)),
  allowedDomains: z.array(z.string().regex(DOMAIN)),
  buttonLabel: z.string().min(1),
  caBundle: z.string().min(1).optional(),
  roleMapping: z.object({
    defaultRole: Role,
    groupsClaim: z.string().min(1),
    groupMappings: z.record(z.string().min(1), Role),
    roleAttributePath: z.string().min(1).optional(),
    roleAttributeStrict: z.boolean(),
    skipOrgRoleSync: z.boolean(),
  }),
});
export type OidcSettings = z.infer<typeof OidcSettings>;

/** The settings a spec (or Dagu's auth.oidc) gives, with the client secret read from its Secret. */
export function oidcSettingsOf(spec: OidcSpec, clientSecret: string | undefined): OidcSettings {
  const rm = spec.roleMapping;
  return {
    issuer: spec.issuer,
    clientId: spec.clientId,
    ...(clientSecret !== undefined ? { clientSecret } : {}),
    clientUrl: spec.clientUrl.replace(/\/+$/, ""),
    scopes: [...spec.scopes],
    autoSignup: spec.autoSignup,
    whitelist: (spec.whitelist ?? []).map((e) => e.toLowerCase()),
    allowedDomains: (spec.allowedDomains ?? []).map((d) => d.toLowerCase()),
    buttonLabel: spec.buttonLabel,
    ...(spec.caBundle ? { caBundle: spec.caBundle } : {}),
    roleMapping: {
      defaultRole: rm.defaultRole,
      groupsClaim: rm.groupsClaim,
      groupMappings: { ...rm.groupMappings },
      ...(rm.roleAttributePath ? { roleAttributePath: rm.roleAttributePath } : {}),
      roleAttributeStrict: rm.roleAttributeStrict,
      skipOrgRoleSync: rm.skipOrgRoleSync,
    },
  };
}
