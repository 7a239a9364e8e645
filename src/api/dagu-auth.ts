// DaguAuth: one protected Dagu server and how people and machines log in to it.
import { z } from "zod";
import {
  CEL_META_KEY,
  LocalObjectReference,
  Rotation,
  SecretKeySelector,
  cel,
  duration,
  isCidr,
  minDuration,
  objectName,
  resource,
  statusBase,
  username,
} from "./common.ts";
import { BASE_PATH_PATTERN, MAX_BASE_PATH_LENGTH, basePathProblem } from "./base-path.ts";
import { DAGU_AUTH_NAME_MAX_LENGTH, DAGU_AUTH_NAME_MESSAGE } from "./names.ts";
import { OidcSpec } from "./oidc.ts";

export const AUTH_MODES = ["builtin", "basic"] as const;

export const TokenSpec = cel(
  z
    .object({
      secretRef: SecretKeySelector.optional().describe(
        "Secret key holding the signing secret for login tokens (HS256). 32 bytes or more are the key itself; a " +
          "shorter secret is accepted with a warning and a 256-bit key is derived from it (HKDF-SHA256). " +
          "When absent the operator generates one and rotates it through `rotation`.",
      ),
      ttl: duration("Lifetime of a login token (JWT).").default("24h"),
      rotation: Rotation.optional().describe(
        "Rotation of the generated signing key: bump `generation` to issue a new key; tokens signed " +
          "with the previous key stay valid for `overlap`. Only used without `secretRef`.",
      ),
    })
    .describe("Login tokens (JWT, HS256), as Dagu issues them."),
  [
    minDuration("ttl", "spec.builtin.token.ttl", "1m"),
    {
      rule: "!has(self.secretRef) || !has(self.rotation)",
      message:
        "spec.builtin.token.rotation is only used for a generated key: rotate a key from " +
        "spec.builtin.token.secretRef by changing that Secret",
      fieldPath: ".rotation",
      reason: "FieldValueForbidden",
      check: (t) => !(t.secretRef && t.rotation),
    },
  ],
);

export const InitialAdmin = z
  .object({
    username: username("Username of the initial admin."),
    passwordSecretRef: SecretKeySelector.describe("Secret key holding the initial admin's password."),
  })
  .describe(
    "An admin user materialized from a Secret. Not a one-time bootstrap: it stays as declared " +
      "(the Secret is the truth), like a DaguUser with role admin.",
  );

export const BuiltinSpec = z
  .object({
    token: TokenSpec.prefault({}),
    initialAdmin: InitialAdmin.optional(),
  })
  .describe("Settings of builtin mode: Dagu's login page, users with roles, API keys and webhooks.");
export type BuiltinSpec = z.infer<typeof BuiltinSpec>;

export const BasicSpec = z
  .object({
    username: username("The single HTTP Basic username (acts as admin)."),
    passwordSecretRef: SecretKeySelector.describe("Secret key holding the HTTP Basic password."),
  })
  .describe("Settings of basic mode: one HTTP Basic user who acts as admin.");
export type BasicSpec = z.infer<typeof BasicSpec>;

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const IssuerRef = z
  .object({
    name: objectName("Name of the cert-manager issuer."),
    kind: z
      .enum(["Issuer", "ClusterIssuer"])
      .default("Issuer")
      .describe("Issuer (same namespace) or ClusterIssuer."),
    group: z
      .string()
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
      .default("cert-manager.io")
      .describe("API group of the issuer (cert-manager.io, or an external issuer's group)."),
  })
  .describe("The cert-manager issuer that signs the sidecar's serving certificate.");

