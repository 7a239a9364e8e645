// Issue 15, point 1: Dagu decodes a path parameter twice, so a double-encoded path that the sidecar checked
// in its once-decoded form reached Dagu 1.30.3's locateDAG as an absolute or `../` path (CVE-2026-33344):
// a viewer read any YAML file Dagu could read. The test first shows the hole is real on the Dagu it runs
// (the same request straight to Dagu returns the planted file), then that the sidecar refuses every form of
// it before anything reaches Dagu, while the plain request for a real DAG still works.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

const API = "/api/v2";
const MARKER = `planted-secret-${randomBytes(8).toString("hex")}`;
let stack: SidecarStack;
let secretFile: string;

/** `/a/b` as Dagu's double decoding needs it: every `/` as `%252F`. */
const doubleEncoded = (path: string): string => path.split("/").join("%252F");

function attacks(): Record<string, string> {
  const withoutExtension = secretFile.replace(/\.yaml$/, "");
  return {
    "absolute path": `${API}/dags/${doubleEncoded(withoutExtension)}/spec`,
    "absolute path with extension": `${API}/dags/${doubleEncoded(secretFile)}/spec`,
    "dot-dot from the DAGs folder": `${API}/dags/..%252F${doubleEncoded("home/secret")}/spec`,
    "dot-dot with encoded dots": `${API}/dags/%252e%252e%252F${doubleEncoded("home/secret")}/spec`,
  };
}

before(async () => {
  // Dagu 1.30.3: the Dagu whose locateDAG made the file read possible (examples deployed it).
  stack = await startSidecarStack({
    dagu1: true,
    recorder: true,
    credentials: { users: [{ username: "admin", password: "admin-password-1", role: "admin" }], apiKeys: [{ name: "viewer", role: "viewer" }] },
  });
  // Beside the DAGs folder (Dagu's home), not in it: no DAG of that name exists.
  secretFile = join(stack.dagu.home, "..", "home", "secret.yaml");
  await writeFile(secretFile, `# ${MARKER}\nsteps:\n  - name: s\n    command: echo ${MARKER}\n`);
});

after(() => stack?.stop());

describe("double-encoded paths against the real Dagu", () => {
  test("straight to Dagu (auth off) every form reads the planted file: the hole is real", async () => {
    const leaked: string[] = [];
    for (const [name, path] of Object.entries(attacks())) {
      const response = await fetch(`${stack.dagu.url}${path}`);
      if ((await response.text()).includes(MARKER)) leaked.push(name);
    }
    // If Dagu stops decoding twice, this says so (and the %25 rule in docs/route-permissions.md can be revisited).
    assert.deepEqual(leaked, Object.keys(attacks()));
  });

  for (const name of Object.keys({ "absolute path": 0, "absolute path with extension": 0, "dot-dot from the DAGs folder": 0, "dot-dot with encoded dots": 0 })) {
    test(`through the sidecar a viewer key gets 400 for the ${name}, and nothing reaches Dagu`, async () => {
      stack.recorder!.clear();
      const response = await fetch(`${stack.sidecar.url}${attacks()[name]!}`, { headers: { Authorization: `Bearer ${stack.built.apiKeys.viewer!}` } });
      const body = await response.text();
      assert.equal(response.status, 400);
      assert.ok(!body.includes(MARKER));
      assert.deepEqual(stack.recorder!.requests.map((r) => r.url), []);
    });
  }

  test("the viewer still reads a real DAG's spec through the sidecar", async () => {
    const response = await fetch(`${stack.sidecar.url}${API}/dags/hello/spec`, { headers: { Authorization: `Bearer ${stack.built.apiKeys.viewer!}` } });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /WEBHOOK_PAYLOAD/);
  });
});
