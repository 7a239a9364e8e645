// Issue 15.6: a real Dagu with a basePath serves its API at /<base>/api/..., outside the sidecar's API
// prefix. With --dagu-api forced (no detection, which would fail closed) such a path looked like a UI page
// and reached Dagu's API without a credential. Every path with an `api` segment is refused now; Dagu's
// own pages under the base path still pass. Version-neutral: the prefix follows the Dagu in use.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { DaguInstance } from "../harness/dagu.ts";
import type { Recorder, SidecarInstance } from "../harness/sidecar.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";
import { ROLE_USERS } from "../../dev/known-credentials.ts";

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

describe("Dagu with a basePath behind a sidecar WITHOUT --dagu-base-path, --dagu-api forced (the defence)", () => {
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

// ADR 0020: the same Dagu behind a sidecar that knows its base path (--dagu-base-path, no --dagu-api:
// detection probes under the base): the API is <base><prefix>, the UI <base>/..., nothing else is served.
describe("Dagu with a basePath behind a sidecar with --dagu-base-path (detected, not forced)", () => {
  let based: SidecarStack;
  const login = async (username: string, password: string) => {
    const r = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) });
    assert.equal(r.status, 200, await r.clone().text());
    return ((await r.json()) as { token: string }).token;
  };
  const admin = ROLE_USERS.find((u) => u.role === "admin")!;
  const viewer = ROLE_USERS.find((u) => u.role === "viewer")!;

  before(async () => {
    based = await startSidecarStack({
      basePath: BASE,
      recorder: true,
      sidecarArgs: ["--dagu-base-path", BASE],
      credentials: { users: ROLE_USERS.map((u) => ({ ...u })), apiKeys: [{ name: "ci", role: "operator" }, { name: "ro", role: "viewer" }], webhooks: [{ dagName: "hello", mode: "token" }] },
    });
    // Started means ready, and ready means Dagu's API was detected: here, under the base path.
  });
  after(() => based?.stop());

  test("a viewer logs in under the base path, lists DAGs, and is refused a developer route (403, nothing forwarded)", async () => {
    const t = await login(viewer.username, viewer.password);
    const r = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(r.status, 200);
    assert.match(await r.text(), /"hello"/);
    const me = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/auth/me`, { headers: { authorization: `Bearer ${t}` } });
    assert.equal(me.status, 200);
    assert.match(await me.text(), new RegExp(`"${viewer.username}"`));
    based.recorder!.clear();
    const spec = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags/hello/spec`, { method: "PUT", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, body: JSON.stringify({ spec: "steps: []" }) });
    assert.equal(spec.status, 403, await spec.text());
    const start = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags/hello/start`, { method: "POST", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, body: "{}" });
    assert.equal(start.status, 403, await start.text());
    assert.deepEqual(based.recorder!.requests.map((q) => q.url), []);
  });

  test("an admin starts a DAG under the base path: exactly that path reaches Dagu", async () => {
    const t = await login(admin.username, admin.password);
    based.recorder!.clear();
    const r = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags/hello/start`, { method: "POST", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, body: "{}" });
    assert.equal(r.status, 200, await r.text());
    assert.deepEqual(based.recorder!.requests.map((q) => q.url), [`${BASE}${based.prefix}/dags/hello/start`]);
  });

  test("API keys work under the base path, with their roles", async () => {
    const ro = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags`, { headers: { authorization: `Bearer ${based.built.apiKeys.ro}` } });
    assert.equal(ro.status, 200);
    await ro.arrayBuffer();
    const roStart = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags/hello/start`, { method: "POST", headers: { authorization: `Bearer ${based.built.apiKeys.ro}`, "content-type": "application/json" }, body: "{}" });
    assert.equal(roStart.status, 403);
    await roStart.arrayBuffer();
    const ci = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/dags/hello/start`, { method: "POST", headers: { authorization: `Bearer ${based.built.apiKeys.ci}`, "content-type": "application/json" }, body: "{}" });
    assert.equal(ci.status, 200, await ci.text());
    // The sidecar's own management API answers under the base path too.
    const keys = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/api-keys`, { headers: { authorization: `Bearer ${await login(admin.username, admin.password)}` } });
    assert.equal(keys.status, 200, await keys.clone().text());
    assert.match(await keys.text(), /"ci"/);
  });

  test("the webhook trigger works under the base path and asks Dagu under it", async () => {
    based.recorder!.clear();
    const r = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${based.built.webhookTokens.hello}`, "content-type": "application/json" }, body: "{}" });
    assert.equal(r.status, 200, await r.text());
    const reached = based.recorder!.requests.map((q) => q.url);
    assert.ok(reached.length > 0 && reached.every((u) => u.startsWith(`${BASE}${based.prefix}/`)), JSON.stringify(reached));
    const bad = await fetch(`${based.sidecar.url}${BASE}${based.prefix}/webhooks/hello`, { method: "POST", headers: { authorization: "Bearer nope", "content-type": "application/json" }, body: "{}" });
    assert.equal(bad.status, 401);
    await bad.arrayBuffer();
  });

  test("paths outside the base path and api segments elsewhere are refused and reach nothing, with or without a credential", async () => {
    const t = await login(admin.username, admin.password);
    const refused: [string, number][] = [
      [`${based.prefix}/dags`, 404], // the API at the root: Dagu is not there, and it is outside the base
      [`${based.prefix}/auth/login`, 404],
      ["/dags", 404],
      ["/", 404],
      ["/dagu2/dags", 404],
      [`/x${BASE}${based.prefix}/dags`, 404],
      [`${BASE}/x${based.prefix}/dags`, 404],
      [`${BASE}/x/api/v1/dags`, 404],
      [`${BASE}/API${based.prefix.slice(4)}/dags`, 404],
      [`${BASE}/%61pi${based.prefix.slice(4)}/dags`, 400],
      [`${BASE}${based.prefix}/no-such-route`, 404],
      [`${BASE}/mcp/x`, 404],
    ];
    for (const [path, status] of refused) {
      for (const headers of [{}, { authorization: `Bearer ${t}` }]) {
        based.recorder!.clear();
        const r = await fetch(`${based.sidecar.url}${path}`, { headers, redirect: "manual" });
        const text = await r.text();
        assert.equal(r.status, status, `${path}: ${text.slice(0, 200)}`);
        assert.doesNotMatch(text, /"hello"/, path);
        assert.deepEqual(based.recorder!.requests.map((q) => q.url), [], `${path} reached Dagu`);
      }
    }
  });

  test("Dagu's pages under the base path pass, as Dagu answers them", async () => {
    based.recorder!.clear();
    const direct = await fetch(`${based.dagu.url}${BASE}/dags`, { redirect: "manual" });
    await direct.arrayBuffer();
    const r = await fetch(`${based.sidecar.url}${BASE}/dags`, { redirect: "manual" });
    await r.arrayBuffer();
    assert.equal(r.status, direct.status);
    assert.deepEqual(based.recorder!.requests.map((q) => q.url), [`${BASE}/dags`]);
  });
});
