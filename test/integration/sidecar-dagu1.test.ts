// The Dagu 1 suite (docs/adr/0005): the sidecar in front of a real Dagu v1.30.3 (auth off), found by
// detection. Dagu 1 with auth off also serves a legacy, unauthenticated `/api/v1` beside its `/api/v2`, so
// the regression that matters is path traversal: no dot segment, encoded dot or slash, case or encoding of
// the prefix may carry a request from `/api/v2` (or from nowhere) into `/api/v1`. Each row asserts the
// status and, through a recording forwarder, that nothing reached Dagu. A few role checks show the Dagu 1
// table in force. Everything else runs against Dagu v2.15.1.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { httpText, raw } from "../harness/raw-http.ts";
import { startRecorder, startSidecar, type Recorder, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, ROLE_USERS, type TestCredentials } from "../../dev/known-credentials.ts";

const API = "/api/v2";
let dagu: DaguInstance;
let recorder: Recorder;
let sidecar: SidecarInstance;
let built: TestCredentials;
let dir: string;
const tokens: Record<string, string> = {};

const bearer = (t: string): [string, string] => ["Authorization", `Bearer ${t}`];
const json: [string, string] = ["Content-Type", "application/json"];

before(async () => {
  dagu = await startDagu({ dagu1: true });
  recorder = await startRecorder(dagu.url);
  dir = await mkdtemp(join(tmpdir(), "sidecar-dagu1-"));
  built = await buildCredentials({ users: [...ROLE_USERS] });
  await writeFile(join(dir, "credentials.json"), JSON.stringify(built.credentials));
  // No --dagu-api: the sidecar detects Dagu 1 through the recorder.
  sidecar = await startSidecar({ upstream: recorder.url, args: ["--credentials-file", join(dir, "credentials.json")] });
  for (const { username, password } of ROLE_USERS) {
    const r = await raw(httpText("POST", `${API}/auth/login`, [json], JSON.stringify({ username, password })), sidecar.port);
    assert.equal(r.status, 200, r.body);
    tokens[username] = (JSON.parse(r.body) as { token: string }).token;
  }
});

after(async () => {
  await sidecar?.stop();
  await recorder?.stop();
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Dagu v1.30.3 behind the sidecar", () => {
  test("detection chose the Dagu 1 table (/api/v2); the premise: Dagu 1's legacy /api/v1 answers anyone", async () => {
    assert.match(dagu.version, /^1\.30\.3$/);
    assert.ok(sidecar.output().includes('"daguApi":"v2"'), "detected /api/v2");
    const direct = await fetch(`${dagu.url}/api/v1/dags`);
    assert.equal(direct.status, 200, "without the sidecar, the legacy API needs no credential");
    await direct.arrayBuffer();
  });

  const admin = () => bearer(tokens.admin!);
  const rows: [name: string, request: () => string, status: number][] = [
    ["the legacy prefix without a credential", () => httpText("GET", "/api/v1/dags"), 404],
    ["the legacy prefix with an admin token", () => httpText("POST", "/api/v1/dags/hello/start", [admin(), json], "{}"), 404],
    ["dot-dot from /api/v2 into /api/v1", () => httpText("GET", `${API}/../v1/dags`, [admin()]), 400],
    ["dot-dot after a route", () => httpText("POST", `${API}/dags/hello/../../../v1/dags/hello/start`, [admin(), json], "{}"), 400],
    ["encoded dot-dot", () => httpText("GET", `${API}/%2e%2e/v1/dags`, [admin()]), 400],
    ["mixed encoded dot-dot", () => httpText("GET", `${API}/.%2E/v1/dags`, [admin()]), 400],
    ["encoded slashes inside a parameter", () => httpText("GET", `${API}/dags/..%2F..%2Fv1%2Fdags`, [admin()]), 400],
    ["overlong UTF-8 dot", () => httpText("GET", `${API}/%C0%AE%C0%AE/v1/dags`, [admin()]), 400],
    ["backslash dot-dot", () => httpText("GET", `${API}\\..\\v1\\dags`, [admin()]), 400],
    ["encoded API prefix", () => httpText("GET", "/api/%76%31/dags"), 400],
    ["encoded /api", () => httpText("GET", "/%61pi/v1/dags"), 400],
    ["upper-case legacy prefix", () => httpText("GET", "/API/v1/dags"), 404],
    ["double slash before the legacy prefix", () => httpText("GET", "//api/v1/dags"), 400],
  ];
  for (const [name, request, status] of rows) {
    test(`path traversal: ${name} -> ${status}, nothing reaches Dagu`, async () => {
      recorder.clear();
      const r = await raw(request(), sidecar.port);
      assert.equal(r.status, status, `${r.status} ${r.body}`);
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.deepEqual(recorder.requests.map((q) => `${q.method} ${q.url}`), []);
    });
  }

  test("roles: a viewer reads and cannot start; an operator starts; a developer is Dagu 1's manager in /auth/me", async () => {
    recorder.clear();
    const read = await raw(httpText("GET", `${API}/dags`, [bearer(tokens.vic!)]), sidecar.port);
    assert.equal(read.status, 200, read.body);
    assert.deepEqual(recorder.requests.map((q) => `${q.method} ${q.url}`), [`GET ${API}/dags`]);
    recorder.clear();
    const refused = await raw(httpText("POST", `${API}/dags/hello/start`, [bearer(tokens.vic!), json], "{}"), sidecar.port);
    assert.equal(refused.status, 403);
    assert.deepEqual(recorder.requests, []);
    const started = await raw(httpText("POST", `${API}/dags/hello/start`, [bearer(tokens.opal!), json], "{}"), sidecar.port);
    assert.equal(started.status, 200, started.body);
    const inline = await raw(httpText("POST", `${API}/dag-runs`, [bearer(tokens.opal!), json], JSON.stringify({ spec: "steps:\n  - command: id" })), sidecar.port);
    assert.equal(inline.status, 403, "an inline spec needs developer");
    const me = await raw(httpText("GET", `${API}/auth/me`, [bearer(tokens.dev!)]), sidecar.port);
    assert.equal((JSON.parse(me.body) as { user: { role: string } }).user.role, "manager");
  });
});
