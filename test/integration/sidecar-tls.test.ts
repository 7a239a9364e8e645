// HTTPS from files (Dagu's DAGU_CERT_FILE / DAGU_KEY_FILE), reloaded without dropping connections:
// new connections get the new certificate, an open keep-alive connection keeps working on the old one;
// a broken pair is refused and the previous one kept; TLS below 1.2 is refused.
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tcpConnect } from "node:net";
import { connect, type TLSSocket } from "node:tls";
import { after, before, test } from "node:test";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import { createCa, issueCert, type Ca, type KeyPairPem } from "../../dev/pki.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

let dagu: DaguInstance;
let dir: string;
let ca: Ca;
let certA: KeyPairPem;
let certB: KeyPairPem;
let sidecar: SidecarInstance;
const HEADERS_TIMEOUT_S = 3;
const certFile = () => join(dir, "tls.crt");
const keyFile = () => join(dir, "tls.key");

async function install(pair: KeyPairPem): Promise<void> {
  // Like a Kubernetes Secret volume update: each file replaced atomically.
  await writeFile(`${keyFile()}.new`, pair.keyPem);
  await writeFile(`${certFile()}.new`, pair.certPem);
  await rename(`${keyFile()}.new`, keyFile());
  await rename(`${certFile()}.new`, certFile());
}

function open(options: { maxVersion?: "TLSv1.1" | "TLSv1.2" | "TLSv1.3" } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: sidecar.port, ca: ca.certPem, servername: "localhost", minVersion: "TLSv1", ...options }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/** One HTTP/1.1 keep-alive request on an open TLS socket. */
function get(socket: TLSSocket, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let data = "";
    const onData = (chunk: Buffer) => {
      data += chunk.toString("latin1");
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(data.slice(0, end))?.[1] ?? 0);
      if (data.length >= end + 4 + length) {
        socket.off("data", onData);
        resolve(Number(data.split(" ")[1]));
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  });
}

const commonName = (socket: TLSSocket) => socket.getPeerCertificate().subject.CN;

before(async () => {
  dagu = await startDagu();
  dir = await mkdtemp(join(tmpdir(), "sidecar-tls-"));
  ca = await createCa();
  certA = await issueCert(ca, { commonName: "sidecar-a", dnsNames: ["localhost"], ips: ["127.0.0.1"], usage: "server" });
  certB = await issueCert(ca, { commonName: "sidecar-b", dnsNames: ["localhost"], ips: ["127.0.0.1"], usage: "server" });
  await install(certA);
  const built = await buildCredentials({ users: [{ username: "ann", password: "ann-password-1", role: "viewer" }] });
  await writeFile(join(dir, "credentials.json"), JSON.stringify(built.credentials));
  sidecar = await startSidecar({
    upstream: dagu.url,
    args: ["--credentials-file", join(dir, "credentials.json"), "--headers-timeout", String(HEADERS_TIMEOUT_S)],
    env: { PATH: process.env.PATH ?? "", DAGU_CERT_FILE: certFile(), DAGU_KEY_FILE: keyFile() },
    wait: "none",
  });
  await eventually("the sidecar serves HTTPS", async () => {
    const socket = await open();
    const status = await get(socket, "/readyz");
    socket.destroy();
    return status === 200;
  }, 20_000, 100);
});

after(async () => {
  await sidecar?.stop();
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("a new certificate is served to new connections; an open connection keeps working", async () => {
  const old = await open();
  assert.equal(commonName(old), "sidecar-a");
  assert.equal(await get(old, "/healthz"), 200);

  const t0 = Date.now();
  await install(certB);
  await eventually("new connections see certificate b", async () => {
    const fresh = await open();
    const cn = commonName(fresh);
    fresh.destroy();
    return cn === "sidecar-b";
  }, 10_000, 50);
  const reloadMs = Date.now() - t0;
  assert.ok(reloadMs < 3000, `reloaded after ${reloadMs} ms`);

  assert.equal(await get(old, "/healthz"), 200, "the open connection still answers");
  assert.equal(commonName(old), "sidecar-a");
  old.destroy();
  assert.match(sidecar.output(), /TLS certificate reloaded/);
});

test("a key that does not match the certificate is refused and the previous pair kept", async () => {
  await install({ certPem: certA.certPem, keyPem: certB.keyPem });
  await eventually("the refusal is logged", async () => sidecar.output().includes("TLS certificate not reloaded"), 10_000, 50);
  const socket = await open();
  assert.equal(commonName(socket), "sidecar-b");
  assert.equal(await get(socket, "/healthz"), 200);
  socket.destroy();
});

test("TLS 1.1 is refused; TLS 1.2 and 1.3 are served", async () => {
  await assert.rejects(open({ maxVersion: "TLSv1.1" }));
  for (const maxVersion of ["TLSv1.2", "TLSv1.3"] as const) {
    const socket = await open({ maxVersion });
    assert.equal(socket.getProtocol(), maxVersion);
    socket.destroy();
  }
});

test("a client that never completes its TLS handshake is closed after the headers timeout (Node's own: 120 s)", async () => {
  const t0 = Date.now();
  const socket = tcpConnect({ host: "127.0.0.1", port: sidecar.port });
  socket.on("error", () => socket.destroy());
  socket.resume();
  socket.once("connect", () => socket.write(Buffer.from([0x16, 0x03, 0x01]))); // the first bytes of a ClientHello, then nothing
  const limit = (HEADERS_TIMEOUT_S + 5) * 1000;
  await Promise.race([new Promise((resolve) => socket.once("close", resolve)), new Promise((resolve) => setTimeout(resolve, limit))]);
  socket.destroy();
  const took = Date.now() - t0;
  assert.ok(took >= HEADERS_TIMEOUT_S * 1000 - 200 && took < (HEADERS_TIMEOUT_S + 3) * 1000, `closed after ${took} ms`);
});
