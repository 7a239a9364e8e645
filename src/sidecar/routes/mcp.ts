// Dagu v2.15.1's MCP endpoint (`<base>/mcp`, Streamable HTTP: JSON-RPC 2.0 in POST bodies, a server
// stream on GET, the session's end on DELETE). Behind the sidecar Dagu runs with auth off, so its tools,
// which call Dagu's API in-process, check no role: the sidecar reads each POSTed message and asks for the
// least role that the same action needs through the REST route table (src/dagu/routes.ts), read from Dagu's MCP
// source (internal/service/mcp): its three tools and what each action calls.
//   dagu_read (DAGs, specs, runs, logs, wiki, reference)       viewer    (GET routes: viewer)
//   dagu_change (preview or apply DAG YAML / wiki changes)      developer (validate/PUT spec/rename/delete, wiki writes)
//   dagu_execute start|enqueue of a DAG                         operator  (POST /dags/{fileName}/start|enqueue)
//   dagu_execute start|enqueue of an inline spec                developer (POST /dag-runs[/enqueue])
//   dagu_execute retry|stop                                     operator  (retry, stop)
// Protocol methods (initialize, ping, notifications, lists, resources/read|subscribe, prompts) need
// viewer: resources are the same reads as dagu_read, prompts are text templates. Anything else, an
// unknown tool or action included, needs admin: an upstream addition is closed until mapped here.
import { z } from "zod";
import type { Role } from "../../api/common.ts";
import { roleAtLeast } from "./roles.ts";

const VIEWER_METHODS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/list",
  "prompts/get",
  "completion/complete",
  "logging/setLevel",
]);

const Message = z.looseObject({
  jsonrpc: z.literal("2.0"),
  method: z.string().optional(),
  params: z.unknown().optional(),
});
const ToolCall = z.looseObject({ name: z.string(), arguments: z.record(z.string(), z.unknown()).optional() });

export interface McpNeed {
  readonly role: Role;
  /** For the audit log: the method, and the tool (and action) of a tool call. */
  readonly what: string;
}

const text = (v: unknown): string => (typeof v === "string" ? v.trim() : "");

/** The least role for one tool call. */
export function toolRole(name: string, args: Readonly<Record<string, unknown>>): McpNeed {
  if (name === "dagu_read") return { role: "viewer", what: name };
  if (name === "dagu_change") return { role: "developer", what: name };
  if (name === "dagu_execute") {
    const action = text(args.action);
    if (action === "retry" || action === "stop") return { role: "operator", what: `${name}:${action}` };
    if (action === "start" || action === "enqueue") {
      // As Dagu defaults it: a spec without a target type means an inline spec.
      const target = text(args.targetType) || (text(args.spec) !== "" ? "inline_spec" : "dag");
      return { role: target === "dag" ? "operator" : "developer", what: `${name}:${action}:${target}` };
    }
    return { role: "admin", what: `${name}:unknown_action` };
  }
  return { role: "admin", what: "unknown_tool" };
}

/** The least role for one JSON-RPC message (a request, a notification, or the client's answer to the server). */
export function messageRole(message: unknown): McpNeed | { readonly error: string } {
  const parsed = Message.safeParse(message);
  if (!parsed.success) return { error: "not a JSON-RPC 2.0 message" };
  const method = parsed.data.method;
  // A response to a request of the server's (no method): it carries no action of its own.
  if (method === undefined) return { role: "viewer", what: "response" };
  if (method === "tools/call") {
    const call = ToolCall.safeParse(parsed.data.params);
    if (!call.success) return { error: "tools/call needs params {name, arguments?}" };
    return toolRole(call.data.name, call.data.arguments ?? {});
  }
  if (VIEWER_METHODS.has(method) || method.startsWith("notifications/")) return { role: "viewer", what: method };
  return { role: "admin", what: "unknown_method" };
}

/** The least role for a POSTed body: one message, or a batch (each message's role; the highest wins). */
export function bodyRole(body: unknown): McpNeed | { readonly error: string } {
  const messages = Array.isArray(body) ? body : [body];
  if (messages.length === 0) return { error: "an empty batch" };
  let need: McpNeed | undefined;
  for (const message of messages) {
    const one = messageRole(message);
    if ("error" in one) return one;
    if (!need || !roleAtLeast(need.role, one.role)) need = one;
  }
  return need!;
}
