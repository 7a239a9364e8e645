// docs/architecture.md is a map: every file or folder path it names must exist, so a move that forgets
// the map fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const page = readFileSync(join(root, "docs", "architecture.md"), "utf8");

/** Repository paths as the page writes them (`src/...`, `dev/...`, `docs/...`), trailing punctuation off. */
function namedPaths(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/(?<![\w./-])((?:src|dev|test|docs|crds|scripts|charts|examples)\/[\w./-]*)/g)) {
    found.add(m[1]!.replace(/[.]+$/, ""));
  }
  return [...found];
}

/** Markdown links relative to docs/ (`[ADR 0013](adr/0013-the-house.md)`). */
function linkedPaths(text: string): string[] {
  return [...text.matchAll(/\]\(([^)#\s]+)\)/g)].map((m) => m[1]!).filter((target) => !/^[a-z]+:/.test(target));
}

test("every path docs/architecture.md names exists", () => {
  const paths = namedPaths(page);
  assert.ok(paths.length > 40, `the page names files (found ${paths.length})`);
  const missing = paths.filter((p) => !existsSync(join(root, p)));
  assert.deepEqual(missing, [], "paths named in docs/architecture.md that do not exist");
  const links = linkedPaths(page);
  assert.ok(links.length > 0);
  assert.deepEqual(links.filter((l) => !existsSync(join(root, "docs", l))), [], "links in docs/architecture.md that lead nowhere");
});

test("the page has both walks and a diagram", () => {
  assert.match(page, /## Walk 1: a request through the sidecar/);
  assert.match(page, /## Walk 2: a DaguUser from `kubectl apply` to an enforced password/);
  assert.match(page, /```mermaid\n/);
});

test("the path finder sees what a reader sees (so the check above can fail)", () => {
  assert.deepEqual(namedPaths("see `src/a/b.ts`, and dev/c.ts. Not xsrc/d.ts"), ["src/a/b.ts", "dev/c.ts"]);
  assert.deepEqual(linkedPaths("[x](adr/0001.md) [y](https://example.com) [z](#here)"), ["adr/0001.md"]);
});
