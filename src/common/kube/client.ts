// The runtime's transport to the Kubernetes API: plain JSON in and out.
//
// client-node's typed APIs deserialize into generated model classes (Date objects,
// unknown fields dropped for built-in kinds). An informer cache, a server-side
// apply body and a diff between a list and a watch all want the wire JSON, so
// this module sends requests itself: the server, TLS and credentials of a
// KubeConfig (config.ts), through undici's `request` on the KubeConfig's one
// connection pool. Errors become `KubeApiError`, carrying the HTTP code and the
// server's Status.
import type { Readable } from "node:stream";
import type { KubeConfig } from "./config.ts";

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  managedFields?: unknown[];
  [field: string]: unknown;
}

/** Any Kubernetes object as JSON. Fields beyond metadata are not validated here: use zod where they are read. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface KubeList<T extends KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** The body of a non-2xx answer and of a watch ERROR event. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}

export interface GroupVersionResource {
  /** "" for the core group. */
  group: string;
  version: string;
  /** The resource's plural name, as in the URL (`configmaps`, `daguauths`). */
  plural: string;
}

export interface ResolvedResource extends GroupVersionResource {
  kind: string;
  namespaced: boolean;
}

/** An API call that got a non-2xx answer. */
export class KubeApiError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  readonly status: KubeStatus | undefined;

  constructor(method: string, path: string, code: number, status: KubeStatus | undefined) {
    const detail = status?.message ?? status?.reason ?? "no Status in the answer";
    super(`${method} ${path} failed with HTTP ${code}: ${detail}`);
    this.name = "KubeApiError";
    this.code = code;
    this.reason = status?.reason;
    this.status = status;
  }
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Defaults to application/json when there is a body. */
  contentType?: string;
  signal?: AbortSignal;
  /** Per-request timeout, 30 s unless said otherwise. */
  timeoutMs?: number;
  /** The Accept header, application/json unless said otherwise (e.g. metadata only: METADATA_ONLY). */
  accept?: string;
}

/**
 * Accept headers that make the API server answer with objects' metadata only (PartialObjectMetadata):
 * a list or watch of Secrets then carries no Secret's data.
 */
export const METADATA_ONLY = {
  list: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
  object: "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
} as const;

