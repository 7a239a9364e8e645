// Writes docs/crd-reference.md from the zod schemas in src/api (npm run generate).
// test/unit/docs-fresh.test.ts fails when it is stale.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "./chart-files.ts";
import { CRD_REFERENCE_FILE, renderCrdReference } from "./crd-docs.ts";

await writeFile(join(REPO_ROOT, CRD_REFERENCE_FILE), renderCrdReference());
console.log(`wrote ${CRD_REFERENCE_FILE}`);
