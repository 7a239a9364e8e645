// jq for role_attribute_path, as Dagu evaluates it (gojq there; real jq 1.8 here, through jq-wasm:
// see docs/adr/0009). The operator checks that an expression compiles; the sidecar takes its first
// output at each SSO login. Evaluation runs in a worker thread with a time limit: an expression that
// loops (`def f: f; f`) or explodes on a crafted claim costs one worker, never the proxy.
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { JqRequest, JqResponse } from "./jq-worker.ts";

export const JQ_TIMEOUT_MS = 1000;

export type JqOutcome = { ok: true; output: unknown } | { ok: false; reason: "no_output" | "error" | "compile" | "timeout"; message: string };

type Pending = { request: JqRequest; resolve: (r: JqResponse | "timeout") => void };

/** One worker, requests one at a time; a request past its time limit terminates the worker (a new one starts on demand). */
export class Jq {
  readonly #timeoutMs: number;
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #queue: Pending[] = [];
  #busy = false;
  #nextId = 1;

  constructor(options: { timeoutMs?: number } = {}) {
    this.#timeoutMs = options.timeoutMs ?? JQ_TIMEOUT_MS;
  }

  /** undefined when `expression` compiles; else jq's message (it names no claim value: none is given). */
  async compileError(expression: string): Promise<string | undefined> {
    const r = await this.#call({ id: 0, op: "check", expression });
    if (r === "timeout") return "jq did not finish compiling the expression in time";
    return r.ok ? undefined : r.error;
  }

  /** The first output of `expression` over `input` (JSON), as Dagu takes it. */
  async first(expression: string, input: unknown): Promise<JqOutcome> {
    const r = await this.#call({ id: 0, op: "first", expression, input });
    if (r === "timeout") return { ok: false, reason: "timeout", message: `jq took longer than ${this.#timeoutMs} ms` };
    if (!r.ok) return { ok: false, reason: r.compile ? "compile" : "error", message: r.error };
    if (r.output === undefined) return { ok: false, reason: "no_output", message: "no output" };
    return { ok: true, output: JSON.parse(r.output) as unknown };
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#ready = undefined;
    await worker?.terminate();
  }

  #call(request: JqRequest): Promise<JqResponse | "timeout"> {
    return new Promise((resolve) => {
      this.#queue.push({ request: { ...request, id: this.#nextId++ }, resolve });
      void this.#pump();
    });
  }

  async #pump(): Promise<void> {
    if (this.#busy) return;
    const next = this.#queue.shift();
    if (!next) return;
    this.#busy = true;
    try {
      next.resolve(await this.#run(next.request));
    } catch (error) {
      next.resolve({ id: next.request.id, ok: false, error: `jq worker failed: ${(error as Error).message}`, compile: false });
    } finally {
      this.#busy = false;
      void this.#pump();
    }
  }

  async #run(request: JqRequest): Promise<JqResponse | "timeout"> {
    const worker = await this.#start();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        // Only terminating stops a WebAssembly loop; the next request gets a new worker.
        if (this.#worker === worker) void this.close();
        resolve("timeout");
      }, this.#timeoutMs);
      const onMessage = (message: JqResponse) => {
        if (message.id !== request.id) return;
        cleanup();
        resolve(message);
      };
      const onExit = () => {
        cleanup();
        if (this.#worker === worker) {
          this.#worker = undefined;
          this.#ready = undefined;
        }
        reject(new Error("the jq worker exited"));
      };
      const cleanup = () => {
        clearTimeout(timer);
        // An idle worker does not keep the process alive.
        worker.unref();
        worker.off("message", onMessage);
        worker.off("exit", onExit);
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.ref();
      worker.postMessage(request);
    });
  }

  #start(): Promise<Worker> {
    if (this.#worker && this.#ready) {
      const worker = this.#worker;
      return this.#ready.then(() => worker);
    }
    // Run from the sources (.ts, Node's type stripping) or from dist/ (.js): the worker is the sibling file.
    const file = new URL(`./jq-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    const worker = new Worker(file, { resourceLimits: { maxOldGenerationSizeMb: 64 } });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => {
        if (!m.ready) return;
        worker.off("message", onMessage);
        worker.off("error", reject);
        resolve();
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
    });
    // A worker that failed to load is dropped, so the next request tries again.
    this.#ready.catch(() => {
      if (this.#worker === worker) {
        this.#worker = undefined;
        this.#ready = undefined;
      }
    });
    worker.on("error", () => undefined);
    return this.#ready.then(() => worker);
  }
}
