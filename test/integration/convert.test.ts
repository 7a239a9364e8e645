// What `dagu-auth convert` writes is accepted by the real API server, and the
// operator makes it Ready: a migration from Dagu's own auth: block works end to end.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../harness/components.ts";
import { kubectl, run, testNamespace } from "../harness/kube.ts";
import { ready, secret, waitReady, withOperator } from "../harness/resources.ts";

const convert = (fixture: string) => run(process.execPath, [join(repoRoot, "src", "cli.ts"), "convert", join(repoRoot, "test", "fixtures", "convert", fixture)]);

test("converted configurations are accepted by the API server", async (t) => {
  const ns = await testNamespace(t, "convert");
  for (const fixture of ["basic.yaml", "builtin-bare-block.yaml", "builtin-whole-config.yaml", "dagu1-names.yaml", "oidc.yaml", "unknown-keys.yaml", "yaml-details.yaml"]) {
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
