// The sidecar as deployed with a DaguAuth that names a TLS Secret: `dagu-auth sidecar --kubernetes
// --tls-secret`, under the ServiceAccount and Role the operator creates, serves HTTPS with the Secret's
// certificate and serves a renewed one to new connections without a restart.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type PeerCertificate } from "node:tls";
import { X509Certificate } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { adminKubeConfig, serviceAccountKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { createCa, issueCert, type KeyPairPem } from "../../dev/pki.ts";
import { secret, create, waitReady, withOperator } from "../harness/resources.ts";
import { startSidecar } from "../harness/sidecar.ts";

const core = () => adminKubeConfig().makeApiClient(k8s.CoreV1Api);

function tlsSecret(name: string, pair: KeyPairPem): k8s.V1Secret {
  return { metadata: { name }, type: "kubernetes.io/tls", stringData: { "tls.crt": pair.certPem, "tls.key": pair.keyPem } };
}

/** The certificate a new TLS connection to the sidecar is served, as a SHA-256 fingerprint. */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost", minVersion: "TLSv1.2" }, () => {
      const peer: PeerCertificate = socket.getPeerCertificate();
      socket.end();
      resolve(peer.fingerprint256);
    });
    socket.once("error", reject);
  });
}

test("--kubernetes --tls-secret: HTTPS from the Secret, a renewed certificate for new connections", async (t) => {
  const ns = await testNamespace(t, "sct");
  await withOperator(t);
  const ca = await createCa();
  const first = await issueCert(ca, { commonName: "dagu", dnsNames: ["localhost"], ips: ["127.0.0.1"], usage: "server" });
  await core().createNamespacedSecret({ namespace: ns, body: tlsSecret("dagu-serving", first) });
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await create(ns, "daguauths", "DaguAuth", "dagu", {
    builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } },
    tls: { secretName: "dagu-serving" },
  });
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  assert.equal(auth.status?.tlsSecretName, "dagu-serving");

  // The sidecar runs with the operator-made ServiceAccount's token, as in a pod.
  const dir = await mkdtemp(join(tmpdir(), "sidecar-tls-"));
  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, (await serviceAccountKubeConfig(ns, String(auth.status!.serviceAccountName))).exportConfig(), { mode: 0o600 });
  const upstream = createServer((_req, res) => res.end("{}"));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  t.after(() => upstream.close());
  const sidecar = await startSidecar({
    upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    args: ["--kubernetes", "--kubeconfig", kubeconfig, "--namespace", ns, "--auth", "dagu", "--tls-secret", "dagu-serving", "--dagu-api", "v1"],
    wait: "none",
  });
  t.after(() => sidecar.stop());

  const fingerprint = (pair: KeyPairPem) => new X509Certificate(pair.certPem).fingerprint256;
  await eventually("the sidecar serves the Secret's certificate", async () => ((await servedFingerprint(sidecar.port, ca.certPem).catch(() => "")) === fingerprint(first) ? true : undefined), 20_000);
  const ready = await fetch(`https://127.0.0.1:${sidecar.port}/readyz`, { dispatcher: undefined }).catch((err: unknown) => err);
  assert.ok(ready instanceof Error, "an untrusting client is refused (the CA is ours, not the system's)");

  // An open connection keeps working while the certificate is renewed.
  const open = connect({ host: "127.0.0.1", port: sidecar.port, ca: ca.certPem, servername: "localhost" });
  await new Promise<void>((resolve, reject) => open.once("secureConnect", resolve).once("error", reject));
  const renewed = await issueCert(ca, { commonName: "dagu", dnsNames: ["localhost"], ips: ["127.0.0.1"], usage: "server" });
  await core().replaceNamespacedSecret({ name: "dagu-serving", namespace: ns, body: tlsSecret("dagu-serving", renewed) });
  await eventually("new connections get the renewed certificate", async () => ((await servedFingerprint(sidecar.port, ca.certPem)) === fingerprint(renewed) ? true : undefined), 10_000);
  const answer = await new Promise<string>((resolve, reject) => {
    let data = "";
    open.setEncoding("utf8").on("data", (d: string) => (data += d)).once("end", () => resolve(data)).once("error", reject);
    open.end("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  });
  assert.match(answer, /^HTTP\/1\.1 200/, "the connection opened before the renewal still works");
  assert.ok(sidecar.lines().some((l) => l.msg === "TLS certificate reloaded"), "the reload is logged");
});
