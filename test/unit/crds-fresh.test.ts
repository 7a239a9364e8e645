// crds/ is generated from src/api: fail when someone changed a schema and forgot `npm run generate`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { CRD_HEADER, KINDS, renderCrdFiles, toStructuralSchema } from "../../src/api/index.ts";
import { z } from "zod";

const crdDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "crds");

test("crds/ matches what the schemas generate (run `npm run generate`)", async () => {
  const expected = renderCrdFiles();
  const generatedOnDisk = [];
  for (const name of await readdir(crdDir)) {
    const text = await readFile(join(crdDir, name), "utf8");
    if (text.startsWith(CRD_HEADER)) generatedOnDisk.push(name);
  }
  assert.deepEqual(generatedOnDisk.sort(), [...expected.keys()].sort(), "one generated file per kind, no leftovers");
  for (const [name, content] of expected) {
    assert.equal(await readFile(join(crdDir, name), "utf8"), content, `crds/${name} is stale`);
  }
});

test("every CRD has a status subresource, a Ready column and a structural schema", () => {
  for (const [name, content] of renderCrdFiles()) {
    const crd = YAML.parse(content) as {
      spec: { versions: { subresources: unknown; additionalPrinterColumns: { name: string }[]; schema: unknown }[] };
    };
    const [version] = crd.spec.versions;
    assert.ok(version, name);
    assert.deepEqual(version.subresources, { status: {} }, name);
    assert.ok(version.additionalPrinterColumns.some((c) => c.name === "Ready"), name);
    // No JSON Schema keyword Kubernetes refuses survived post-processing.
    const text = JSON.stringify(version.schema);
    for (const bad of ['"$schema"', '"anyOf"', '"oneOf"', '"const"', '"additionalProperties":false', '"$ref"']) {
      assert.ok(!text.includes(bad), `${name} contains ${bad}`);
    }
  }
  assert.equal(renderCrdFiles().size, KINDS.length);
});

test("the generator refuses what a CRD cannot express", () => {
  assert.throws(() => toStructuralSchema(z.object({ a: z.string() })), /a: no description/);
  assert.throws(
    () => toStructuralSchema(z.object({ a: z.union([z.string(), z.int()]).describe("either") })),
    /anyOf/,
  );
});
