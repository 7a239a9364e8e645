// The image's build and start commands, run without Docker by scripts/image-smoke.sh: npm ci and
// npm run build, production dependencies only, then `dagu-auth --help`, `dagu-auth operator --help` and
// the operator started against the test control plane until its health endpoint answers, then SIGTERM.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { repoRoot } from "../../dev/components.ts";
import { run, testKubeconfigPath } from "../../dev/kube.ts";

test("the Dockerfile's build and start commands work (scripts/image-smoke.sh)", { timeout: 5 * 60_000 }, async () => {
  const r = await run("bash", [join(repoRoot, "scripts", "image-smoke.sh")], undefined, { ...process.env, IMAGE_SMOKE_KUBECONFIG: testKubeconfigPath() });
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, `image-smoke.sh failed:\n${output.slice(-4000)}`);
  assert.match(r.stdout, /usage: dagu-auth <command>/, "the entrypoint prints its usage");
  assert.match(r.stdout, /usage: dagu-auth operator \[options\]/, "`operator --help` loads the operator with production dependencies only");
  assert.match(r.stdout, /GET \/healthz: 200/, "the operator starts and answers its health check");
  assert.match(r.stdout, /stopped cleanly on SIGTERM/);
  assert.match(r.stdout, /== image-smoke: ok/);
});
