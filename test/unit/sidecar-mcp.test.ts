// The least role of each MCP message (src/sidecar/mcp.ts), and the mapping against Dagu v2.15.1's MCP
// source at the tag: its registered tools and execute actions are exactly the ones mapped, so a tool or
// action added upstream fails here (until then the sidecar asks admin for it).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bodyRole, messageRole, toolRole } from "../../src/sidecar/routes/mcp.ts";
import { DAGU_SOURCE_VERSION, daguSourceMissing, gitShow } from "../harness/dagu-source.ts";

const call = (name: string, args?: Record<string, unknown>) => ({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name, ...(args ? { arguments: args } : {}) } });
const roleOf = (message: unknown) => {
  const need = messageRole(message);
  return "error" in need ? need.error : need.role;
};

describe("MCP: the least role of a message", () => {
  test("protocol methods and reads: viewer", () => {
    for (const method of ["initialize", "ping", "tools/list", "resources/list", "resources/read", "resources/subscribe", "prompts/list", "prompts/get", "notifications/initialized"]) {
      assert.equal(roleOf({ jsonrpc: "2.0", id: 1, method }), "viewer", method);
    }
    assert.equal(roleOf({ jsonrpc: "2.0", id: 7, result: {} }), "viewer", "the client's answer to a server request");
    assert.equal(roleOf(call("dagu_read", { target: "dags" })), "viewer");
  });

  test("changes: developer; runs of a DAG: operator; runs of an inline spec: developer", () => {
    assert.equal(roleOf(call("dagu_change", { mode: "preview", type: "upsert_dag" })), "developer");
    assert.equal(roleOf(call("dagu_change", { mode: "apply", type: "delete_dag", name: "x" })), "developer");
    assert.equal(roleOf(call("dagu_execute", { action: "start", name: "hello" })), "operator");
    assert.equal(roleOf(call("dagu_execute", { action: "enqueue", targetType: "dag", name: "hello" })), "operator");
    assert.equal(roleOf(call("dagu_execute", { action: "retry", name: "hello", dagRunId: "r" })), "operator");
    assert.equal(roleOf(call("dagu_execute", { action: "stop", name: "hello", dagRunId: "r" })), "operator");
    assert.equal(roleOf(call("dagu_execute", { action: "start", spec: "steps: []" })), "developer", "a spec without a target type is an inline spec, as Dagu defaults it");
    assert.equal(roleOf(call("dagu_execute", { action: "enqueue", targetType: "inline_spec", spec: "steps: []" })), "developer");
    assert.equal(roleOf(call("dagu_execute", { action: "start", targetType: "something_new" })), "developer");
  });

  test("fail closed: unknown tools, actions and methods need admin; malformed messages are errors", () => {
    assert.equal(roleOf(call("dagu_new_tool")), "admin");
    assert.equal(roleOf(call("dagu_execute", { action: "delete" })), "admin");
    assert.equal(roleOf(call("dagu_execute")), "admin");
    assert.equal(roleOf({ jsonrpc: "2.0", id: 1, method: "sampling/createMessage" }), "admin");
    assert.equal(roleOf({ jsonrpc: "1.0", id: 1, method: "ping" }), "not a JSON-RPC 2.0 message");
    assert.equal(roleOf({ jsonrpc: "2.0", id: 1, method: "tools/call", params: {} }), "tools/call needs params {name, arguments?}");
    assert.equal(roleOf("ping"), "not a JSON-RPC 2.0 message");
  });

  test("a batch needs the highest role of its messages", () => {
    const need = bodyRole([{ jsonrpc: "2.0", id: 1, method: "ping" }, call("dagu_execute", { action: "stop", name: "a", dagRunId: "b" }), call("dagu_read", { target: "dags" })]);
    assert.deepEqual(need, { role: "operator", what: "dagu_execute:stop" });
    assert.deepEqual(bodyRole([]), { error: "an empty batch" });
    assert.deepEqual(bodyRole([call("dagu_read"), "junk"]), { error: "not a JSON-RPC 2.0 message" });
  });
});

describe(`MCP: the mapping against Dagu ${DAGU_SOURCE_VERSION}'s MCP source`, () => {
  test("the registered tools and execute actions are exactly the mapped ones", async () => {
    const missing = await daguSourceMissing();
    if (missing) assert.fail(missing);
    const server = await gitShow("show", `${DAGU_SOURCE_VERSION}:internal/service/mcp/server.go`);
    const constants = new Map([...server.matchAll(/^\s*(tool[A-Z]\w*)\s*=\s*"([^"]+)"/gm)].map((m) => [m[1]!, m[2]!]));
    const registered = [...server.matchAll(/AddTool\((?:server, )?&mcpsdk\.Tool\{[^}]*?Name:\s*(\w+)/gs)].map((m) => constants.get(m[1]!) ?? m[1]!);
    assert.deepEqual(registered.sort(), ["dagu_change", "dagu_execute", "dagu_read"], "Dagu's MCP tools changed: map the new ones in src/sidecar/mcp.ts");
    for (const name of registered) assert.notEqual(toolRole(name, { action: "start" }).what, "unknown_tool", name);
    const body = server.slice(server.indexOf("func (svc *Service) executeToolImpl"));
    const actions = [...body.slice(0, body.indexOf("\n}\n")).matchAll(/case "(\w+)":/g)].map((m) => m[1]!);
    assert.deepEqual(actions.sort(), ["enqueue", "retry", "start", "stop"], "dagu_execute's actions changed: map them in src/sidecar/mcp.ts");
  });
});
