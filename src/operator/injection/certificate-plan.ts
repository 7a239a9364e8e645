// The webhook's self-managed certificates as a pure function of what is stored and the time: a CA
// bundle (the caBundle the API server trusts, newest CA first), the newest CA's key, and the serving
// certificate. Rotation never breaks an admission, because a certificate is only ever served once
// every CA that could have signed it has been in the published bundle for `propagationMs`:
//   1. a CA past two thirds of its life gets a successor, which joins the bundle first;
//   2. the serving certificate is re-issued by the successor only after that propagation delay
//      (the API servers have the bundle that trusts it), or at two thirds of its own life;
//   3. an older CA leaves the bundle once the serving certificate has been signed by the newest one
//      for the propagation delay (every replica serves the new one by then), or when it expires.
// The runtime (webhook-tls.ts) stores the result and publishes the bundle; the unit tests step the
// clock through years of rotations and check that the certificate served is always trusted.
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { issueCertificate, splitPem } from "./x509.ts";

export interface CertificateMaterial {
  /** The trusted CAs (PEM, newest first): the webhook configuration's caBundle. */
  caBundle: string[];
  /** Private key of caBundle[0]. */
  caKey: string;
  /** The serving certificate and its key. */
  cert: string;
  key: string;
}

export interface CertificatePolicy {
  /** DNS names and IP addresses of the serving certificate (the Service's names, or 127.0.0.1 in tests). */
  hosts: readonly string[];
  caValidityMs: number;
  certValidityMs: number;
  /** How long a new bundle takes to reach every API server (and new serving material every replica). */
  propagationMs: number;
}

export const DEFAULT_POLICY: Omit<CertificatePolicy, "hosts"> = {
  caValidityMs: 5 * 365 * 24 * 3600_000,
  certValidityMs: 90 * 24 * 3600_000,
  propagationMs: 60_000,
};

/** Certificates are valid from a little before their issue: clocks of the API servers may lag ours. */
export const BACKDATE_MS = 60_000;
const CA_NAME = "dagu-auth-webhook-ca";
const CERT_NAME = "dagu-auth-webhook";

export interface Plan {
  material: CertificateMaterial;
  /** What changed, for the log; empty when nothing did. */
  changes: string[];
  /** When the plan should be made again (the next renewal, propagation or expiry). */
  nextAt: Date;
}

interface Parsed {
  cas: X509Certificate[];
  cert: X509Certificate | undefined;
}

function parse(material: CertificateMaterial | undefined): Parsed | undefined {
  if (!material) return undefined;
  try {
    const cas = material.caBundle.map((pem) => new X509Certificate(pem));
    const newest = cas[0];
    // The key must belong to the newest CA, or nothing it signs would be trusted.
    if (!newest || !samePublicKey(newest, material.caKey)) return undefined;
    let cert: X509Certificate | undefined;
    try {
      cert = new X509Certificate(material.cert);
      if (!samePublicKey(cert, material.key)) cert = undefined;
    } catch {
      cert = undefined;
    }
    return { cas, cert };
  } catch {
    return undefined;
  }
}

function samePublicKey(cert: X509Certificate, keyPem: string): boolean {
  try {
    const a = cert.publicKey.export({ type: "spki", format: "der" });
    const b = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
    return a.equals(b);
  } catch {
    return false;
  }
}

const from = (c: X509Certificate) => Date.parse(c.validFrom);
const to = (c: X509Certificate) => Date.parse(c.validTo);
/** When a certificate was made (it is backdated by BACKDATE_MS). */
const issuedAt = (c: X509Certificate) => from(c) + BACKDATE_MS;
/** Two thirds of its life from its issue, as cert-manager renews by default. */
const renewAt = (c: X509Certificate) => issuedAt(c) + ((to(c) - issuedAt(c)) * 2) / 3;

function sameHosts(cert: X509Certificate, hosts: readonly string[]): boolean {
  const san = (cert.subjectAltName ?? "")
    .split(", ")
    .filter((s) => s !== "")
    .map((s) => s.replace(/^(DNS|IP Address):/, ""));
  const normalize = (h: string) => (h.includes(":") ? new URL(`http://[${h}]`).hostname.slice(1, -1) : h);
  const want = new Set(hosts.map(normalize));
  return san.length === want.size && san.every((s) => want.has(normalize(s)));
}

