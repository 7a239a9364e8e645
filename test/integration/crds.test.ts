// The four CRDs on the real API server: installed and Established, every
// example accepted, every invalid fixture refused with a message naming the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import YAML from "yaml";
import { repoRoot } from "../../dev/components.ts";
import { adminKubeConfig, kubectl } from "../../dev/kube.ts";
import { testNamespace } from "../harness/per-test.ts";
import { KINDS } from "../../src/api/index.ts";

const GROUP = "auth.dagu.dev";

test("every CRD is Established and served with status and printer columns", async () => {
  const ext = adminKubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
  const files = (await readdir(join(repoRoot, "crds"))).filter((f) => f.endsWith(".yaml"));
  assert.equal(files.length, KINDS.length, "one CRD file per kind");
  for (const kind of KINDS) {
    const crd = await ext.readCustomResourceDefinition({ name: `${kind.plural}.${GROUP}` });
    const established = crd.status?.conditions?.find((c) => c.type === "Established");
    assert.equal(established?.status, "True", `${kind.kind} Established`);
    const version = crd.spec.versions.find((v) => v.served && v.storage);
    assert.ok(version, `${kind.kind} has a served storage version`);
    assert.ok(version.subresources?.status, `${kind.kind} has a status subresource`);
    assert.ok(version.additionalPrinterColumns?.some((c) => c.name === "Ready"), `${kind.kind} prints Ready`);
    assert.ok((crd.spec.names.shortNames ?? []).length > 0, `${kind.kind} has short names`);
    assert.ok(crd.spec.names.categories?.includes("dagu"), `${kind.kind} is in the dagu category`);
  }
});

test("kubectl explain describes the fields", async () => {
  const r = await kubectl(["explain", "daguusers.spec.role"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /DESCRIPTION:\s+\S+/);
  assert.match(r.stdout, /viewer/);
});

async function manifestFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

test("every example is accepted by the API server", async (t) => {
  const files = await manifestFiles(join(repoRoot, "examples"));
  assert.ok(files.length >= 5, "examples exist");
  const ns = await testNamespace(t, "examples");
  for (const file of files) {
    // Only the resources our CRDs define and what they reference; workloads are covered elsewhere.
    const r = await kubectl(["apply", "-n", ns, "-f", file]);
    assert.equal(r.code, 0, `${file}: ${r.stderr}`);
  }
  const listed = await kubectl(["get", "dagu", "-n", ns, "-o", "name"]);
  assert.equal(listed.code, 0, listed.stderr);
  for (const kind of ["daguauth", "daguuser", "daguapikey", "daguwebhook"]) {
    assert.match(listed.stdout, new RegExp(`^${kind}\\.${GROUP.replace(/\./g, "\\.")}/`, "m"), `the dagu category lists ${kind}`);
  }
});

test("invalid resources are refused at admission with a message naming the field", async (t) => {
  const dir = join(repoRoot, "test", "fixtures", "invalid");
  const files = await manifestFiles(dir);
  assert.ok(files.length >= 15, `at least 15 invalid fixtures (found ${files.length})`);
  const ns = await testNamespace(t, "invalid");
  for (const file of files) {
    const text = await readFile(file, "utf8");
    const expect = /^# expect: (.+)$/m.exec(text)?.[1]?.trim();
    assert.ok(expect, `${file} names its expected message in a '# expect:' line`);
    // Dry-run on the server so nothing is kept even if a fixture were wrongly accepted.
    const r = await kubectl(["apply", "--dry-run=server", "-n", ns, "-f", "-"], text);
    await t.test(file.slice(dir.length + 1), () => {
      assert.notEqual(r.code, 0, `accepted, but should have been refused:\n${r.stdout}`);
      assert.ok(r.stderr.includes(expect), `expected the message to contain ${JSON.stringify(expect)}, got:\n${r.stderr}`);
      const doc = YAML.parse(text) as { kind?: string };
      assert.ok(KINDS.some((k) => k.kind === doc.kind), `${file} is one of our kinds`);
    });
  }
});

test("a generated value's Secret name cannot be changed once set", async (t) => {
  const ns = await testNamespace(t, "immutable");
  const apply = (doc: string) => kubectl(["apply", "-n", ns, "-f", "-"], doc);
  const docs = {
    key: (secretName: string) => `apiVersion: ${GROUP}/v1alpha1\nkind: DaguApiKey\nmetadata: {name: ci}\nspec: {authRef: {name: dagu}, role: viewer, secretName: ${secretName}}\n`,
    hook: (secretName: string) => `apiVersion: ${GROUP}/v1alpha1\nkind: DaguWebhook\nmetadata: {name: hello}\nspec: {authRef: {name: dagu}, dagName: hello, secretName: ${secretName}}\n`,
    user: (secretName: string) => `apiVersion: ${GROUP}/v1alpha1\nkind: DaguUser\nmetadata: {name: bob}\nspec: {authRef: {name: dagu}, username: bob, role: viewer, password: {generate: {secretName: ${secretName}}}}\n`,
  };
  for (const [what, doc, message] of [
    ["DaguApiKey", docs.key, "spec.secretName is immutable"],
    ["DaguWebhook", docs.hook, "spec.secretName is immutable"],
    ["DaguUser", docs.user, "spec.password.generate.secretName is immutable"],
  ] as const) {
    const created = await apply(doc("first"));
    assert.equal(created.code, 0, created.stderr);
    const renamed = await apply(doc("second"));
    assert.notEqual(renamed.code, 0, `${what}: a new secretName was accepted`);
    assert.ok(renamed.stderr.includes(message), `${what}: ${renamed.stderr}`);
    assert.equal((await apply(doc("first"))).code, 0, `${what}: the same name is still accepted`);
  }
  // Switching a user from a generated password to a referenced one stays possible.
  const switched = await apply(docs.user("first").replace("password: {generate: {secretName: first}}", "password: {secretRef: {name: bob-pw, key: password}}"));
  assert.equal(switched.code, 0, switched.stderr);
});
