// Where the Kubernetes API server is and how to authenticate to it: a kubeconfig file (its current
// context) or the in-cluster ServiceAccount. Our own loader rather than client-node's KubeConfig,
// whose module imports the whole generated API: about 86 MiB of resident memory in a process that
// needs none of it (docs/benchmarks.md). Supported: server CA (data or file, or skipping
// verification), client certificates, bearer tokens (inline or a file, re-read as kubelet rotates
// it), basic auth. Exec plugins and auth providers are delegated to client-node, loaded only then.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { Agent, type Dispatcher } from "undici";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

/** Where a pod's ServiceAccount token, CA and namespace are read (automounted, or projected into one container). */
export const IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** A token file is read again after this long (kubelet rotates projected tokens well before expiry). */
const TOKEN_FILE_TTL_MS = 60_000;

const NamedCluster = z.object({
  name: z.string(),
  cluster: z.object({
    server: z.string().url(),
    "certificate-authority-data": z.string().optional(),
    "certificate-authority": z.string().optional(),
    "insecure-skip-tls-verify": z.boolean().optional(),
    "tls-server-name": z.string().optional(),
  }),
});
const NamedUser = z.object({
  name: z.string(),
  user: z
    .object({
      "client-certificate-data": z.string().optional(),
      "client-certificate": z.string().optional(),
      "client-key-data": z.string().optional(),
      "client-key": z.string().optional(),
      token: z.string().optional(),
      tokenFile: z.string().optional(),
      username: z.string().optional(),
      password: z.string().optional(),
      exec: z.unknown().optional(),
      "auth-provider": z.unknown().optional(),
    })
    .nullish(),
});
const NamedContext = z.object({ name: z.string(), context: z.object({ cluster: z.string(), user: z.string().optional(), namespace: z.string().optional() }) });
const Kubeconfig = z.object({
  clusters: z.array(NamedCluster).nullish(),
  users: z.array(NamedUser).nullish(),
  contexts: z.array(NamedContext).nullish(),
  "current-context": z.string().optional(),
});

type Credentials =
  | { kind: "none" }
  | { kind: "token"; token: string }
  | { kind: "token-file"; path: string }
  | { kind: "basic"; header: string }
  /** An exec plugin or auth provider: client-node computes the header (loaded only for this). */
  | { kind: "delegated"; kubeconfigText: string };

export interface KubeConfigParts {
  /** https://host:port, possibly with a path prefix. */
  server: string;
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  skipTlsVerify?: boolean;
  servername?: string;
  credentials: Credentials;
  /** The namespace of the context, if it names one. */
  namespace?: string;
  /** Where it came from, for messages. */
  source: string;
}

export class KubeConfig {
  readonly server: string;
  readonly namespace: string | undefined;
  readonly source: string;
  /** One connection pool for every client made from this configuration. */
  readonly dispatcher: Dispatcher;
  readonly #credentials: Credentials;
  #token: { value: string; readAt: number } | undefined;
  #delegate: Promise<(url: string) => Promise<Record<string, string>>> | undefined;

  constructor(parts: KubeConfigParts) {
    this.server = parts.server.replace(/\/+$/, "");
    this.namespace = parts.namespace;
    this.source = parts.source;
    this.#credentials = parts.credentials;
    this.dispatcher = new Agent({
      keepAliveTimeout: 30_000,
      connect: {
        ...(parts.ca ? { ca: parts.ca } : {}),
        ...(parts.cert ? { cert: parts.cert } : {}),
        ...(parts.key ? { key: parts.key } : {}),
        ...(parts.servername ? { servername: parts.servername } : {}),
        rejectUnauthorized: !parts.skipTlsVerify,
        keepAlive: true,
        keepAliveInitialDelay: 30_000,
      },
    });
  }

