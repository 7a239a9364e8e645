// The OpenID provider as a client sees it (openid-client v6): discovery with the issuer checked, the
// ID token algorithms narrowed to an allowlist, an optional extra CA, and bounded timeouts. The sidecar
// logs people in with it; the operator uses the same discovery to report whether the provider answers.
import { rootCertificates } from "node:tls";
import * as client from "openid-client";
import { Agent, fetch as undiciFetch } from "undici";

/** Asymmetric signatures only: never `none`, never HS* (a client secret known to others would sign). */
export const ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"] as const;
export const PROVIDER_TIMEOUT_SECONDS = 10;
/** Clock difference tolerated on the ID token's exp, iat and nbf: the sidecar's own tokens allow the same. */
export const ID_TOKEN_CLOCK_TOLERANCE_SECONDS = 5;

export interface ProviderOptions {
  issuer: string;
  clientId: string;
  clientSecret?: string | undefined;
  /** PEM certificates trusted besides the system's. */
  caBundle?: string | undefined;
  timeoutSeconds?: number;
}

/** A fetch that trusts the system's CAs plus `caBundle` (undici's own pool; global fetch is left alone). */
function fetchWithCa(caBundle: string): client.CustomFetch {
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, caBundle] } });
  return (url, options) => undiciFetch(url, { ...options, dispatcher }) as unknown as Promise<Response>;
}

/**
 * Discovers the provider and returns the client's configuration. The metadata's ID token algorithms are
 * narrowed to ID_TOKEN_ALGORITHMS (openid-client then refuses any other `alg`); a provider that offers
 * none of them is refused here.
 */
export async function discoverProvider(options: ProviderOptions): Promise<client.Configuration> {
  const issuer = new URL(options.issuer);
  const insecure = issuer.protocol === "http:"; // loopback only: the API refuses other http URLs
  const customFetch = options.caBundle ? fetchWithCa(options.caBundle) : undefined;
  const timeout = options.timeoutSeconds ?? PROVIDER_TIMEOUT_SECONDS;
  const auth = options.clientSecret ? client.ClientSecretPost(options.clientSecret) : client.None();
  const discovered = await client.discovery(issuer, options.clientId, options.clientSecret, auth, {
    timeout,
    ...(customFetch ? { [client.customFetch]: customFetch } : {}),
    ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
  });
  // A plain copy: the returned object carries helper methods that are not metadata.
  const metadata = JSON.parse(JSON.stringify(discovered.serverMetadata())) as client.ServerMetadata;
  const offered = metadata.id_token_signing_alg_values_supported ?? ["RS256"];
  const algorithms = offered.filter((alg) => (ID_TOKEN_ALGORITHMS as readonly string[]).includes(alg));
  if (algorithms.length === 0) throw new Error(`the provider signs ID tokens only with ${offered.join(", ")}; an asymmetric algorithm is required (RS256, ES256, ...)`);
  if (!metadata.authorization_endpoint || !metadata.token_endpoint || !metadata.jwks_uri) {
    throw new Error("the provider's discovery document lacks authorization_endpoint, token_endpoint or jwks_uri");
  }
  const clientMetadata = { ...(options.clientSecret ? { client_secret: options.clientSecret } : {}), [client.clockTolerance]: ID_TOKEN_CLOCK_TOLERANCE_SECONDS };
  const config = new client.Configuration({ ...metadata, id_token_signing_alg_values_supported: algorithms }, options.clientId, clientMetadata, auth);
  config.timeout = timeout;
  if (customFetch) config[client.customFetch] = customFetch;
  if (insecure) client.allowInsecureRequests(config);
  return config;
}

/**
 * A one-line reason for logs and status: openid-client's message plus its cause's code (ECONNREFUSED,
 * an HTTP status). Never the response body, which may echo what was sent.
 */
export function describeProviderError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: unknown; message?: unknown; status?: unknown } | undefined;
  const detail =
    cause && typeof cause === "object"
      ? typeof cause.code === "string"
        ? cause.code
        : typeof cause.status === "number"
          ? `HTTP ${cause.status}`
          : typeof cause.message === "string"
            ? cause.message
            : undefined
      : undefined;
  const status = (error as { status?: unknown }).status;
  return [error.message, typeof status === "number" ? `HTTP ${status}` : undefined, detail].filter(Boolean).join(": ").slice(0, 300);
}
