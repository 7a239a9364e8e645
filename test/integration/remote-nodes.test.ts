// Dagu's remote nodes end to end on real parts: a primary Dagu whose remote node is another Dagu behind
// its own sidecar; the operator issues the key (a DaguApiKey of the remote's DaguAuth) and names it in the
// primary's credentials; the primary's sidecar sends it from its egress. Through the primary's API a user
// lists and starts the remote's DAGs with the role the key carries (the remote refuses more), the
// primary's own route table still applies first, a rotated key keeps the node working across the overlap,
// and the old key dies after it.
// The Dagus here are v2.15.1 (dev/components.ts, DAGU_BINARIES); the primary's config names the
// node as Dagu 2 spells it (remote_nodes, api_base_url with /api/v1, auth_type none).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bin, DAGU_BINARIES, ensureComponents } from "../../dev/components.ts";
import { freePort } from "../../dev/control-plane.ts";
import { HELLO_DAG, startDagu } from "../harness/dagu.ts";
import { serviceAccountKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { create, get, patchSpec, secret, secretValue, waitReady, withOperator } from "../harness/resources.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";

const OVERLAP_S = 20;

/** A Dagu started with a config file (the harness's startDagu takes none). */
async function startPrimaryDagu(t: { after: (fn: () => Promise<void> | void) => void }, config: (api: { v1: string; v2: string }) => string): Promise<{ url: string; version: string; log: () => Promise<string> }> {
  const root = await mkdtemp(join(tmpdir(), "dagu-primary-"));
  await mkdir(join(root, "dags"));
  await writeFile(join(root, "dags", "local-hello.yaml"), HELLO_DAG);
  await writeFile(join(root, "config.yaml"), config({ v1: "/api/v1", v2: "/api/v2" }));
  const port = await freePort();
  const logFile = join(root, "dagu.log");
  const { openSync, closeSync } = await import("node:fs");
  const fd = openSync(logFile, "a");
  const child = spawn(bin(await ensureComponents(["dagu"]), DAGU_BINARIES.dagu), ["start-all", "--config", join(root, "config.yaml"), "--host", "127.0.0.1", "--port", String(port), "--dags", join(root, "dags")], {
    env: { PATH: process.env.PATH ?? "", HOME: root, DAGU_HOME: join(root, "home"), DAGU_AUTH_MODE: "none", DAGU_TZ: "UTC", DAGU_COORDINATOR_PORT: String(await freePort()), DAGU_SCHEDULER_PORT: String(await freePort()) },
    stdio: ["ignore", fd, fd],
    detached: true,
  });
  closeSync(fd);
  t.after(async () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // gone
    }
    await rm(root, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  const version = await eventually("the primary Dagu answers", async () => {
    // Dagu 2 answers any other path (/api/v2/health too) with its UI page.
    const r = await fetch(`${url}/api/v1/health`).catch(() => undefined);
    return r?.ok ? (((await r.json()) as { version?: string }).version ?? "") : undefined;
  }, 30_000, 200).catch(async (err: unknown) => assert.fail(`${String(err)}\n${(await readFile(logFile, "utf8").catch(() => "")).slice(-2000)}`));
  return { url, version, log: () => readFile(logFile, "utf8") };
}

test("a primary Dagu manages a remote Dagu through both sidecars, with the operator's key, its role, and its rotation", async (t) => {
  const ns = await testNamespace(t, "remote");
  await withOperator(t);
  const remotePort = await freePort();
  const egressPort = await freePort();
  await secret(ns, "b-admin-pw", { password: "b-admin-password" });
  await secret(ns, "p-admin-pw", { password: "p-admin-password" });
  await secret(ns, "vic-pw", { password: "vic-password-1" });
  await create(ns, "daguauths", "DaguAuth", "team-b", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "b-admin-pw", key: "password" } } } });
  await create(ns, "daguapikeys", "DaguApiKey", "primary-to-b", { authRef: { name: "team-b" }, role: "operator", secretName: "primary-to-b-key", description: "the primary's remote node" });
  await create(ns, "daguauths", "DaguAuth", "primary", {
    mode: "builtin",
    builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "p-admin-pw", key: "password" } } },
    remoteNodes: [{ name: "team-b", url: `http://127.0.0.1:${remotePort}`, apiKeyRef: { name: "primary-to-b" } }],
  });
  await create(ns, "daguusers", "DaguUser", "vic", { authRef: { name: "primary" }, username: "vic", role: "viewer", password: { secretRef: { name: "vic-pw", key: "password" } } });
  await waitReady(ns, "daguapikeys", "primary-to-b", "Materialized");
  const primaryAuth = await waitReady(ns, "daguauths", "primary", "Materialized");
  const remoteAuth = await waitReady(ns, "daguauths", "team-b", "Materialized");
  await waitReady(ns, "daguusers", "vic", "Materialized");

  const kubeconfigFor = async (sa: string) => {
    const file = join(await mkdtemp(join(tmpdir(), "remote-kc-")), "kubeconfig");
    await writeFile(file, (await serviceAccountKubeConfig(ns, sa)).exportConfig(), { mode: 0o600 });
    return file;
  };
  // The remote: a Dagu with its own DAG, behind its sidecar (the DaguAuth team-b).
  const remoteDagu = await startDagu({ dags: { "remote-hello": HELLO_DAG } });
  t.after(() => remoteDagu.stop());
  const remoteSidecar = await startSidecar({ upstream: remoteDagu.url, port: remotePort, args: ["--kubernetes", "--namespace", ns, "--auth", "team-b", "--kubeconfig", await kubeconfigFor(String(remoteAuth.status!.serviceAccountName))] });
  t.after(() => remoteSidecar.stop());
  // The primary: its remote node named in its config with the sidecar's egress as the base URL, no auth.
  const primaryDagu = await startPrimaryDagu(t, (api) =>
    [
      "remote_nodes:", // Dagu 2 (it refuses Dagu 1's camelCase remoteNodes)
      "  - name: team-b",
      `    api_base_url: http://127.0.0.1:${egressPort}/team-b${api.v1}`,
      "    auth_type: none",
      "",
    ].join("\n"),
  );
  const primary: SidecarInstance = await startSidecar({
    upstream: primaryDagu.url,
    args: ["--kubernetes", "--namespace", ns, "--auth", "primary", "--kubeconfig", await kubeconfigFor(String(primaryAuth.status!.serviceAccountName)), "--egress-listen", `127.0.0.1:${egressPort}`],
  });
  t.after(() => primary.stop());
  const api = primaryDagu.version.replace(/^v/, "").startsWith("1.") ? "/api/v2" : "/api/v1";

  const login = async (s: SidecarInstance, username: string, password: string) => {
    const r = await fetch(`${s.url}${api}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) });
    assert.equal(r.status, 200);
    return ((await r.json()) as { token: string }).token;
  };
  const admin = await login(primary, "admin", "p-admin-password");
  const viewer = await login(primary, "vic", "vic-password-1");
  const call = (token: string, method: string, path: string, body?: unknown) =>
    fetch(`${primary.url}${api}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const remoteDags = async (token = admin) => {
    const r = await call(token, "GET", "/dags?remoteNode=team-b");
    return { status: r.status, text: await r.text() };
  };

  // Lists the remote's DAGs (not its own) through both sidecars.
  const listed = await eventually("the primary lists the remote's DAGs", async () => {
    const r = await remoteDags();
    return r.status === 200 ? r.text : undefined;
  }, 30_000, 250).catch(async (err: unknown) => assert.fail(`${String(err)}\n${(await remoteDags()).text}\nprimary sidecar:\n${primary.output().slice(-2000)}`));
  assert.match(listed, /remote-hello/);
  assert.doesNotMatch(listed, /local-hello/);
  assert.match(await (await call(admin, "GET", "/dags")).text(), /local-hello/, "without remoteNode: its own");
  // Operates: the key's role (operator) may start a DAG on the remote ...
  const started = await call(admin, "POST", "/dags/remote-hello/start?remoteNode=team-b", {});
  assert.equal(started.status, 200, await started.clone().text());
  // ... but not what needs more (creating a DAG needs developer): the remote's sidecar refuses, although the
  // primary's user is an admin.
  const create_ = await call(admin, "POST", "/dags?remoteNode=team-b", { name: "intruder" });
  assert.equal(create_.status, 403, await create_.clone().text());
  // The primary's own route table comes first: its viewer reads the remote, may not start there.
  assert.equal((await remoteDags(viewer)).status, 200);
  assert.equal((await call(viewer, "POST", "/dags/remote-hello/start?remoteNode=team-b", {})).status, 403);
  assert.equal((await fetch(`${remoteSidecar.url}${api}/dags`)).status, 401, "the remote itself is closed without a key");

  // Rotation: the primary keeps working across the overlap, the old key dies after it.
  const oldKey = await secretValue(ns, "primary-to-b-key", "apiKey");
  await patchSpec(ns, "daguapikeys", "primary-to-b", { rotation: { generation: 1, overlap: `${OVERLAP_S}s` } });
  const rotatedAt = Date.now();
  const newKey = await eventually("the DaguApiKey issued a new key", async () => {
    const k = await secretValue(ns, "primary-to-b-key", "apiKey");
    return k !== oldKey ? k : undefined;
  });
  const direct = (key: string) => fetch(`${remoteSidecar.url}${api}/dags`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
  await eventually("the remote accepts the new key", async () => (await direct(newKey)) === 200 || undefined);
  assert.equal(await direct(oldKey), 200, "the old key works during the overlap");
  assert.equal((await remoteDags()).status, 200, "the primary works during the overlap");
  const get_ = await get(ns, "daguapikeys", "primary-to-b");
  assert.equal(get_.status?.["rotationGeneration"], 1);
  await eventually("the old key is refused after the overlap", async () => (await direct(oldKey)) === 401 || undefined, (OVERLAP_S + 30) * 1000, 500);
  t.diagnostic(`old key refused ${((Date.now() - rotatedAt) / 1000).toFixed(1)} s after the rotation (overlap ${OVERLAP_S} s)`);
  assert.equal((await remoteDags()).status, 200, "the primary works with the new key after the overlap");
  assert.equal(await direct(newKey), 200);
});

test("remote nodes in status: a missing DaguApiKey is said and heals when created; a key of the DaguAuth itself is refused; the sidecar's Role names the key's Secret", async (t) => {
  const { kc, credentials } = await import("../harness/resources.ts");
  const k8s = await import("@kubernetes/client-node");
  const ns = await testNamespace(t, "remote");
  await withOperator(t);
  await create(ns, "daguauths", "DaguAuth", "team-b", { mode: "builtin" });
  // An admin, or the primary would be NoAdmin instead of Materialized.
  await secret(ns, "p-admin-pw", { password: "p-admin-password" });
  await create(ns, "daguauths", "DaguAuth", "primary", {
    mode: "builtin",
    builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "p-admin-pw", key: "password" } } },
    remoteNodes: [{ name: "team-b", url: "https://dagu-b.example.svc:8080/", apiKeyRef: { name: "to-b" } }],
  });
  const waiting = await waitReady(ns, "daguauths", "primary", "RemoteNodeKeyNotFound", "False");
  assert.match(waiting.status!.conditions!.find((c) => c.type === "Ready")!.message, /DaguApiKey to-b \(spec\.remoteNodes\[0\]\.apiKeyRef, node team-b\) does not exist/);
  await create(ns, "daguapikeys", "DaguApiKey", "to-b", { authRef: { name: "team-b" }, role: "viewer", secretName: "to-b-key" });
  await waitReady(ns, "daguauths", "primary", "Materialized");
  const doc = await credentials(ns, "primary");
  assert.deepEqual(doc.remoteNodes, [{ name: "team-b", url: "https://dagu-b.example.svc:8080", token: { secretName: "to-b-key", key: "apiKey" } }]);
  assert.ok(!JSON.stringify(doc).includes(await secretValue(ns, "to-b-key", "apiKey")), "the key itself is not in the document");
  const role = await kc.makeApiClient(k8s.RbacAuthorizationV1Api).readNamespacedRole({ name: "primary-sidecar", namespace: ns });
  assert.ok(role.rules!.some((r) => r.resourceNames?.includes("to-b-key") && r.verbs.includes("watch") && !r.verbs.includes("patch")), "the sidecar may read (only read) the key's Secret");

  await create(ns, "daguapikeys", "DaguApiKey", "own", { authRef: { name: "primary" }, role: "viewer", secretName: "own-key" });
  await patchSpec(ns, "daguauths", "primary", { remoteNodes: [{ name: "self", url: "https://x.svc", apiKeyRef: { name: "own" } }] });
  await waitReady(ns, "daguauths", "primary", "RemoteNodeKeyNotRemote", "False");
});
