// Writes crds/<plural>.auth.dagu.dev.yaml from the zod schemas in src/api (npm run generate).
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CRD_HEADER, renderCrdFiles } from "../src/api/crd.ts";

const crdDir = join(dirname(fileURLToPath(import.meta.url)), "..", "crds");
const files = renderCrdFiles();

await mkdir(crdDir, { recursive: true });
// Drop generated files of kinds that no longer exist; leave anything hand-written alone.
for (const name of await readdir(crdDir)) {
  if (!files.has(name) && name.endsWith(".yaml")) {
    if ((await readFile(join(crdDir, name), "utf8")).startsWith(CRD_HEADER)) await rm(join(crdDir, name));
  }
}
for (const [name, content] of files) {
  await writeFile(join(crdDir, name), content);
  console.log(`wrote crds/${name}`);
}
