// The webhook's self-managed certificates: the DER the operator writes is a certificate node:crypto
// reads, verifies and serves TLS with; the rotation plan, stepped through years of a clock, always
// serves a certificate that every caBundle the API servers may still hold trusts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createServer, connect } from "node:tls";
import type { AddressInfo } from "node:net";
import { BACKDATE_MS, planCertificates, type CertificateMaterial, type CertificatePolicy } from "../../src/operator/injection/certificate-plan.ts";
import { issueCertificate, splitPem } from "../../src/operator/injection/x509.ts";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

test("a CA and a serving certificate it signs: read, verified and served by node:crypto and node:tls", async () => {
  const now = Date.now();
  const ca = issueCertificate({ commonName: "test-ca", ca: true, notBefore: new Date(now - 60_000), notAfter: new Date(now + 365 * DAY) });
  const leaf = issueCertificate({ commonName: "webhook", ca: false, issuer: ca, hosts: ["svc.ns.svc", "127.0.0.1", "::1"], notBefore: new Date(now - 60_000), notAfter: new Date(now + DAY) });
  const caX = new X509Certificate(ca.certPem);
  const leafX = new X509Certificate(leaf.certPem);
  assert.equal(caX.ca, true);
  assert.equal(leafX.ca, false);
  assert.ok(leafX.checkIssued(caX) && leafX.verify(caX.publicKey), "signed by the CA");
  assert.ok(caX.verify(caX.publicKey), "the CA is self-signed");
  assert.equal(leafX.subjectAltName, "DNS:svc.ns.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
  assert.deepEqual(leafX.keyUsage, ["1.3.6.1.5.5.7.3.1"], "server auth only");
  assert.equal(leafX.checkHost("svc.ns.svc"), "svc.ns.svc");
  assert.equal(leafX.checkIP("127.0.0.1"), "127.0.0.1");
  // A year past 2049 is written as GeneralizedTime and read back the same.
  const late = issueCertificate({ commonName: "late", ca: true, notBefore: new Date(now), notAfter: new Date(Date.UTC(2061, 5, 1)) });
  assert.equal(new Date(new X509Certificate(late.certPem).validTo).getUTCFullYear(), 2061);

  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (s) => s.end("ok"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const port = (server.address() as AddressInfo).port;
    const verified = await new Promise<boolean>((resolve, reject) => {
      const s = connect({ port, host: "127.0.0.1", ca: ca.certPem, servername: "svc.ns.svc" }, () => {
        resolve(s.authorized);
        s.end();
      });
      s.on("error", reject);
    });
    assert.ok(verified, "a TLS client trusting only the CA accepts the server");
    const other = issueCertificate({ commonName: "other", ca: true, notBefore: new Date(now - 60_000), notAfter: new Date(now + DAY) });
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect({ port, host: "127.0.0.1", ca: other.certPem, servername: "svc.ns.svc" }, () => resolve(s));
        s.on("error", reject);
      }),
      /certificate/,
      "a client trusting another CA refuses it",
    );
  } finally {
    server.close();
  }
});

const policy: CertificatePolicy = { hosts: ["webhook.ns.svc", "127.0.0.1"], caValidityMs: 30 * DAY, certValidityMs: 9 * DAY, propagationMs: 2 * HOUR };

function trusts(bundle: string[], certPem: string): boolean {
  const cert = new X509Certificate(certPem);
  return bundle.some((pem) => {
    const ca = new X509Certificate(pem);
    return cert.checkIssued(ca) && cert.verify(ca.publicKey);
  });
}

