// The Helm chart carries copies of what src/ generates: the CRDs (crds/) and the operator's RBAC rules
// (files/rbac.yaml, from src/operator/rbac.ts). Fail when someone changed src/ and forgot `npm run generate`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import YAML from "yaml";
import { CRD_HEADER, renderCrdFiles } from "../../src/api/index.ts";
import { OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACE_RULES } from "../../src/operator/rbac.ts";
import { CHART_CRD_DIR, CHART_DIR, RBAC_FILE, REPO_ROOT, renderChartFiles } from "../../scripts/chart-files.ts";

const read = (path: string) => readFile(join(CHART_DIR, path), "utf8");

test("the chart's crds/ and files/rbac.yaml match what src/ generates (run `npm run generate`)", async () => {
  const expected = renderChartFiles();
  const generatedOnDisk: string[] = [];
  for (const name of await readdir(join(CHART_DIR, CHART_CRD_DIR))) {
    if ((await read(`${CHART_CRD_DIR}/${name}`)).startsWith(CRD_HEADER)) generatedOnDisk.push(`${CHART_CRD_DIR}/${name}`);
  }
  const expectedCrds = [...expected.keys()].filter((p) => p.startsWith(`${CHART_CRD_DIR}/`));
  assert.deepEqual(generatedOnDisk.sort(), expectedCrds.sort(), "one generated CRD per kind in the chart, no leftovers");
  for (const [path, content] of expected) {
    assert.equal(await read(path).catch(() => "<missing>"), content, `charts/dagu-auth-operator/${path} is stale`);
  }
});

test("the chart's CRDs are the same bytes as crds/", async () => {
  for (const [name, content] of renderCrdFiles()) {
    assert.equal(await read(`${CHART_CRD_DIR}/${name}`), content, name);
    assert.equal(await readFile(join(REPO_ROOT, "crds", name), "utf8"), content, `crds/${name}`);
  }
});

test("files/rbac.yaml holds exactly the rules of src/operator/rbac.ts, and the templates read them from there", async () => {
  const rbac = YAML.parse(await read(RBAC_FILE)) as { clusterRules: unknown; namespaceRules: unknown };
  assert.deepEqual(rbac.clusterRules, OPERATOR_CLUSTER_RULES);
  assert.deepEqual(rbac.namespaceRules, OPERATOR_NAMESPACE_RULES);
  // No rule is written into a template by hand: both Role kinds render the generated file.
  for (const [template, key] of [["clusterrole.yaml", "clusterRules"], ["role.yaml", "namespaceRules"]] as const) {
    const text = await read(`templates/${template}`);
    assert.ok(text.includes(`include "dagu-auth-operator.rules" (list . "${key}")`), `${template} renders ${key} from ${RBAC_FILE}`);
    assert.ok(!/\bverbs:/.test(text), `${template} must not list verbs by hand`);
  }
});

test("Chart.yaml's appVersion is the package version (the default image tag)", async () => {
  const chart = YAML.parse(await read("Chart.yaml")) as { apiVersion: string; appVersion: string };
  const pkg = JSON.parse(await readFile(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
  assert.equal(chart.apiVersion, "v2");
  assert.equal(chart.appVersion, pkg.version);
});

test("values.schema.json is valid JSON and refuses unknown top-level keys", async () => {
  const schema = JSON.parse(await read("values.schema.json")) as { additionalProperties?: boolean; properties: Record<string, unknown> };
  assert.equal(schema.additionalProperties, false);
  const values = YAML.parse(await read("values.yaml")) as Record<string, unknown>;
  for (const key of Object.keys(values)) assert.ok(key in schema.properties, `values.yaml key ${key} is described in values.schema.json`);
});
