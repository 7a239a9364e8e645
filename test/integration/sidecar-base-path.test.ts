// Issue 15.6: a real Dagu with a basePath serves its API at /<base>/api/..., outside the sidecar's API
// prefix. With --dagu-api forced (no detection, which would fail closed) such a path looked like a UI page
// and reached Dagu's API without a credential. Every path with an `api` segment is refused now; Dagu's
// own pages under the base path still pass. Version-neutral: the prefix follows the Dagu in use.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { DaguInstance } from "../harness/dagu.ts";
import type { Recorder, SidecarInstance } from "../harness/sidecar.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

const BASE = "/dagu";
let stack: SidecarStack;
let dagu: DaguInstance;
let recorder: Recorder;
let sidecar: SidecarInstance;
let prefix: string;
let token: string;

before(async () => {
  stack = await startSidecarStack({
    basePath: BASE,
    recorder: true,
    forceApi: true,
    credentials: { users: [{ username: "root", password: "root-password-1", role: "admin" }] },
  });
  ({ dagu, sidecar, prefix } = stack);
  recorder = stack.recorder!;
  const login = await fetch(`${sidecar.url}${prefix}/auth/login`, { method: "POST", body: JSON.stringify({ username: "root", password: "root-password-1" }) });
  token = ((await login.json()) as { token: string }).token;
});

after(() => stack?.stop());

describe("Dagu with a basePath behind a sidecar with --dagu-api forced", () => {
  test("Dagu itself answers its DAG list under the base path to anyone (what must never be reachable)", async () => {
    const r = await fetch(`${dagu.url}${BASE}${prefix}/dags`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /"hello"/);
  });

  // Escapes of unreserved characters (`%61pi`) are malformed wherever they are (400); the rest is 404.
  const paths = () => [
    `${BASE}${prefix}/dags`,
    `${BASE}${prefix}/dags/hello/spec`,
    `${BASE}${prefix}/health`,
    `${BASE}/api/v1/dags`, // Dagu 1's legacy API under the base path
    `${BASE}/API${prefix.slice(4)}/dags`,
    `${BASE}/%61pi${prefix.slice(4)}/dags`,
    `${BASE}/%41PI${prefix.slice(4)}/dags`,
    `/x${BASE}${prefix}/dags`,
  ];

  test("every path with an api segment is 404 (400 when malformed) and reaches nothing, with or without a credential", async () => {
    for (const path of paths()) {
      for (const headers of [{}, { authorization: `Bearer ${token}` }]) {
        recorder.clear();
        const r = await fetch(`${sidecar.url}${path}`, { headers });
        const text = await r.text();
        assert.equal(r.status, /%(?:61|41)/.test(path) ? 400 : 404, `${path}: ${text.slice(0, 200)}`);
        assert.doesNotMatch(text, /"hello"/, path);
        assert.deepEqual(recorder.requests.map((q) => q.url), [], `${path} reached Dagu`);
      }
    }
  });

  test("Dagu's own pages under the base path still pass (as Dagu answers them)", async () => {
    recorder.clear();
    const direct = await fetch(`${dagu.url}${BASE}/dags`, { redirect: "manual" });
    await direct.arrayBuffer();
    const r = await fetch(`${sidecar.url}${BASE}/dags`, { redirect: "manual" });
    await r.arrayBuffer();
    assert.equal(r.status, direct.status);
    assert.deepEqual(recorder.requests.map((q) => q.url), [`${BASE}/dags`]);
  });
});
