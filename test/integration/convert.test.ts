// What `dagu-auth convert` writes is accepted by the real API server, and the
// operator makes it Ready: a migration from Dagu's own auth: block works end to end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../../dev/components.ts";
import * as k8s from "@kubernetes/client-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { tokenSigningKey } from "../../src/common/token-secret.ts";
import { DaguConfigCredentialSource } from "../../src/sidecar/sources/dagu-config-source.ts";
import { StateDir } from "../../src/sidecar/sources/state-dir.ts";
import { kubectl, run } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { create, kc, patchSpec, ready, secret, setSecret, waitCredentials, waitReady, withOperator } from "../harness/resources.ts";

const convert = (fixture: string) => run(process.execPath, [join(repoRoot, "src", "cli.ts"), "convert", join(repoRoot, "test", "fixtures", "convert", fixture)]);

test("converted configurations are accepted by the API server", async (t) => {
  const ns = await testNamespace(t, "convert");
  for (const fixture of ["basic.yaml", "builtin-bare-block.yaml", "builtin-whole-config.yaml", "dagu1-names.yaml", "oidc.yaml", "unknown-keys.yaml", "yaml-details.yaml", "page-builtin.yaml", "page-builtin-no-admin.yaml", "page-basic.yaml"]) {
    const out = await convert(fixture);
    assert.equal(out.code, 0, `${fixture}: ${out.stderr}`);
    const applied = await kubectl(["apply", "--dry-run=server", "-n", ns, "-f", "-"], out.stdout);
    assert.equal(applied.code, 0, `${fixture}: ${applied.stderr}`);
  }
  for (const fixture of ["mode-none.yaml", "initial-admin-half.yaml"]) {
    const out = await convert(fixture);
    assert.equal(out.code, 1, `${fixture} is refused`);
    assert.match(out.stderr, /mode|initial_admin/);
  }
});

test("a converted builtin configuration becomes Ready under the operator", async (t) => {
  const ns = await testNamespace(t, "convert");
  await withOperator(t);
  const out = await convert("builtin-whole-config.yaml");
  assert.equal(out.code, 0, out.stderr);
  const applied = await kubectl(["apply", "-n", ns, "-f", "-"], out.stdout);
  assert.equal(applied.code, 0, applied.stderr);
  const name = /kind: DaguAuth\nmetadata:\n {2}name: (\S+)/.exec(out.stdout)?.[1];
  assert.ok(name, "the output names a DaguAuth");
  // The TLS Secret is the step convert prints under "next:" (Dagu's certificate files are not read).
  assert.match(out.stderr, new RegExp(`kubectl create secret tls ${name}-tls`));
  const waiting = await waitReady(ns, "daguauths", name, "SecretNotFound", "False");
  assert.match(ready(waiting)!.message, new RegExp(`${name}-tls \\(spec\\.tls\\.secretName\\)`));
  await secret(ns, `${name}-tls`, { "tls.crt": "-----BEGIN CERTIFICATE-----", "tls.key": "-----BEGIN PRIVATE KEY-----" });
  await waitReady(ns, "daguauths", name, "Materialized");
});

test("the page's builtin example, short token secret and all, converts with a warning and becomes Ready", async (t) => {
  const ns = await testNamespace(t, "convert");
  await withOperator(t);
  const out = await convert("page-builtin.yaml");
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /WARNING: auth\.builtin\.token\.secret: the token secret is shorter than 32 bytes: accepted/);
  assert.ok(!out.stderr.includes("your-secure-random-secret"), "the warning never shows the secret");
  const applied = await kubectl(["apply", "-n", ns, "-f", "-"], out.stdout);
  assert.equal(applied.code, 0, applied.stderr);
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  assert.match(ready(auth)!.message, /warning: the token secret in Secret dagu-token-secret is shorter than 32 bytes/);
  const events = await eventually("a Warning Event about the short secret", async () => {
    const list = await kc.makeApiClient(k8s.EventsV1Api).listNamespacedEvent({ namespace: ns });
    return list.items.find((e) => e.reason === "TokenSecretShort" && e.type === "Warning" && e.regarding?.name === "dagu");
  });
  assert.ok(!String(events.note).includes("your-secure-random-secret"));
  // The key the sidecar verifies with is the one derivation of that secret, the same as the standalone sidecar's.
  const derived = tokenSigningKey("your-secure-random-secret").toString("base64url");
  const c = await waitCredentials(ns, "dagu", (d) => d.token?.keys[0]?.secret === derived, "the derived key signs");
  assert.deepEqual(c.users.map((u) => [u.username, u.role]), [["admin", "admin"]]);

  // A long secret is the key itself (as before short ones were accepted); the derived key keeps verifying for
  // the overlap, so nobody is logged out by surprise.
  const long = "a-long-random-token-secret-of-44-characters!";
  await setSecret(ns, "dagu-token-secret", { secret: long });
  const next = await waitCredentials(ns, "dagu", (d) => d.token?.keys[0]?.secret === Buffer.from(long).toString("base64url"), "the long secret is the key");
  assert.ok(next.token!.keys.some((k) => k.secret === derived && k.notAfter !== undefined), "the derived key is retired with an overlap");
  const after = await waitReady(ns, "daguauths", "dagu", "Materialized");
  assert.doesNotMatch(ready(after)!.message, /warning/);
});