export function planCertificates(current: CertificateMaterial | undefined, now: Date, policy: CertificatePolicy): Plan {
  const t = now.getTime();
  const changes: string[] = [];
  const parsed = parse(current);
  if (current && !parsed) changes.push("stored certificates unreadable: starting over");
  let bundle = parsed?.cas.map((c, i) => ({ x: c, pem: current!.caBundle[i]! })) ?? [];
  let caKey = parsed ? current!.caKey : "";
  let cert = parsed?.cert;
  let certPem = parsed?.cert ? current!.cert : "";
  let keyPem = parsed?.cert ? current!.key : "";

  // Expired CAs help nobody.
  const live = bundle.filter((c) => to(c.x) > t);
  if (live.length !== bundle.length) changes.push(`dropped ${bundle.length - live.length} expired CA(s)`);
  if (live[0] !== bundle[0]) caKey = "";
  bundle = live;

  // 1. A successor CA when there is none or the newest is past two thirds of its life.
  const newest = bundle[0];
  if (!newest || !caKey || t >= renewAt(newest.x)) {
    const ca = issueCertificate({ commonName: CA_NAME, ca: true, notBefore: new Date(t - BACKDATE_MS), notAfter: new Date(t + policy.caValidityMs) });
    bundle = [{ x: new X509Certificate(ca.certPem), pem: ca.certPem }, ...bundle];
    caKey = ca.keyPem;
    changes.push(newest ? "new CA added to the bundle (the current one is past two thirds of its life)" : "new CA");
  }
  const signer = bundle[0]!;
  const trusted = (c: X509Certificate) => bundle.some((ca) => c.checkIssued(ca.x) && c.verify(ca.x.publicKey));

  // 2. The serving certificate. One that the bundle does not trust, that is expired or that names other
  //    hosts is replaced at once: it cannot serve anyway. A sound one moves to a new CA only once that CA
  //    has propagated.
  const signerPropagated = t >= issuedAt(signer.x) + policy.propagationMs || bundle.length === 1;
  const unusable = !cert || to(cert) <= t || !trusted(cert) || !sameHosts(cert, policy.hosts);
  const due = cert !== undefined && (t >= renewAt(cert) || !cert.checkIssued(signer.x));
  if (unusable || (due && signerPropagated)) {
    const notAfter = Math.min(t + policy.certValidityMs, to(signer.x));
    const issued = issueCertificate({ commonName: CERT_NAME, ca: false, hosts: policy.hosts, notBefore: new Date(t - BACKDATE_MS), notAfter: new Date(notAfter), issuer: { certPem: signer.pem, keyPem: caKey } });
    certPem = issued.certPem;
    keyPem = issued.keyPem;
    cert = new X509Certificate(certPem);
    changes.push(unusable ? "new serving certificate (none usable)" : "serving certificate renewed");
  }

  // 3. Older CAs leave once the serving certificate from the newest one has been out long enough.
  if (bundle.length > 1 && cert!.checkIssued(signer.x) && t >= issuedAt(cert!) + policy.propagationMs) {
    changes.push(`dropped ${bundle.length - 1} older CA(s) from the bundle`);
    bundle = [signer];
  }

  const events = [renewAt(signer.x), renewAt(cert!), ...bundle.slice(1).map((c) => to(c.x))];
  if (bundle.length > 1) events.push(cert!.checkIssued(signer.x) ? issuedAt(cert!) + policy.propagationMs : issuedAt(signer.x) + policy.propagationMs);
  const nextAt = new Date(Math.max(t + 1000, Math.min(...events.filter((e) => e > t))));
  const material = { caBundle: bundle.map((c) => c.pem), caKey, cert: certPem, key: keyPem };
  return { material, changes, nextAt };
}

/** The caBundle as one PEM text (what the webhook configuration carries, base64-encoded). */
export function bundleText(material: Pick<CertificateMaterial, "caBundle">): string {
  return material.caBundle.join("");
}

export function materialFromBundle(caBundleText: string, caKey: string, cert: string, key: string): CertificateMaterial {
  return { caBundle: splitPem(caBundleText), caKey, cert, key };
}
