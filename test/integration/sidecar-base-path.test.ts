// Issue 15.6: a real Dagu with a basePath serves its API at /<base>/api/..., outside the sidecar's API
// prefix. With --dagu-api forced (no detection, which would fail closed) such a path looked like a UI page
// and reached Dagu's API without a credential. Every path with an `api` segment is refused now; Dagu's
// own pages under the base path still pass. Version-neutral: the prefix follows the Dagu in use.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { buildCredentials, startRecorder, startSidecar, type Recorder, type SidecarInstance } from "../harness/sidecar.ts";

const BASE = "/dagu";
let dagu: DaguInstance;
let recorder: Recorder;
let sidecar: SidecarInstance;
let dir: string;
let token: string;
/** Dagu 1.x serves /api/v2 (--dagu-api v2), Dagu 2.x /api/v1 (--dagu-api v1). */
let prefix: string;

before(async () => {
  dagu = await startDagu({ basePath: BASE });
  const major = Number(/^v?(\d+)\./.exec(dagu.version)?.[1]);
  prefix = major >= 2 ? "/api/v1" : "/api/v2";
  recorder = await startRecorder(dagu.url);
  dir = await mkdtemp(join(tmpdir(), "sidecar-base-path-"));
  const built = await buildCredentials({ users: [{ username: "root", password: "root-password-1", role: "admin" }] });
  await writeFile(join(dir, "credentials.json"), JSON.stringify(built.credentials));
  sidecar = await startSidecar({ upstream: recorder.url, args: ["--credentials-file", join(dir, "credentials.json"), "--dagu-api", prefix === "/api/v1" ? "v1" : "v2"] });
  const login = await fetch(`${sidecar.url}${prefix}/auth/login`, { method: "POST", body: JSON.stringify({ username: "root", password: "root-password-1" }) });
  token = ((await login.json()) as { token: string }).token;
});

after(async () => {
  await sidecar?.stop();
  await recorder?.stop();
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Dagu with a basePath behind a sidecar with --dagu-api forced", () => {
  test("Dagu itself answers its DAG list under the base path to anyone (what must never be reachable)", async () => {
    const r = await fetch(`${dagu.url}${BASE}${prefix}/dags`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /"hello"/);
  });

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

  test("every path with an api segment is 404 and reaches nothing, with or without a credential", async () => {
    for (const path of paths()) {
      for (const headers of [{}, { authorization: `Bearer ${token}` }]) {
        recorder.clear();
        const r = await fetch(`${sidecar.url}${path}`, { headers });
        const text = await r.text();
        assert.equal(r.status, 404, `${path}: ${text.slice(0, 200)}`);
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