test("builtin without an initial admin: NoAdmin (not Ready) until an enabled admin DaguUser exists", async (t) => {
  const ns = await testNamespace(t, "convert");
  await withOperator(t);
  const out = await convert("page-builtin-no-admin.yaml");
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /WARNING: auth\.builtin\.initial_admin: not set/);
  assert.equal((await kubectl(["apply", "-n", ns, "-f", "-"], out.stdout)).code, 0);
  const waiting = await waitReady(ns, "daguauths", "dagu", "NoAdmin", "False");
  assert.match(ready(waiting)!.message, /set spec\.builtin\.initialAdmin, or create a DaguUser with role admin/);
  // The credentials are there all the same (the sidecar serves, nobody can log in yet).
  await waitCredentials(ns, "dagu", (d) => d.users.length === 0, "an empty user list");
  await secret(ns, "root-pw", { password: "root-password-1" });
  const user = { authRef: { name: "dagu" }, username: "root", role: "admin", disabled: true, password: { secretRef: { name: "root-pw", key: "password" } } };
  await create(ns, "daguusers", "DaguUser", "root", user);
  await waitCredentials(ns, "dagu", (d) => d.users.some((u) => u.username === "root" && u.disabled), "the disabled admin");
  await waitReady(ns, "daguauths", "dagu", "NoAdmin", "False");
  await patchSpec(ns, "daguusers", "root", { disabled: false });
  await waitReady(ns, "daguauths", "dagu", "Materialized");
});

test("convert --state-dir: what a standalone sidecar created becomes resources the operator makes Ready", async (t) => {
  const ns = await testNamespace(t, "convert");
  await withOperator(t);
  const dir = await mkdtemp(join(tmpdir(), "convert-state-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // What an admin did through the standalone sidecar: the first admin by setup, a user, a key, a signed webhook.
  const source = new DaguConfigCredentialSource({ env: { DAGU_AUTH_MODE: "builtin" }, stateDir: new StateDir(dir), trustedProxies: [] });
  await source.start();
  const m = source.management()!;
  const root = await m.setup("root", "root-password-1");
  await m.createUser({ username: "ann", password: "ann-password-1", role: "developer" });
  await m.createApiKey({ name: "ci", role: "operator", allowedSurfaces: ["rest_api"], attributionClass: "service_account" }, { id: root.id, userId: root.id });
  await m.createWebhook("hello", { id: root.id });
  await m.enableWebhookHmac("hello", "tokenAndHmac", undefined);
  await source.stop();

  const out = await run(process.execPath, [join(repoRoot, "src", "cli.ts"), "convert", join(repoRoot, "test", "fixtures", "convert", "page-builtin-no-admin.yaml"), "--state-dir", dir]);
  assert.equal(out.code, 0, out.stderr);
  const applied = await kubectl(["apply", "-n", ns, "-f", "-"], out.stdout);
  assert.equal(applied.code, 0, applied.stderr);
  await waitReady(ns, "daguauths", "dagu", "Materialized");
  for (const [plural, name] of [["daguusers", "root"], ["daguusers", "ann"], ["daguapikeys", "ci"], ["daguwebhooks", "hello"]] as const) await waitReady(ns, plural, name);
  const c = await waitCredentials(ns, "dagu", (d) => d.users.length === 2 && d.apiKeys.length === 1 && d.webhooks.length === 1, "two users, a key, a webhook");
  assert.deepEqual(c.users.map((u) => [u.username, u.role]).sort(), [["ann", "developer"], ["root", "admin"]]);
  assert.equal(c.webhooks[0]!.mode, "tokenAndHmac");
});
