// docs/crd-reference.md is generated from src/api; docs/troubleshooting.md has one entry per status reason
// the operator writes. Fail when either fell behind the code (run `npm run generate`, or document the reason).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/chart-files.ts";
import { CRD_REFERENCE_FILE, DOCS_HEADER, renderCrdReference } from "../../scripts/crd-docs.ts";
import { z } from "zod";
import { KINDS } from "../../src/api/index.ts";
import { kstatusCondition } from "../../src/operator/conditions.ts";

const readDoc = (name: string) => readFile(join(REPO_ROOT, "docs", name), "utf8");

/** Every `reason: "..."` literal in src/operator: the reasons a Ready condition can carry. */
async function operatorReasons(): Promise<Set<string>> {
  const dir = join(REPO_ROOT, "src", "operator");
  const reasons = new Set<string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const text = await readFile(join(entry.parentPath, entry.name), "utf8");
    for (const m of text.matchAll(/\breason: "([A-Z][A-Za-z0-9]*)"/g)) reasons.add(m[1]!);
  }
  return reasons;
}

test(`${CRD_REFERENCE_FILE} matches what the schemas generate (run \`npm run generate\`)`, async () => {
  assert.equal(await readFile(join(REPO_ROOT, CRD_REFERENCE_FILE), "utf8"), renderCrdReference(), `${CRD_REFERENCE_FILE} is stale`);
});

test("the CRD reference has a section per kind and a row per spec field", () => {
  const doc = renderCrdReference();
  assert.ok(doc.startsWith(DOCS_HEADER));
  for (const k of KINDS) {
    assert.match(doc, new RegExp(`^## ${k.kind}$`, "m"));
    const spec = k.schema.shape.spec;
    assert.ok(spec instanceof z.ZodObject, `${k.kind}.spec is an object schema`);
    const fields = Object.keys(spec.shape);
    assert.ok(fields.length > 0);
    for (const field of fields) assert.ok(doc.includes(`| \`spec.${field}\` |`), `${k.kind} documents spec.${field}`);
  }
});

test("docs/troubleshooting.md has exactly one entry per status reason of the operator", async () => {
  const reasons = await operatorReasons();
  assert.ok(reasons.size >= 10, `found the operator's reasons (${[...reasons].join(", ")})`);
  const doc = await readDoc("troubleshooting.md");
  const documented = [...doc.matchAll(/^### `([A-Za-z0-9]+)`$/gm)].map((m) => m[1]!);
  assert.equal(new Set(documented).size, documented.length, "no reason is documented twice");
  for (const r of reasons) assert.ok(documented.includes(r), `docs/troubleshooting.md lacks an entry for reason ${r}`);
  for (const r of documented) assert.ok(reasons.has(r), `docs/troubleshooting.md documents ${r}, which the operator no longer writes`);
});

test("docs/troubleshooting.md says for each reason what kstatus reads (src/operator/conditions.ts decides), and gitops.md lists none", async () => {
  const doc = await readDoc("troubleshooting.md");
  const checked: string[] = [];
  for (const m of doc.matchAll(/^### `([A-Za-z0-9]+)`\n\nReady: \*\*(True|False|Unknown)\*\*([^.]*)\./gm)) {
    const [, reason, ready, rest] = m;
    const state = { ready: ready === "True", pending: ready === "Unknown", reason: reason!, message: "" };
    const expected = kstatusCondition(state);
    const said = /`Reconciling=True`/.test(rest!) ? "Reconciling" : /`Stalled=True`/.test(rest!) ? "Stalled" : undefined;
    assert.equal(said, expected, `troubleshooting.md, ${reason}: the operator sets ${expected ?? "neither Reconciling nor Stalled"}`);
    checked.push(reason!);
  }
  assert.deepEqual(checked, [...doc.matchAll(/^### `([A-Za-z0-9]+)`$/gm)].map((m) => m[1]), "every reason's entry starts with its Ready line");
  // The GitOps page explains the rule instead of listing reasons that would drift from the code.
  assert.doesNotMatch(await readDoc("gitops.md"), /reason in \[/);
});
