// The product's own kubeconfig loader (src/common/kube/config.ts): what it reads, what it refuses, and
// that a token file is read again (kubelet rotates projected ServiceAccount tokens).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "../../src/common/kube/config.ts";

const kubeconfig = (user: Record<string, unknown>, cluster: Record<string, unknown> = { server: "https://127.0.0.1:6443" }) =>
  JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "c", cluster }],
    users: [{ name: "u", user }],
    contexts: [{ name: "ctx", context: { cluster: "c", user: "u", namespace: "team-a" } }],
    "current-context": "ctx",
  });

test("a token user: the server of the current context, its namespace and a Bearer header", async () => {
  const kc = KubeConfig.fromText(kubeconfig({ token: "abc" }, { server: "https://api.example:6443/" }));
  assert.equal(kc.server, "https://api.example:6443");
  assert.equal(kc.namespace, "team-a");
  assert.deepEqual(await kc.authHeaders(`${kc.server}/api`), { authorization: "Bearer abc" });
});

test("basic auth and no credentials", async () => {
  assert.deepEqual(await KubeConfig.fromText(kubeconfig({ username: "a", password: "b" })).authHeaders("https://x"), { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` });
  assert.deepEqual(await KubeConfig.fromText(kubeconfig({})).authHeaders("https://x"), {});
});

test("file paths resolve against the kubeconfig's directory; a missing file is an error naming it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kubeconfig-"));
  await writeFile(join(dir, "token"), "from-file\n");
  await writeFile(join(dir, "config"), kubeconfig({ tokenFile: "token" }));
  const kc = KubeConfig.fromFile(join(dir, "config"));
  assert.deepEqual(await kc.authHeaders("https://x"), { authorization: "Bearer from-file" });
  await writeFile(join(dir, "missing-ca"), kubeconfig({ token: "t" }, { server: "https://x:1", "certificate-authority": "nope.crt" }));
  assert.throws(() => KubeConfig.fromFile(join(dir, "missing-ca")), /nope\.crt/);
  assert.throws(() => KubeConfig.fromFile(join(dir, "absent")), /kubeconfig .*absent/);
});

test("the in-cluster ServiceAccount: its token is read again after a minute, as kubelet rotates it", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "sa-"));
  await writeFile(join(dir, "token"), "first");
  await writeFile(join(dir, "ca.crt"), "not checked until a connection is made");
  await writeFile(join(dir, "namespace"), "dagu\n");
  const kc = KubeConfig.inCluster({ KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" }, dir);
  assert.equal(kc.server, "https://10.0.0.1:443");
  assert.equal(kc.namespace, "dagu");
  t.mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
  assert.deepEqual(await kc.authHeaders("https://x"), { authorization: "Bearer first" });
  await writeFile(join(dir, "token"), "second");
  t.mock.timers.tick(30_000);
  assert.deepEqual(await kc.authHeaders("https://x"), { authorization: "Bearer first" });
  t.mock.timers.tick(31_000);
  assert.deepEqual(await kc.authHeaders("https://x"), { authorization: "Bearer second" });
  assert.equal(KubeConfig.inCluster({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, dir).server, "https://[fd00::1]:443");
  assert.throws(() => KubeConfig.inCluster({}, dir), /KUBERNETES_SERVICE_HOST/);
});

test("refusals name what is wrong", () => {
  assert.throws(() => KubeConfig.fromText("a: [b"), /not YAML/);
  assert.throws(() => KubeConfig.fromText(kubeconfig({ token: "t" }, { server: "not a url" })), /clusters\.0\.cluster\.server/);
  const noContext = JSON.parse(kubeconfig({ token: "t" })) as Record<string, unknown>;
  noContext["current-context"] = "other";
  assert.throws(() => KubeConfig.fromText(JSON.stringify(noContext)), /current-context "other"/);
  const noCluster = JSON.parse(kubeconfig({ token: "t" })) as { clusters: unknown[] };
  noCluster.clusters = [];
  assert.throws(() => KubeConfig.fromText(JSON.stringify(noCluster)), /names cluster c/);
});

test("the default: in a pod the ServiceAccount, elsewhere $KUBECONFIG's first file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kubeconfig-"));
  await writeFile(join(dir, "config"), kubeconfig({ token: "env" }));
  const kc = KubeConfig.fromDefault({ KUBECONFIG: `${join(dir, "config")}:/elsewhere` });
  assert.deepEqual(await kc.authHeaders("https://x"), { authorization: "Bearer env" });
});

test("an exec plugin (cloud logins on a workstation) is handed to client-node, loaded only then", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kubeconfig-exec-"));
  const plugin = join(dir, "plugin.mjs");
  await writeFile(plugin, `process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "from-exec-plugin" } }));\n`);
  const kc = KubeConfig.fromText(kubeconfig({ exec: { apiVersion: "client.authentication.k8s.io/v1", command: process.execPath, args: [plugin], interactiveMode: "Never" } }));
  assert.deepEqual(await kc.authHeaders("https://127.0.0.1:6443/api"), { authorization: "Bearer from-exec-plugin" });
});
