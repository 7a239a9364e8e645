// The HTTPS endpoint the API server calls for every pod that opted in (POST /inject, an
// AdmissionReview). Its certificate is swapped in place when it rotates (new connections get the new
// one; none is dropped). Bad requests get a 4xx and a short reason; nothing a client sends can crash it.
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Counter, Histogram, type Registry } from "prom-client";
import { z } from "zod";
import { AdmissionReview, review, type InjectionLookups, type Outcome } from "./admission.ts";
import type { InjectionConfig } from "./config.ts";

export const INJECT_PATH = "/inject";
/** The API server sends at most a few MiB (a pod is at most ~1.5 MiB in etcd). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface WebhookServerOptions {
  host: string;
  port: number;
  lookups: InjectionLookups;
  config: InjectionConfig;
  logger: Logger;
  registry: Registry;
  /** The operator's instance: DaguAuths of another are refused. */
  instance?: string;
}

export interface ServingCertificate {
  cert: string;
  key: string;
}

export class WebhookServer {
  readonly #server: Server;
  readonly #options: WebhookServerOptions;
  readonly #admissions: Counter<"outcome">;
  readonly #duration: Histogram;
  #certificate: ServingCertificate | undefined;

  constructor(options: WebhookServerOptions) {
    this.#options = options;
    // No certificate yet: handshakes fail until useCertificate() (the API server then applies failurePolicy).
    this.#server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 30_000, minVersion: "TLSv1.2" }, (req, res) => void this.#handle(req, res));
    this.#server.on("tlsClientError", () => undefined);
    this.#admissions = new Counter({
      name: "dagu_auth_injection_admissions_total",
      help: "Pods the injection webhook answered, by outcome (mutated, unchanged, skipped, refused, error).",
      labelNames: ["outcome"] as const,
      registers: [options.registry],
    });
    this.#duration = new Histogram({
      name: "dagu_auth_injection_admission_seconds",
      help: "Time to answer one AdmissionReview.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers: [options.registry],
    });
  }

  /** Requests answered so far, by outcome (tests use it to show a pod never reached the webhook). */
  async answered(): Promise<number> {
    return (await this.#admissions.get()).values.reduce((n, v) => n + v.value, 0);
  }

  get hasCertificate(): boolean {
    return this.#certificate !== undefined;
  }

  useCertificate(certificate: ServingCertificate): void {
    if (this.#certificate?.cert === certificate.cert && this.#certificate.key === certificate.key) return;
    this.#server.setSecureContext({ cert: certificate.cert, key: certificate.key });
    this.#certificate = certificate;
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
    return this.#server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => this.#server.closeAllConnections(), 5_000);
    await closed;
    clearTimeout(timer);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const stop = this.#duration.startTimer();
    let outcome: Outcome | "error" = "error";
    try {
      const path = (req.url ?? "").split("?")[0];
      if (path !== INJECT_PATH) return send(res, 404, "not found");
      if (req.method !== "POST") return send(res, 405, "only POST");
      if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) return send(res, 415, "an AdmissionReview is application/json");
      const body = await readBody(req);
      if (body === undefined) return send(res, 413, `an AdmissionReview larger than ${MAX_BODY_BYTES} bytes`);
      let json: unknown;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch {
        return send(res, 400, "not JSON");
      }
      const parsed = AdmissionReview.safeParse(json);
      if (!parsed.success) return send(res, 400, `not an admission.k8s.io/v1 AdmissionReview: ${z.prettifyError(parsed.error).split("\n")[0]}`);
      const request = parsed.data.request;
      const answer = await review(request, this.#options.lookups, this.#options.config, this.#options.instance);
      outcome = answer.outcome;
      this.#options.logger[outcome === "refused" ? "warn" : "info"](
        { namespace: request.namespace, pod: podName(request.object), outcome, dryRun: request.dryRun ?? false, ...(answer.response.status ? { reason: answer.response.status.message } : {}) },
        "pod admission",
      );
      const text = JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: answer.response });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    } catch (err) {
      this.#options.logger.error({ err: err instanceof Error ? err.message : String(err) }, "pod admission failed");
      if (!res.headersSent) send(res, 500, "internal error");
      else res.destroy();
    } finally {
      this.#admissions.inc({ outcome });
      stop();
    }
  }
}

function podName(object: unknown): string | undefined {
  const meta = (object as { metadata?: { name?: unknown; generateName?: unknown } } | undefined)?.metadata;
  const name = meta?.name ?? meta?.generateName;
  return typeof name === "string" ? name : undefined;
}

function send(res: ServerResponse, status: number, message: string): void {
  const text = `${message}\n`;
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** The whole body, or undefined past the limit (the rest is drained, not buffered). */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    return undefined;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  // The request stays open past the limit: the answer (413) is written on it.
  for await (const chunk of req.iterator({ destroyOnReturn: false })) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
