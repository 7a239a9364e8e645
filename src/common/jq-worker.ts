// The jq worker (see jq.ts): real jq 1.8 compiled to WebAssembly (jq-wasm), run off the main thread so
// that an expression that never ends stops only this worker, which its owner then terminates.
import { parentPort } from "node:worker_threads";
import { loadJq } from "jq-wasm";

export type JqRequest = { id: number; op: "check"; expression: string } | { id: number; op: "first"; expression: string; input: unknown };
export type JqResponse = { id: number; ok: true; output?: string } | { id: number; ok: false; error: string; compile: boolean };

const jq = await loadJq();
const port = parentPort!;

port.on("message", (request: JqRequest) => {
  // The newline ends a trailing comment in the expression; `empty` keeps the checked definition from running.
  const program = request.op === "check" ? `def __dagu_check:\n${request.expression}\n; empty` : `first(\n${request.expression}\n)`;
  const result = jq.raw(request.op === "check" ? null : (request.input as object), program, request.op === "check" ? ["-n"] : ["-c"]);
  const response: JqResponse =
    result.exitCode === 0
      ? { id: request.id, ok: true, ...(result.stdout.trim() !== "" ? { output: result.stdout.trim().split("\n")[0]! } : {}) }
      : { id: request.id, ok: false, error: firstLine(result.stderr), compile: result.exitCode === 3 };
  port.postMessage(response);
});
port.postMessage({ ready: true });

/** jq's message without its source excerpt (which points into our wrapper) and positions. */
function firstLine(stderr: string): string {
  const line = stderr.split("\n")[0] ?? "";
  return line.replace(/^jq: error(?: \(at [^)]*\))?: /, "").replace(/ at <top-level>, line \d+(, column \d+)?:?$/, "").trim() || "jq failed";
}
