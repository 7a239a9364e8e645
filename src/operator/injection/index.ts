// Sidecar injection, as the operator runs it: the webhook server on every replica (admission only
// reads: the DaguAuth and ServiceAccount caches the operator keeps anyway, the API when a cache does
// not have the object yet) and its certificate (webhook-tls.ts). Started by wiring/serving.ts.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { KubeClient, isNotFound, resourcePath, type KubeObject } from "../../common/kube/client.ts";
import type { KubeConfig } from "../../common/kube/config.ts";
import { GROUP, KINDS, VERSION } from "../../api/index.ts";
import type { ObjectCache } from "../context.ts";
import type { ReadinessCheck } from "../runtime/health.ts";
import { parseAddress } from "../runtime/health.ts";
import type { InjectionLookups } from "./admission.ts";
import { DEFAULT_POLICY, type CertificatePolicy } from "./certificate-plan.ts";
import type { InjectionConfig } from "./config.ts";
import { WebhookServer } from "./webhook-server.ts";
import { WebhookTls } from "./webhook-tls.ts";

export interface InjectionOptions {
  /** host:port of the webhook's HTTPS listener, e.g. ":9443". */
  address: string;
  config: InjectionConfig;
  /** The kubernetes.io/tls Secret with the serving certificate (cert-manager's, or ours). */
  certificateSecret: { namespace: string; name: string };
  /** Absent: cert-manager issues the certificate. Present: the operator does, and publishes the caBundle. */
  selfManaged?: { configurationName: string; hosts: readonly string[]; policy?: Partial<Omit<CertificatePolicy, "hosts">> };
}

export interface RunningInjection {
  readonly port: number;
  readonly server: WebhookServer;
  readonly readiness: ReadinessCheck;
  stop(): Promise<void>;
}

export async function startInjection(deps: {
  kubeConfig: KubeConfig;
  logger: Logger;
  registry: Registry;
  auths: ObjectCache;
  serviceAccounts: ObjectCache;
  options: InjectionOptions;
  instance?: string;
}): Promise<RunningInjection> {
  const { options } = deps;
  const log = deps.logger.child({ component: "injection" });
  const client = new KubeClient(deps.kubeConfig);
  const authPlural = KINDS.find((k) => k.kind === "DaguAuth")!.plural;
  const fromApi = async (path: string): Promise<KubeObject | undefined> => {
    try {
      return await client.request<KubeObject>("GET", path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };
  const lookups: InjectionLookups = {
    daguAuth: async (namespace, name) => deps.auths.get(namespace, name) ?? (await fromApi(resourcePath({ group: GROUP, version: VERSION, plural: authPlural }, { namespace, name }))),
    serviceAccount: async (namespace, name) => deps.serviceAccounts.get(namespace, name) ?? (await fromApi(resourcePath({ group: "", version: "v1", plural: "serviceaccounts" }, { namespace, name }))),
  };
  const { host, port } = parseAddress(options.address);
  const server = new WebhookServer({ host: host ?? "0.0.0.0", port, lookups, config: options.config, logger: log, registry: deps.registry, ...(deps.instance ? { instance: deps.instance } : {}) });
  const tls = new WebhookTls({
    kubeConfig: deps.kubeConfig,
    namespace: options.certificateSecret.namespace,
    secretName: options.certificateSecret.name,
    ...(options.selfManaged
      ? { selfManaged: { configurationName: options.selfManaged.configurationName, policy: { ...DEFAULT_POLICY, ...options.selfManaged.policy, hosts: options.selfManaged.hosts } } }
      : {}),
    logger: log,
    onCertificate: (certificate) => server.useCertificate(certificate),
  });
  const address = await server.listen();
  // Not awaited: the API server may be slow to answer at start, and the listener already refuses
  // handshakes until a certificate is there (readiness says so meanwhile).
  void tls.start().catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, "webhook certificate: watch failed to start"));
  log.info({ address: `${address.address}:${address.port}`, certificates: options.selfManaged ? "self-managed" : "cert-manager" }, "injection webhook listening");
  return {
    port: address.port,
    server,
    readiness: { name: "injection-webhook-certificate", check: () => server.hasCertificate || "no serving certificate loaded yet" },
    stop: async () => {
      await tls.stop();
      await server.close();
    },
  };
}