export const TlsSpec = cel(
  z
    .object({
      issuerRef: IssuerRef.optional().describe(
        "The cert-manager issuer that signs the sidecar's serving certificate; the operator " +
          "creates a cert-manager Certificate. Needs dnsNames.",
      ),
      dnsNames: z
        .array(z.string().min(1).max(253).regex(HOSTNAME).describe("A DNS name, e.g. dagu.example.com."))
        .min(1)
        .max(32)
        .optional()
        .describe("DNS names of the issued certificate. Required with issuerRef."),
      secretName: objectName(
        "A kubernetes.io/tls Secret: with issuerRef, the name of the Secret cert-manager issues into " +
          "(default `<name>-tls`); without, an existing Secret of your own.",
      ).optional(),
    })
    .describe("HTTPS for the sidecar: a certificate issued by cert-manager, or a TLS Secret of your own."),
  [
    {
      rule: "has(self.issuerRef) || has(self.secretName)",
      message: "spec.tls needs spec.tls.issuerRef (cert-manager) or spec.tls.secretName (an existing TLS Secret)",
      check: (t) => t.issuerRef !== undefined || t.secretName !== undefined,
    },
    {
      rule: "!has(self.issuerRef) || has(self.dnsNames)",
      message: "spec.tls.dnsNames is required when spec.tls.issuerRef is set",
      fieldPath: ".dnsNames",
      reason: "FieldValueRequired",
      check: (t) => t.issuerRef === undefined || t.dnsNames !== undefined,
    },
    {
      rule: "has(self.issuerRef) || !has(self.dnsNames)",
      message: "spec.tls.dnsNames is only used with spec.tls.issuerRef",
      fieldPath: ".dnsNames",
      reason: "FieldValueForbidden",
      check: (t) => t.issuerRef !== undefined || t.dnsNames === undefined,
    },
  ],
);
export type TlsSpec = z.infer<typeof TlsSpec>;

export const LoginSpec = cel(
  z
    .object({
      maxAttempts: z
        .int()
        .min(1)
        .max(1000)
        .default(5)
        .describe(
          "Failed logins of one username from one client address allowed within `window` before that pair " +
            "is locked out for `lockout` (other clients of the same user are not). A username failing 4 times " +
            "this often from all clients together, or an address failing that often across usernames, is " +
            "slowed (a second before each check), never locked.",
        ),
      window: duration("Window in which failed logins are counted.").default("15m"),
      lockout: duration("How long a username and client address pair is refused once `maxAttempts` is reached.").default("15m"),
    })
    .describe("Login throttling, checked before any password hashing (docs/sidecar.md, ADR 0006)."),
  [minDuration("window", "spec.login.window", "1s"), minDuration("lockout", "spec.login.lockout", "1s")],
);
export type LoginSpec = z.infer<typeof LoginSpec>;

const cidr = z
  .string()
  .min(1)
  .max(64)
  .refine(isCidr, "spec.trustedProxies entries must be CIDRs such as 10.0.0.0/8 or fd00::/8")
  .meta({
    description: "An address block in CIDR notation, e.g. 10.0.0.0/8 or 192.168.1.7/32.",
    [CEL_META_KEY]: [
      { rule: "isCIDR(self)", message: "spec.trustedProxies entries must be CIDRs such as 10.0.0.0/8 or fd00::/8" },
    ],
  });

