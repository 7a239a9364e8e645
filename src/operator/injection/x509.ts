// The few X.509 certificates the injection webhook needs when cert-manager is absent: a CA and a
// serving certificate it signs, ECDSA P-256 with SHA-256, DER written here and signed with node:crypto.
// A small DER writer rather than a certificate library: the shapes are fixed (one subject attribute,
// five extensions), the library alternatives bring a dependency-injection container and a dozen
// packages into the operator's image, and the result is checked by Go's strict parser (the real
// kube-apiserver verifies every serving certificate in the integration tests) and by node:crypto's
// X509Certificate in the unit tests.
import { createHash, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject, createPrivateKey } from "node:crypto";
import { isIP } from "node:net";

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...items: Buffer[]) => tlv(0x30, ...items);
const set = (...items: Buffer[]) => tlv(0x31, ...items);
const octets = (b: Buffer) => tlv(0x04, b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
/** A BIT STRING with no unused bits (keys, signatures, nested DER). */
const bits = (b: Buffer) => tlv(0x03, Buffer.from([0]), b);

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** A positive INTEGER in its minimal encoding. */
function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1]! < 0x80) i++;
  const body = b.subarray(i);
  return tlv(0x02, body[0]! >= 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5), whole seconds. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:T]/g, "");
  const year = d.getUTCFullYear();
  return year < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), "ascii")) : tlv(0x18, Buffer.from(iso, "ascii"));
}

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
};

const name = (commonName: string) => seq(set(seq(oid(OID.commonName), tlv(0x0c, Buffer.from(commonName, "utf8")))));
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

// KeyUsage bits, first byte of the BIT STRING after the unused-bits count (bit 0 is the high bit):
// digitalSignature (0) -> 0x80 with 7 unused bits; keyCertSign (5) and cRLSign (6) -> 0x06 with 1.
const KEY_USAGE_LEAF = tlv(0x03, Buffer.from([7, 0x80]));
const KEY_USAGE_CA = tlv(0x03, Buffer.from([1, 0x86]));

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  /** Signs the certificate; absent: self-signed (a CA). */
  issuer?: KeyPair;
  /** A CA (basicConstraints cA, keyCertSign) or a TLS server certificate. */
  ca: boolean;
  /** Subject alternative names of a server certificate: DNS names and IP addresses. */
  hosts?: readonly string[];
}

function keyId(spki: Buffer): Buffer {
  return createHash("sha256").update(spki).digest().subarray(0, 20);
}

/** A new P-256 key and a certificate for it. */
export function issueCertificate(options: IssueOptions): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  let issuerName = name(options.commonName);
  let signer: KeyObject = privateKey;
  let authorityKeyId = keyId(spki);
  if (options.issuer) {
    const issuerCert = new X509Certificate(options.issuer.certPem);
    issuerName = subjectOf(issuerCert);
    signer = createPrivateKey(options.issuer.keyPem);
    authorityKeyId = keyId(issuerCert.publicKey.export({ type: "spki", format: "der" }));
  }
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40; // positive, 16 bytes, never a leading zero
  const extensions = [
    extension(OID.basicConstraints, true, options.ca ? seq(bool(true), integer(Buffer.from([0]))) : seq()),
    extension(OID.keyUsage, true, options.ca ? KEY_USAGE_CA : KEY_USAGE_LEAF),
    extension(OID.subjectKeyIdentifier, false, octets(keyId(spki))),
    extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, authorityKeyId))),
  ];
  if (!options.ca) {
    extensions.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))));
    const names = (options.hosts ?? []).map((h) => (isIP(h) ? tlv(0x87, ipBytes(h)) : tlv(0x82, Buffer.from(h, "ascii"))));
    if (names.length > 0) extensions.push(extension(OID.subjectAltName, false, seq(...names)));
  }
  const algorithm = seq(oid(OID.ecdsaWithSha256));
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))),
    integer(serial),
    algorithm,
    issuerName,
    seq(time(options.notBefore), time(options.notAfter)),
    name(options.commonName),
    spki,
    tlv(0xa3, seq(...extensions)),
  );
  const der = seq(tbs, algorithm, bits(sign("sha256", tbs, signer)));
  return { certPem: pem("CERTIFICATE", der), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

/** The issuer's subject, re-encoded: ours carry one common name. */
function subjectOf(cert: X509Certificate): Buffer {
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1];
  if (cn === undefined) throw new Error("issuer certificate has no common name");
  return name(cn);
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split(".").map(Number));
  if (ip.includes(".")) throw new Error(`IPv6 address with an embedded IPv4 part is not supported: ${ip}`);
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(":").map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function pem(label: string, der: Buffer): string {
  const body = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Every certificate of a PEM bundle, in order. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g)?.map((c) => (c.endsWith("\n") ? c : `${c}\n`)) ?? [];
}
