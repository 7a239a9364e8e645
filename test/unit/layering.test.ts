// The house's walls (docs/architecture.md): src/operator and src/sidecar never import each other (their
// contract is the credentials schema in src/api and the shared codecs in src/common); the ground floor
// (src/api, src/common, src/dagu) imports nothing above it; nothing outside test/ imports from test/; and
// src/ has no import circle. Read from the sources, so a new import that breaks a wall fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** Relative imports (static, dynamic and `import type`) of a file, as repository paths. */
export function importsOf(file: string, text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm)) {
    found.push(relative(root, resolve(root, dirname(file), m[1]!)));
  }
  return found;
}

const graph = new Map<string, string[]>();
for (const dir of ["src", "scripts", "dev"]) {
  for (const file of sources(dir)) graph.set(file, importsOf(file, readFileSync(join(root, file), "utf8")));
}

function violations(from: string, to: readonly string[]): string[] {
  return [...graph].flatMap(([file, deps]) => (file.startsWith(from) ? deps.filter((d) => to.some((t) => d.startsWith(t))).map((d) => `${file} -> ${d}`) : []));
}

test("the operator and the sidecar never import each other", () => {
  assert.deepEqual(violations("src/operator/", ["src/sidecar/"]), []);
  assert.deepEqual(violations("src/sidecar/", ["src/operator/"]), []);
});

test("the ground floor imports nothing above it", () => {
  const above = ["src/operator/", "src/sidecar/", "src/convert/", "src/cli.ts"];
  for (const floor of ["src/api/", "src/common/", "src/dagu/"]) assert.deepEqual(violations(floor, above), [], floor);
});

test("nothing outside test/ imports from test/", () => {
  for (const dir of ["src/", "scripts/", "dev/"]) assert.deepEqual(violations(dir, ["test/"]), [], dir);
});

/** One circle of imports in `graph`, or undefined. */
export function findCircle(edges: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "open") return [...path.slice(path.indexOf(node)), node];
    state.set(node, "open");
    path.push(node);
    for (const next of edges.get(node) ?? []) {
      const circle = visit(next);
      if (circle) return circle;
    }
    path.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of edges.keys()) {
    const circle = visit(node);
    if (circle) return circle;
  }
  return undefined;
}

test("src/ has no import circle", () => {
  const src = new Map([...graph].filter(([file]) => file.startsWith("src/")));
  assert.ok(src.size > 100, `read the sources (${src.size} files)`);
  assert.equal(findCircle(src)?.join(" -> "), undefined);
});

test("the checks above can fail", () => {
  assert.deepEqual(importsOf("src/operator/x.ts", 'import { a } from "../sidecar/y.ts";\nimport type { B } from "./b.ts";\nconst c = await import("../common/c.ts");'), [
    "src/sidecar/y.ts",
    "src/operator/b.ts",
    "src/common/c.ts",
  ]);
  assert.deepEqual(findCircle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]])), ["a", "b", "c", "a"]);
  assert.equal(findCircle(new Map([["a", ["b"]], ["b", []]])), undefined);
});