/** A remote node's name: a DNS label (it is a path segment of the sidecar's egress URL, too). */
const REMOTE_NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** http(s), a host, an optional base path; no query, fragment or credentials. */
const REMOTE_NODE_URL = /^https?:\/\/[^/?#@\s]+(\/[^?#\s]*)?$/;

export const RemoteNode = cel(
  z
    .object({
      name: z
        .string()
        .min(1)
        .max(63)
        .regex(REMOTE_NODE_NAME)
        .describe("The node's name, as Dagu's remote_nodes[].name (a DNS label, e.g. team-b)."),
      url: z
        .string()
        .min(1)
        .max(2048)
        .regex(REMOTE_NODE_URL, "spec.remoteNodes[].url must be http(s)://host[:port][/path], without query or credentials")
        .describe(
          "Base URL of the remote Dagu as this Dagu's pod reaches it: the remote's sidecar (its Service), " +
            "e.g. https://dagu-b.team-b.svc:8080, without Dagu's /api path.",
        ),
      apiKeyRef: LocalObjectReference.optional().describe(
        "A DaguApiKey in this namespace whose authRef is the remote's DaguAuth: the sidecar sends its current key " +
          "(a rotated one within about a second), so the remote's sidecar enforces the key's role.",
      ),
      tokenSecretRef: SecretKeySelector.optional().describe(
        "Instead of apiKeyRef: a Secret key holding an API key issued elsewhere (e.g. by the operator of another cluster).",
      ),
      caSecretRef: SecretKeySelector.optional().describe(
        "PEM CA certificates that verify the remote's HTTPS (default: the system's roots).",
      ),
    })
    .describe("A remote Dagu this Dagu manages (Dagu's remote nodes), reached through the sidecar with an issued credential."),
  [
    {
      rule: "has(self.apiKeyRef) != has(self.tokenSecretRef)",
      message: "spec.remoteNodes[] needs exactly one of apiKeyRef (a DaguApiKey) or tokenSecretRef (a Secret)",
      check: (n) => (n.apiKeyRef === undefined) !== (n.tokenSecretRef === undefined),
    },
  ],
);
export type RemoteNode = z.infer<typeof RemoteNode>;

/** Whether a client URL's path is the base path (one trailing slash allowed); an unparsable URL is left to its own rule. */
export function clientUrlPathAgrees(clientUrl: string, basePath: string): boolean {
  let path: string;
  try {
    path = new URL(clientUrl).pathname;
  } catch {
    return true;
  }
  // WHATWG URL reports "/" for an empty path; CEL's getEscapedPath() reports "": both are the root.
  return path === basePath || path === `${basePath}/` || (basePath === "" && path === "");
}

export const DaguAuthSpec = cel(
  z
    .object({
      mode: z
        .enum(AUTH_MODES)
        .default("builtin")
        .describe(
          "builtin: Dagu's login page with users, roles, API keys and webhooks. " +
            "basic: one HTTP Basic user who acts as admin.",
        ),
      builtin: BuiltinSpec.optional().describe(
        "Settings of builtin mode (all optional). Must not be set in basic mode.",
      ),
      basic: BasicSpec.optional().describe("Settings of basic mode. Required in basic mode, refused otherwise."),
      tls: TlsSpec.optional().describe(
        "HTTPS for the sidecar: a certificate issued by cert-manager, or a TLS Secret of your own. " +
          "Without it the sidecar serves plain HTTP (e.g. behind a TLS-terminating ingress).",
      ),
      oidc: OidcSpec.optional().describe(
        "Single sign-on through an OpenID Connect provider (Dagu's auth.oidc): a button on Dagu's login " +
          "page, users created at their first login, roles mapped from the provider's claims. Builtin mode only.",
      ),
      login: LoginSpec.prefault({}),
      trustedProxies: z
        .array(cidr)
        .max(32)
        .optional()
        .describe(
          "Peers (CIDRs) whose X-Forwarded-For header is believed for the client address, e.g. your " +
            "ingress controller. Empty: the peer address is the client address.",
        ),
      remoteNodes: z
        .array(RemoteNode)
        .max(32)
        .optional()
        .meta({
          description:
            "Remote Dagus this one manages (Dagu's remote_nodes): the sidecar sends each one's issued API key " +
            "(docs/remote-nodes.md). Dagu's config names them with api_base_url http://127.0.0.1:<egress>/<name>/api/v1.",
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["name"],
        }),
      basePath: z
        .string()
        .min(2)
        .max(MAX_BASE_PATH_LENGTH)
        .regex(BASE_PATH_PATTERN)
        .refine((v) => basePathProblem(v) === undefined, { error: (issue) => `spec.basePath ${basePathProblem(String(issue.input)) ?? "is invalid"}` })
        .meta({
          description:
            "Dagu's base path (its basePath), e.g. /dagu: Dagu's UI at /dagu/..., its API at /dagu/api/v1. The " +
            "sidecar serves nothing outside it; an injected Dagu gets DAGU_BASE_PATH set to it. No trailing " +
            "slash, no . or .. segment, no api (or mcp, oidc-login, oidc-callback, proxy-login) segment. With " +
            "spec.oidc, the client URL's path must be this. Injected pods pick up a change when recreated.",
          [CEL_META_KEY]: [
            {
              rule: "self.split('/').all(s, s != '.' && s != '..' && !(s.lowerAscii() in ['api', 'mcp', 'oidc-login', 'oidc-callback', 'proxy-login']))",
              message: "spec.basePath must not contain . or .. segments, nor api, mcp, oidc-login, oidc-callback or proxy-login",
            },
          ],
        })
        .optional(),
      sidecar: z
        .object({
          serviceAccountName: objectName(
            "Name of the ServiceAccount the operator creates for the sidecar (default `<name>-sidecar`); " +
              "run the Dagu pod with it.",
          ).optional(),
        })
        .optional()
        .describe("Settings of the sidecar's identity."),
    })
    .describe("Desired authentication of one Dagu server."),
  [
    {
      rule: "self.mode != 'basic' || has(self.basic)",
      message: "spec.basic is required when spec.mode is basic",
      fieldPath: ".basic",
      reason: "FieldValueRequired",
      check: (s) => s.mode !== "basic" || s.basic !== undefined,
    },
    {
      rule: "self.mode != 'builtin' || !has(self.basic)",
      message: "spec.basic must not be set when spec.mode is builtin",
      fieldPath: ".basic",
      reason: "FieldValueForbidden",
      check: (s) => s.mode !== "builtin" || s.basic === undefined,
    },
    {
      rule: "self.mode != 'basic' || !has(self.oidc)",
      message: "spec.oidc needs spec.mode builtin (Dagu's SSO lives under builtin auth)",
      fieldPath: ".oidc",
      reason: "FieldValueForbidden",
      check: (s) => s.mode !== "basic" || s.oidc === undefined,
    },
    {
      // ADR 0020: the callback Dagu's UI and the provider know is <clientUrl>/oidc-callback; the sidecar serves
      // it at <basePath>/oidc-callback. They meet only when the two agree, so a mismatch is refused here.
      rule: "!has(self.oidc) || [(has(self.basePath) ? self.basePath : ''), (has(self.basePath) ? self.basePath : '') + '/'].exists(p, p == url(self.oidc.clientUrl).getEscapedPath())",
      message: "spec.oidc.clientUrl's path must be spec.basePath (none without one): Dagu's SSO callback lives under its base path",
      fieldPath: ".oidc.clientUrl",
      reason: "FieldValueInvalid",
      check: (s) => s.oidc === undefined || clientUrlPathAgrees(s.oidc.clientUrl, s.basePath ?? ""),
    },
    {
      rule: "self.mode != 'basic' || !has(self.builtin)",
      message: "spec.builtin must not be set when spec.mode is basic",
      fieldPath: ".builtin",
      reason: "FieldValueForbidden",
      check: (s) => s.mode !== "basic" || s.builtin === undefined,
    },
  ],
);
export type DaguAuthSpec = z.infer<typeof DaguAuthSpec>;
export type DaguAuthSpecInput = z.input<typeof DaguAuthSpec>;

/** How many SSO users status lists (the count covers all). */
export const MAX_LISTED_SSO_USERS = 500;

export const ProvisionedUserStatus = z
  .object({
    username: z.string().max(64).describe("Dagu username."),
    email: z.string().max(254).optional().describe("Email address at the provider."),
    role: z.string().max(32).describe("Role in force."),
    disabled: z.boolean().optional().describe("True when an admin disabled the user."),
    createdAt: z.string().max(64).describe("First login."),
    pinnedBy: z
      .string()
      .max(64)
      .optional()
      .describe("Username of the DaguUser that shadows this record: its role and disabled state are in force."),
  })
  .describe("A user created by single sign-on.");

const count = (what: string) => z.int().min(0).optional().describe(`Number of ${what} in the credentials.`);

export const DaguAuthStatus = z
  .object({
    ...statusBase,
    credentialsSecretName: z
      .string()
      .max(253)
      .optional()
      .describe("The Secret holding the credentials document the sidecar enforces."),
    credentialsGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("Generation of the credentials document last written (increases on every change)."),
    users: count("users (DaguUsers and the initial admin)"),
    apiKeys: count("API keys"),
    webhooks: count("webhooks"),
    serviceAccountName: z
      .string()
      .max(253)
      .optional()
      .describe("The ServiceAccount the sidecar must run as (it may read the credentials)."),
    tlsSecretName: z.string().max(253).optional().describe("The kubernetes.io/tls Secret the sidecar serves HTTPS with."),
    ssoUsers: count("users created by their first single sign-on (spec.oidc.autoSignup)"),
    provisionedUsers: z
      .array(ProvisionedUserStatus)
      .max(MAX_LISTED_SSO_USERS)
      .optional()
      .describe(
        `The users created by single sign-on (the first ${MAX_LISTED_SSO_USERS}, by username). Pin one's role or ` +
          "disable it with a DaguUser of the same email and sso: true.",
      ),
  })
  .describe("Observed state of the DaguAuth, written by the operator.");
export type DaguAuthStatus = z.infer<typeof DaguAuthStatus>;

export const DaguAuth = resource("DaguAuth", DaguAuthSpec, DaguAuthStatus, { maxLength: DAGU_AUTH_NAME_MAX_LENGTH, message: DAGU_AUTH_NAME_MESSAGE }).describe(
  "DaguAuth protects one Dagu server: the sidecar in front of it enforces the logins, users, API keys " +
    "and webhooks declared for it.",
);
export type DaguAuth = z.infer<typeof DaguAuth>;
