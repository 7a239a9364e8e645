// Dagu v2.15.1's MCP endpoint (/mcp, Streamable HTTP) through the sidecar, Dagu with auth off behind it:
// only credentials allowed on the MCP surface reach it (API keys by allowedSurfaces, users' JWTs), REST
// refuses keys limited to MCP, and each tool call needs the role its action needs on the REST routes
// (src/sidecar/routes/mcp.ts); a refused call never reaches Dagu. And a differential: the same tool calls
// to Dagu v2.15.1 with its own builtin auth, refused alike but for the listed differences.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { HELLO_DAG, startDagu } from "../harness/dagu.ts";
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

/** One POST to /mcp as an MCP client sends it (to the sidecar, or to `base`). */
async function mcp(token: string | undefined, message: unknown, session?: string | null, base = stack.sidecar.url): Promise<McpAnswer> {
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (session) headers["mcp-session-id"] = session;
  const r = await fetch(`${base}/mcp`, { method: "POST", headers, body: JSON.stringify(message) });
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
async function open(token: string, base = stack.sidecar.url): Promise<string> {
  const init = await mcp(token, request("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "dagu-auth-test", version: "1" } }), undefined, base);
  assert.equal(init.status, 200, init.text);
  assert.equal((init.message?.result?.serverInfo as { name?: string } | undefined)?.name, "dagu", init.text);
  assert.ok(init.session, "Dagu names the session");
  const ack = await mcp(token, { jsonrpc: "2.0", method: "notifications/initialized" }, init.session, base);
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

/** Refused: 401/403, or (Dagu's way inside MCP) a tool result or JSON-RPC error saying so. */
const refused = (a: McpAnswer) =>
  a.status === 401 || a.status === 403 || (/forbidden|insufficient permissions|unauthorized/i.test(JSON.stringify(a.message ?? "")) && (a.message?.error !== undefined || a.message?.result?.isError === true));

describe("MCP: the sidecar against Dagu v2.15.1's own builtin auth", () => {
  test("the same tool calls with no credential, a viewer and an operator key and the admin's JWT are refused alike, but for the listed differences", async () => {
    const reference = await startDagu({
      dags: { hello: HELLO_DAG },
      env: {
        DAGU_AUTH_MODE: "builtin",
        DAGU_AUTH_TOKEN_SECRET: "mcp-differential-secret-0123456789",
        DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "admin",
        DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "mcp-admin-password-1",
      },
    });
    try {
      const ref = `${reference.url}/api/v1`;
      const login = await fetch(`${ref}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "mcp-admin-password-1" }) });
      const refAdmin = ((await login.json()) as { token: string }).token;
      const refKey = async (role: string) => {
        const r = await fetch(`${ref}/api-keys`, {
          method: "POST",
          headers: { authorization: `Bearer ${refAdmin}`, "content-type": "application/json" },
          body: JSON.stringify({ name: `mcp-${role}`, role, allowedSurfaces: ["mcp"], attributionClass: "service_account", serviceAccountName: `sa-${role}` }),
        });
        assert.equal(r.status, 201, await r.clone().text());
        return ((await r.json()) as { key: string }).key;
      };
      const credentials = [
        { who: "none", dagu: undefined, sidecar: undefined },
        { who: "viewer", dagu: await refKey("viewer"), sidecar: key("viewer-mcp") },
        { who: "operator", dagu: await refKey("operator"), sidecar: key("operator-both") },
        { who: "admin JWT", dagu: refAdmin, sidecar: adminJwt },
      ];
      const spec = "steps:\n  - command: echo hi\n";
      const calls: [string, () => unknown][] = [
        ["tools/list", () => request("tools/list")],
        ["resources/read dag spec", () => request("resources/read", { uri: "dagu://dags/hello/spec" })],
        ["dagu_read dags", () => tool("dagu_read", { target: "dags" })],
        ["dagu_read dag_spec", () => tool("dagu_read", { target: "dag_spec", name: "hello" })],
        ["dagu_change preview", () => tool("dagu_change", { mode: "preview", type: "upsert_dag", name: "mcp-diff", spec })],
        ["dagu_change apply", () => tool("dagu_change", { mode: "apply", type: "upsert_dag", name: "mcp-diff", spec })],
        ["dagu_execute start dag", () => tool("dagu_execute", { action: "start", name: "hello" })],
        ["dagu_execute start inline", () => tool("dagu_execute", { action: "start", spec })],
      ];
      const rows: { call: string; who: string; dagu: boolean; sidecar: boolean }[] = [];
      for (const c of credentials) {
        const sessions = c.dagu && c.sidecar ? { dagu: await open(c.dagu, reference.url), sidecar: await open(c.sidecar) } : { dagu: undefined, sidecar: undefined };
        for (const [name, message] of calls) {
          const dagu = await mcp(c.dagu, message(), sessions.dagu, reference.url);
          const sidecar = await mcp(c.sidecar, message(), sessions.sidecar);
          rows.push({ call: name, who: c.who, dagu: refused(dagu), sidecar: refused(sidecar) });
        }
      }
      const differences = rows.filter((r) => r.dagu !== r.sidecar).map((r) => `${r.call} as ${r.who}: Dagu ${r.dagu ? "refuses" : "allows"}, sidecar ${r.sidecar ? "refuses" : "allows"}`);
      console.log(`MCP differential: ${rows.length} rows, ${rows.length - differences.length} agree, ${differences.length} differ`);
      for (const d of differences) console.log(`  ${d}`);
      // docs/route-permissions.md, "MCP": a preview validates a spec, which the sidecar keeps for developers (as POST /dags/validate).
      assert.deepEqual(differences, ["dagu_change preview as viewer: Dagu allows, sidecar refuses", "dagu_change preview as operator: Dagu allows, sidecar refuses"]);
      assert.ok(rows.some((r) => r.dagu && r.sidecar && r.who === "viewer"), "some calls are refused on both sides");
    } finally {
      await reference.stop();
    }
  });
});
