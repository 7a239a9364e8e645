// Dagu v2.15.1's MCP endpoint (/mcp, Streamable HTTP) through the sidecar, Dagu with auth off behind it:
// only credentials allowed on the MCP surface reach it (API keys by allowedSurfaces, users' JWTs), REST
// refuses keys limited to MCP, and each tool call needs the role its action needs on the REST routes
// (src/sidecar/mcp.ts); a refused call never reaches Dagu.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { HELLO_DAG } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

let stack: SidecarStack;
let adminJwt: string;

before(async () => {
  stack = await startSidecarStack({
    dags: { hello: HELLO_DAG },
    recorder: true,
    credentials: {
      users: [{ username: "admin", password: "mcp-admin-password-1", role: "admin" }],
      apiKeys: [
        { name: "viewer-mcp", role: "viewer", allowedSurfaces: ["mcp"] },
        { name: "operator-both", role: "operator", allowedSurfaces: ["rest_api", "mcp"] },
        { name: "admin-rest", role: "admin", allowedSurfaces: ["rest_api"] },
      ],
    },
  });
  const login = await fetch(`${stack.sidecar.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "mcp-admin-password-1" }) });
  adminJwt = ((await login.json()) as { token: string }).token;
});

after(async () => {
  await stack?.stop();
});

const key = (name: string) => stack.built.apiKeys[name]!;

interface McpAnswer {
  status: number;
  session: string | null;
  /** The JSON-RPC answer (from a JSON body or the first SSE `data:` line), if any. */
  message: { result?: Record<string, unknown>; error?: { message: string } } | undefined;
  text: string;
}

/** One POST to /mcp as an MCP client sends it. */
async function mcp(token: string | undefined, message: unknown, session?: string | null): Promise<McpAnswer> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (session) headers["mcp-session-id"] = session;
  const r = await fetch(`${stack.sidecar.url}/mcp`, { method: "POST", headers, body: JSON.stringify(message) });
  const text = await r.text();
  let json: string | undefined;
  if ((r.headers.get("content-type") ?? "").startsWith("text/event-stream")) json = text.split("\n").find((l) => l.startsWith("data:"))?.slice(5);
  else if (text.trim().startsWith("{")) json = text;
  return { status: r.status, session: r.headers.get("mcp-session-id"), message: json ? (JSON.parse(json) as McpAnswer["message"]) : undefined, text };
}

let nextId = 1;
const request = (method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: "2.0", id: nextId++, method, params });
const tool = (name: string, args: Record<string, unknown>) => request("tools/call", { name, arguments: args });

/** initialize + notifications/initialized: the session id of a new session. */
async function open(token: string): Promise<string> {
  const init = await mcp(token, request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "dagu-auth-test", version: "1" } }));
  assert.equal(init.status, 200, init.text);
  assert.equal((init.message?.result?.serverInfo as { name?: string } | undefined)?.name, "dagu", init.text);
  assert.ok(init.session, "Dagu names the session");
  const ack = await mcp(token, { jsonrpc: "2.0", method: "notifications/initialized" }, init.session);
  assert.ok(ack.status === 202 || ack.status === 200, `notifications/initialized: ${ack.status} ${ack.text}`);
  return init.session;
}

const mcpPosts = () => stack.recorder!.requests.filter((r) => r.method === "POST" && r.url === "/mcp").length;
const runsOf = async (dag: string) => {
  const r = await fetch(`${stack.dagu.url}/api/v1/dag-runs?name=${dag}`);
  return ((await r.json()) as { dagRuns?: { dagRunId: string }[] }).dagRuns ?? [];
};

describe("MCP through the sidecar (Dagu v2.15.1)", () => {
  test("Dagu itself, auth off, answers MCP to anyone: why the sidecar must guard it", async () => {
    const r = await fetch(`${stack.dagu.url}/mcp`, { method: "POST", headers: { "content-type": "application/json", accept: "application/json, text/event-stream" }, body: JSON.stringify(request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } })) });
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  });

  test("no credential, a wrong key, or a key without the mcp surface: 401, nothing reaches Dagu", async () => {
    const before = mcpPosts();
    for (const token of [undefined, "dagu_notakey", key("admin-rest")]) {
      const r = await mcp(token, request("initialize", {}));
      assert.equal(r.status, 401, `token ${token?.slice(0, 8)}: ${r.text}`);
    }
    assert.equal(mcpPosts(), before);
  });

  test("REST refuses a key limited to MCP; a key with both surfaces works on both", async () => {
    const mcpOnly = await fetch(`${stack.sidecar.url}/api/v1/dags`, { headers: { authorization: `Bearer ${key("viewer-mcp")}` } });
    assert.equal(mcpOnly.status, 401);
    await mcpOnly.arrayBuffer();
    const both = await fetch(`${stack.sidecar.url}/api/v1/dags`, { headers: { authorization: `Bearer ${key("operator-both")}` } });
    assert.equal(both.status, 200);
    await both.arrayBuffer();
  });

  test("a viewer key on the MCP surface: initialize, tools/list, dagu_read work; dagu_execute is 403 and never reaches Dagu", async () => {
    const session = await open(key("viewer-mcp"));
    const list = await mcp(key("viewer-mcp"), request("tools/list"), session);
    assert.equal(list.status, 200, list.text);
    const names = ((list.message?.result?.tools ?? []) as { name: string }[]).map((t) => t.name).sort();
    assert.deepEqual(names, ["dagu_change", "dagu_execute", "dagu_read"]);
    const read = await mcp(key("viewer-mcp"), tool("dagu_read", { target: "dags" }), session);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.message?.error, undefined, read.text);
    assert.match(JSON.stringify(read.message?.result), /hello/, "the DAG list names the DAG");

    const before = mcpPosts();
    const runsBefore = (await runsOf("hello")).length;
    for (const refused of [tool("dagu_execute", { action: "start", name: "hello" }), tool("dagu_change", { mode: "apply", type: "delete_dag", name: "hello" }), tool("dagu_unknown", {})]) {
      const r = await mcp(key("viewer-mcp"), refused, session);
      assert.equal(r.status, 403, r.text);
    }
    assert.equal(mcpPosts(), before, "no refused call reached Dagu");
    assert.equal((await runsOf("hello")).length, runsBefore);
  });

  test("an operator key runs a DAG through dagu_execute (a real run in Dagu), but may not change a DAG", async () => {
    const session = await open(key("operator-both"));
    const started = await mcp(key("operator-both"), tool("dagu_execute", { action: "start", name: "hello", dagRunId: "mcp-run-1" }), session);
    assert.equal(started.status, 200, started.text);
    assert.equal(started.message?.error, undefined, started.text);
    await eventually("the run started through MCP", async () => ((await runsOf("hello")).some((r) => r.dagRunId === "mcp-run-1") ? true : undefined), 20_000, 200);
    const change = await mcp(key("operator-both"), tool("dagu_change", { mode: "preview", type: "upsert_dag", name: "other", spec: "steps:\n  - command: echo hi\n" }), session);
    assert.equal(change.status, 403, change.text);
    const inline = await mcp(key("operator-both"), tool("dagu_execute", { action: "start", spec: "steps:\n  - command: echo hi\n" }), session);
    assert.equal(inline.status, 403, "an inline spec needs developer, as POST /dag-runs");
  });

  test("a user's JWT reaches MCP with the user's role; GET and DELETE of the session need a credential", async () => {
    const session = await open(adminJwt);
    const change = await mcp(adminJwt, tool("dagu_change", { mode: "preview", type: "upsert_dag", name: "other", spec: "steps:\n  - command: echo hi\n" }), session);
    assert.equal(change.status, 200, change.text);
    const anonymousEnd = await fetch(`${stack.sidecar.url}/mcp`, { method: "DELETE", headers: { "mcp-session-id": session } });
    assert.equal(anonymousEnd.status, 401);
    await anonymousEnd.arrayBuffer();
    const end = await fetch(`${stack.sidecar.url}/mcp`, { method: "DELETE", headers: { authorization: `Bearer ${adminJwt}`, "mcp-session-id": session } });
    assert.ok(end.status < 300, `DELETE answered ${end.status}`);
    await end.arrayBuffer();
  });

  test("a body that is not JSON-RPC is 400; other methods 405", async () => {
    const bad = await fetch(`${stack.sidecar.url}/mcp`, { method: "POST", headers: { authorization: `Bearer ${key("viewer-mcp")}`, "content-type": "application/json" }, body: "{not json" });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
    const put = await fetch(`${stack.sidecar.url}/mcp`, { method: "PUT", headers: { authorization: `Bearer ${key("viewer-mcp")}` }, body: "{}" });
    assert.equal(put.status, 405);
    await put.arrayBuffer();
  });
});