  /** The current context of a kubeconfig file. */
  static fromFile(path: string): KubeConfig {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new Error(`kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
    }
    return KubeConfig.fromText(text, { source: path, baseDir: dirname(resolve(path)) });
  }

  /** The current context of kubeconfig text (YAML or JSON); relative file paths resolve against `baseDir`. */
  static fromText(text: string, options: { source?: string; baseDir?: string } = {}): KubeConfig {
    const source = options.source ?? "kubeconfig";
    const baseDir = options.baseDir ?? process.cwd();
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (err) {
      throw new Error(`${source}: not YAML: ${(err as Error).message}`, { cause: err });
    }
    const parsed = Kubeconfig.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${source}: ${issue?.path.join(".") || "document"}: ${issue?.message ?? "invalid"}`);
    }
    const config = parsed.data;
    const contextName = config["current-context"];
    const context = config.contexts?.find((c) => c.name === contextName)?.context;
    if (!context) throw new Error(`${source}: current-context ${JSON.stringify(contextName ?? "")} is not among its contexts`);
    const cluster = config.clusters?.find((c) => c.name === context.cluster)?.cluster;
    if (!cluster) throw new Error(`${source}: context ${contextName} names cluster ${context.cluster}, which it does not define`);
    const user = context.user === undefined ? undefined : config.users?.find((u) => u.name === context.user)?.user;
    if (context.user !== undefined && user === undefined && !config.users?.some((u) => u.name === context.user)) {
      throw new Error(`${source}: context ${contextName} names user ${context.user}, which it does not define`);
    }
    const file = (path: string) => readFileSync(isAbsolute(path) ? path : join(baseDir, path));
    const data = (value: string) => Buffer.from(value, "base64");
    let credentials: Credentials = { kind: "none" };
    if (user?.exec !== undefined || user?.["auth-provider"] !== undefined) credentials = { kind: "delegated", kubeconfigText: text };
    else if (user?.token) credentials = { kind: "token", token: user.token };
    else if (user?.tokenFile) credentials = { kind: "token-file", path: isAbsolute(user.tokenFile) ? user.tokenFile : join(baseDir, user.tokenFile) };
    else if (user?.username !== undefined) credentials = { kind: "basic", header: `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}` };
    const ca = cluster["certificate-authority-data"] ? data(cluster["certificate-authority-data"]) : cluster["certificate-authority"] ? file(cluster["certificate-authority"]) : undefined;
    const cert = user?.["client-certificate-data"] ? data(user["client-certificate-data"]) : user?.["client-certificate"] ? file(user["client-certificate"]) : undefined;
    const key = user?.["client-key-data"] ? data(user["client-key-data"]) : user?.["client-key"] ? file(user["client-key"]) : undefined;
    return new KubeConfig({
      server: cluster.server,
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(cluster["insecure-skip-tls-verify"] ? { skipTlsVerify: true } : {}),
      ...(cluster["tls-server-name"] ? { servername: cluster["tls-server-name"] } : {}),
      credentials,
      ...(context.namespace ? { namespace: context.namespace } : {}),
      source,
    });
  }

  /** The pod's ServiceAccount: its token file (rotated by kubelet), CA and namespace. */
  static inCluster(env: NodeJS.ProcessEnv = process.env, dir = IN_CLUSTER_DIR): KubeConfig {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT;
    if (!host || !port) throw new Error("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set");
    let namespace: string | undefined;
    try {
      namespace = readFileSync(join(dir, "namespace"), "utf8").trim();
    } catch {
      namespace = undefined;
    }
    return new KubeConfig({
      server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
      ca: readFileSync(join(dir, "ca.crt")),
      credentials: { kind: "token-file", path: join(dir, "token") },
      ...(namespace ? { namespace } : {}),
      source: "in-cluster ServiceAccount",
    });
  }

  /** In a pod: the ServiceAccount; elsewhere $KUBECONFIG (its first file), then ~/.kube/config. */
  static fromDefault(env: NodeJS.ProcessEnv = process.env): KubeConfig {
    if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) return KubeConfig.inCluster(env);
    const fromEnv = env.KUBECONFIG?.split(":").find((p) => p !== "");
    return KubeConfig.fromFile(fromEnv ?? join(homedir(), ".kube", "config"));
  }

  /** Headers that authenticate a request to `url` (fresh per call: tokens rotate). */
  async authHeaders(url: string): Promise<Record<string, string>> {
    const c = this.#credentials;
    switch (c.kind) {
      case "none":
        return {};
      case "token":
        return { authorization: `Bearer ${c.token}` };
      case "basic":
        return { authorization: c.header };
      case "token-file": {
        const now = Date.now();
        if (!this.#token || now - this.#token.readAt > TOKEN_FILE_TTL_MS) {
          this.#token = { value: (await readFile(c.path, "utf8")).trim(), readAt: now };
        }
        return { authorization: `Bearer ${this.#token.value}` };
      }
      case "delegated":
        this.#delegate ??= delegatedAuth(c.kubeconfigText);
        return (await this.#delegate)(url);
    }
  }
}

/** client-node computes the headers of exec plugins and auth providers (and caches their tokens). */
async function delegatedAuth(kubeconfigText: string): Promise<(url: string) => Promise<Record<string, string>>> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromString(kubeconfigText);
  return async (url) => {
    const ctx = new k8s.RequestContext(url, k8s.HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(ctx.getHeaders())) if (name.toLowerCase() === "authorization") headers.authorization = value;
    return headers;
  };
}
