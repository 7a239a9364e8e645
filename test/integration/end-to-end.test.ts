// The whole product on real parts: resources applied to the real API server, the
// operator (under its own RBAC) materializing them, the sidecar in --kubernetes
// mode under the ServiceAccount the operator created for it, and a real Dagu
// behind it with auth off. What a user does: log in, call the API with a key,
// fire a webhook, change a password in Git and see it enforced.
import { createHmac } from "node:crypto";
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { serviceAccountKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { builtinSetup, kc, secretValue, setSecret, waitReady, withOperator } from "../harness/resources.ts";
import { startDagu } from "../harness/dagu.ts";
import { startSidecar } from "../harness/sidecar.ts";

async function sidecarKubeconfigFile(namespace: string, serviceAccount: string): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), "sidecar-kc-")), "kubeconfig");
  await writeFile(file, (await serviceAccountKubeConfig(namespace, serviceAccount)).exportConfig(), { mode: 0o600 });
  return file;
}

test("applied resources are enforced by the sidecar in front of a real Dagu", async (t) => {
  const ns = await testNamespace(t, "e2e");
  await withOperator(t);
  await builtinSetup(ns);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  await waitReady(ns, "daguapikeys", "ci");
  const dagu = await startDagu();
  t.after(() => dagu.stop());
  const kubeconfig = await sidecarKubeconfigFile(ns, String(auth.status!.serviceAccountName));
  const sidecar = await startSidecar({ upstream: dagu.url, args: ["--kubernetes", "--namespace", ns, "--auth", "dagu", "--kubeconfig", kubeconfig] });
  t.after(() => sidecar.stop());
  const api = `${sidecar.url}/api/v1`;

  const login = async (username: string, password: string) => fetch(`${api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) });
  // The initial admin and a developer log in; a wrong password does not.
  const adminLogin = await login("admin", "admin-password-1");
  assert.equal(adminLogin.status, 200);
  const { token } = (await adminLogin.json()) as { token: string };
  const me = await fetch(`${api}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(me.status, 200);
  assert.equal(((await me.json()) as { user: { role: string } }).user.role, "admin");
  assert.equal((await login("alice", "wrong-password")).status, 401);
  const aliceLogin = await login("alice", "alice-password-1");
  assert.equal(aliceLogin.status, 200);
  const aliceToken = ((await aliceLogin.json()) as { token: string }).token;

  // Dagu answers through the sidecar; without credentials it is refused.
  assert.equal((await fetch(`${api}/dags`)).status, 401);
  const dags = await fetch(`${api}/dags`, { headers: { authorization: `Bearer ${aliceToken}` } });
  assert.equal(dags.status, 200);
  assert.match(await dags.text(), /hello/);

  // The generated API key (operator role) may start a DAG but not manage users.
  const apiKey = await secretValue(ns, "ci-api-key", "apiKey");
  const started = await fetch(`${api}/dags/hello/start`, { method: "POST", headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: "{}" });
  assert.equal(started.status, 200, await started.clone().text());
  assert.equal((await fetch(`${api}/users`, { headers: { authorization: `Bearer ${apiKey}` } })).status, 403);

  // The DaguWebhook's token and HMAC secret, as the operator wrote them for the sender, trigger a real run:
  // DaguWebhook -> operator -> credentials Secret -> sidecar -> Dagu.
  const hookToken = await secretValue(ns, "hello-webhook", "token");
  const hookSecret = await secretValue(ns, "hello-webhook", "hmacSecret");
  const body = JSON.stringify({ dagRunId: "e2e-webhook-1", payload: { from: "end-to-end" } });
  const signature = `sha256=${createHmac("sha256", hookSecret).update(body).digest("hex")}`;
  const unsigned = await fetch(`${api}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${hookToken}`, "content-type": "application/json" }, body });
  assert.equal(unsigned.status, 401, "strict HMAC: the token alone is not enough");
  await unsigned.arrayBuffer();
  const fired = await fetch(`${api}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${hookToken}`, "x-dagu-signature": signature, "content-type": "application/json" }, body });
  assert.equal(fired.status, 200, await fired.clone().text());
  assert.deepEqual(await fired.json(), { dagRunId: "e2e-webhook-1", dagName: "hello" });
  // The run as Dagu itself reports it, asked directly (not through the sidecar).
  const daguApi = api.slice(sidecar.url.length);
  const run = await eventually("the webhook's run in Dagu", async () => {
    const r = await fetch(`${dagu.url}${daguApi}/dag-runs/hello/e2e-webhook-1`);
    return r.status === 200 ? ((await r.json()) as { dagRunDetails: { params?: string } }).dagRunDetails : undefined;
  }, 30_000, 100);
  assert.match(run.params ?? "", /WEBHOOK_PAYLOAD=.*end-to-end/);

  // A password change in Git is enforced live: the old one stops working, so do tokens issued before it.
  await setSecret(ns, "alice-pw", { password: "alice-password-2" });
  await eventually("the new password works through the sidecar", async () => (await login("alice", "alice-password-2")).status === 200 || undefined, 30_000, 100);
  assert.equal((await login("alice", "alice-password-1")).status, 401);
  assert.equal((await fetch(`${api}/dags`, { headers: { authorization: `Bearer ${aliceToken}` } })).status, 401, "a token issued before the change is refused");

  // Deleting the API key revokes it.
  await kc.makeApiClient(k8s.CustomObjectsApi).deleteNamespacedCustomObject({ group: "auth.dagu.dev", version: "v1alpha1", namespace: ns, plural: "daguapikeys", name: "ci" });
  await eventually("the deleted key is refused", async () => (await fetch(`${api}/dags`, { headers: { authorization: `Bearer ${apiKey}` } })).status === 401 || undefined, 30_000, 100);
});
