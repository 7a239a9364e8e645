// Writes the generated parts of charts/dagu-auth-operator from src/: crds/ (the CRDs, from the zod
// schemas in src/api) and files/rbac.yaml (from src/operator/rbac.ts). test/unit/chart-fresh.test.ts
// fails when they are stale.
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CRD_HEADER } from "../src/api/crd.ts";
import { CHART_CRD_DIR, CHART_DIR, renderChartFiles } from "./chart-files.ts";

const files = renderChartFiles();
const crdDir = join(CHART_DIR, CHART_CRD_DIR);
await mkdir(crdDir, { recursive: true });
// Drop generated CRDs of kinds that no longer exist; leave anything hand-written alone.
for (const name of await readdir(crdDir)) {
  if (!files.has(`${CHART_CRD_DIR}/${name}`) && name.endsWith(".yaml")) {
    if ((await readFile(join(crdDir, name), "utf8")).startsWith(CRD_HEADER)) await rm(join(crdDir, name));
  }
}
for (const [path, content] of files) {
  await mkdir(dirname(join(CHART_DIR, path)), { recursive: true });
  await writeFile(join(CHART_DIR, path), content);
  console.log(`wrote charts/dagu-auth-operator/${path}`);
}
