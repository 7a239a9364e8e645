// A Secret's `data` decoded (base64 -> UTF-8): the one decoder of the operator, the sidecar's Kubernetes
// sources, the benches and the tests. A value that is absent stays absent (never the empty string).

/** Anything with a Secret's `data`: the project's KubeObject or client-node's V1Secret. */
export type SecretLike = object;

function encodedData(secret: SecretLike | undefined): Record<string, string> {
  const data = secret !== undefined && "data" in secret ? secret.data : undefined;
  return typeof data === "object" && data !== null ? (data as Record<string, string>) : {};
}

/** The decoded value of one key; undefined when the Secret or the key is absent. */
export function secretValue(secret: SecretLike | undefined, key: string): string | undefined {
  const encoded = encodedData(secret)[key];
  return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
}

/** Every decoded value of a Secret's data. */
export function secretData(secret: SecretLike | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(encodedData(secret)).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}