/** The URL path of a collection, or of one object when `name` is given. */
export function resourcePath(gvr: GroupVersionResource, at: { namespace?: string; name?: string; subresource?: string } = {}): string {
  const root = gvr.group === "" ? `/api/${gvr.version}` : `/apis/${gvr.group}/${gvr.version}`;
  const ns = at.namespace ? `/namespaces/${encodeURIComponent(at.namespace)}` : "";
  const name = at.name ? `/${encodeURIComponent(at.name)}` : "";
  const sub = at.name && at.subresource ? `/${at.subresource}` : "";
  return `${root}${ns}/${gvr.plural}${name}${sub}`;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

interface ApiResourceList {
  resources: { name: string; kind: string; namespaced: boolean }[];
}

export class KubeClient {
  readonly kubeConfig: KubeConfig;
  // apiVersion -> kind -> resource; refreshed on a miss (a CRD may have just been installed).
  private readonly discovery = new Map<string, Map<string, ResolvedResource>>();

  constructor(kubeConfig: KubeConfig) {
    this.kubeConfig = kubeConfig;
  }

  private async send(method: Method, path: string, options: RequestOptions, bodyTimeoutMs: number): Promise<{ status: number; body: Readable & { text(): Promise<string> } }> {
    const url = new URL(this.kubeConfig.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== "") url.searchParams.set(key, String(value));
    }
    const headers: Record<string, string> = { ...(await this.kubeConfig.authHeaders(url.href)), accept: options.accept ?? "application/json" };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["content-type"] = options.contentType ?? "application/json";
      body = JSON.stringify(options.body);
    }
    try {
      const response = await this.kubeConfig.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body,
        signal: options.signal,
        headersTimeout: options.timeoutMs ?? 30_000,
        bodyTimeout: bodyTimeoutMs,
      });
      return { status: response.statusCode, body: response.body };
    } catch (err) {
      throw new Error(`${method} ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  async request<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options, options.timeoutMs ?? 30_000);
    let text: string;
    try {
      text = await response.body.text();
    } catch (err) {
      throw new Error(`${method} ${path} failed reading the answer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const parsed: unknown = text === "" ? undefined : safeJson(text);
    if (response.status < 200 || response.status > 299) {
      throw new KubeApiError(method, path, response.status, isStatus(parsed) ? parsed : { message: text.slice(0, 500) });
    }
    return parsed as T;
  }

  /**
   * A watch: `onEvent` for every event line, then `onDone` once (undefined when the server ended the
   * stream, an error otherwise: a KubeApiError for an HTTP error such as 410, or a dead connection noticed
   * after `idleTimeoutMs` without a byte, bookmarks included). Resolves with a controller that ends it.
   */
  async watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (type: string, object: unknown) => void,
    onDone: (err?: unknown) => void,
    idleTimeoutMs = 90_000,
    accept?: string,
  ): Promise<AbortController> {
    const controller = new AbortController();
    const response = await this.send("GET", path, { query: { ...query, watch: true }, signal: controller.signal, ...(accept ? { accept } : {}) }, idleTimeoutMs);
    if (response.status !== 200) {
      const text = await response.body.text().catch(() => "");
      const parsed = safeJson(text);
      throw new KubeApiError("GET", path, response.status, isStatus(parsed) ? parsed : { message: text.slice(0, 500) });
    }
    let buffered = "";
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      onDone(err);
    };
    response.body.setEncoding("utf8");
    response.body.on("data", (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while (!done && (newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === "") continue;
        const event = safeJson(line) as { type?: unknown; object?: unknown } | undefined;
        if (!event || typeof event.type !== "string") {
          finish(new Error(`GET ${path}: a watch line that is not an event: ${line.slice(0, 200)}`));
          controller.abort();
          return;
        }
        onEvent(event.type, event.object);
      }
    });
    response.body.once("end", () => finish());
    response.body.once("error", (err: Error) => finish(controller.signal.aborted ? undefined : err));
    return controller;
  }

  /** Finds the plural name and scope of a kind through discovery. */
  async resolve(apiVersion: string, kind: string): Promise<ResolvedResource> {
    const cached = this.discovery.get(apiVersion)?.get(kind);
    if (cached) return cached;
    const { group, version } = splitApiVersion(apiVersion);
    const path = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
    const list = await this.request<ApiResourceList>("GET", path);
    const byKind = new Map<string, ResolvedResource>();
    for (const r of list.resources) {
      if (r.name.includes("/")) continue; // subresources such as deployments/status
      byKind.set(r.kind, { group, version, plural: r.name, kind: r.kind, namespaced: r.namespaced });
    }
    this.discovery.set(apiVersion, byKind);
    const found = byKind.get(kind);
    if (!found) throw new Error(`discovery: the API server serves no kind ${kind} in ${apiVersion}`);
    return found;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isStatus(value: unknown): value is KubeStatus {
  return typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "Status";
}

/**
 * The HTTP code of a failed API call, whichever way it was made: this module
 * (`KubeApiError`), client-node's typed APIs in tests (an error with a numeric `code`),
 * an Error with `statusCode`, or a Status from a watch ERROR event.
 */
export function errorCode(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.code;
  if (typeof err !== "object" || err === null) return undefined;
  if ("statusCode" in err && typeof err.statusCode === "number") return err.statusCode;
  if ("code" in err && typeof err.code === "number") return err.code;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => errorCode(err) === 404;
export const isConflict = (err: unknown): boolean => errorCode(err) === 409;
/** 410: a resourceVersion too old for the server to serve a watch from, or an expired continue token. */
export const isGone = (err: unknown): boolean => errorCode(err) === 410;

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** Short "Kind ns/name" for messages. */
export function describe(obj: { kind?: string; metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.kind ?? "object"} ${objectKey(obj.metadata?.namespace, obj.metadata?.name ?? "?")}`;
}