test("stepped through 200 days: every API server's bundle trusts every replica's certificate, whichever lags", () => {
  const t0 = Date.UTC(2030, 0, 1);
  let material: CertificateMaterial | undefined;
  const published: { at: number; bundle: string[] }[] = [];
  const served: { at: number; cert: string }[] = [];
  const cas = new Set<string>();
  const certs = new Set<string>();
  let maxBundle = 0;
  // Plans run at irregular times (events, timers): every 5 hours, and at each plan's own nextAt.
  let t = t0;
  while (t < t0 + 200 * DAY) {
    const plan = planCertificates(material, new Date(t), policy);
    assert.ok(plan.nextAt.getTime() > t, "the next plan is in the future");
    material = plan.material;
    if (published.at(-1)?.bundle.join("") !== material.caBundle.join("")) published.push({ at: t, bundle: material.caBundle });
    const cert = new X509Certificate(material.cert);
    assert.ok(Date.parse(cert.validFrom) <= t && t < Date.parse(cert.validTo), `the served certificate is valid at day ${(t - t0) / DAY}`);
    assert.equal(cert.checkHost("webhook.ns.svc"), "webhook.ns.svc");
    // Every API server holds a bundle published at most propagationMs ago (or the latest older one).
    const window = published.filter((p, i) => p.at >= t - policy.propagationMs || (published[i + 1]?.at ?? Infinity) > t - policy.propagationMs);
    for (const p of window) assert.ok(trusts(p.bundle, material.cert), `day ${((t - t0) / DAY).toFixed(2)}: the bundle published at day ${((p.at - t0) / DAY).toFixed(2)} trusts the served certificate`);
    // A replica may still serve a certificate stored up to propagationMs ago: the new bundle trusts it too.
    if (served.at(-1)?.cert !== material.cert) served.push({ at: t, cert: material.cert });
    const lagging = served.filter((s, i) => s.at >= t - policy.propagationMs || (served[i + 1]?.at ?? Infinity) > t - policy.propagationMs);
    for (const s of lagging) assert.ok(trusts(material.caBundle, s.cert), `day ${((t - t0) / DAY).toFixed(2)}: the bundle trusts the certificate stored at day ${((s.at - t0) / DAY).toFixed(2)}`);
    material.caBundle.forEach((c) => cas.add(c));
    certs.add(material.cert);
    maxBundle = Math.max(maxBundle, material.caBundle.length);
    t = Math.min(t + 5 * HOUR, plan.nextAt.getTime());
  }
  assert.ok(cas.size >= 9, `the CA rotated many times (${cas.size} CAs)`);
  assert.ok(certs.size >= 30, `the serving certificate was renewed many times (${certs.size})`);
  assert.equal(maxBundle, 2, "at most the current CA and its successor are trusted at once");
  assert.equal(splitPem(material!.caBundle.join("")).length, material!.caBundle.length);
});

test("a plan made twice at the same moment changes nothing the second time", () => {
  const now = new Date(Date.UTC(2030, 0, 1));
  const first = planCertificates(undefined, now, policy);
  assert.deepEqual(first.changes, ["new CA", "new serving certificate (none usable)"]);
  const second = planCertificates(first.material, now, policy);
  assert.deepEqual(second.changes, []);
  assert.deepEqual(second.material, first.material);
});

test("unusable stored material is replaced at once: unreadable, a key of another CA, other hosts, expired", () => {
  const now = new Date(Date.UTC(2030, 0, 1));
  const good = planCertificates(undefined, now, policy).material;
  const other = planCertificates(undefined, now, policy).material;
  const cases: [string, CertificateMaterial, Date, RegExp][] = [
    ["garbage", { ...good, caBundle: ["not a certificate"] }, now, /unreadable/],
    ["the CA key of another CA", { ...good, caKey: other.caKey }, now, /unreadable/],
    ["a serving key that does not match", { ...good, key: other.key }, now, /new serving certificate \(none usable\)/],
    ["a certificate for other hosts", good, now, /new serving certificate \(none usable\)/],
    ["an expired certificate", good, new Date(now.getTime() + 10 * DAY), /new serving certificate/],
  ];
  for (const [what, material, at, change] of cases) {
    const p = planCertificates(material, at, what === "a certificate for other hosts" ? { ...policy, hosts: ["elsewhere.svc"] } : policy);
    assert.match(p.changes.join("; "), change, what);
    assert.ok(trusts(p.material.caBundle, p.material.cert), `${what}: the result is consistent`);
  }
});

test("certificates are backdated a little and never outlive their CA", () => {
  const now = new Date(Date.UTC(2030, 0, 1));
  const p = planCertificates(undefined, now, { ...policy, caValidityMs: 5 * DAY, certValidityMs: 9 * DAY });
  const cert = new X509Certificate(p.material.cert);
  const ca = new X509Certificate(p.material.caBundle[0]!);
  assert.equal(Date.parse(cert.validFrom), now.getTime() - BACKDATE_MS);
  assert.ok(Date.parse(cert.validTo) <= Date.parse(ca.validTo));
});

test("short lifetimes (as the integration test uses) renew at two thirds of the life from issue, not of the backdated span", () => {
  const short: CertificatePolicy = { hosts: ["127.0.0.1"], caValidityMs: 30_000, certValidityMs: 6_000, propagationMs: 2_000 };
  const t = Date.UTC(2030, 0, 1);
  const first = planCertificates(undefined, new Date(t), short);
  assert.deepEqual(planCertificates(first.material, new Date(t + 3_900), short).changes, []);
  assert.equal(first.nextAt.getTime(), t + 4_000);
  assert.deepEqual(planCertificates(first.material, new Date(t + 4_000), short).changes, ["serving certificate renewed"]);
});
