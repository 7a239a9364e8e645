// The webhook's serving certificate at run time, from one kubernetes.io/tls Secret watched through
// the API (every replica serves what it holds, swapped in place when it changes):
// - cert-manager: a Certificate issues into the Secret and cainjector fills the webhook
//   configuration's caBundle; the operator only reads.
// - self-managed: the operator plans the CA and the serving certificate (certificate-plan.ts), writes
//   them into the Secret (owned by the webhook configuration, so it goes when the chart is uninstalled)
//   and keeps the configuration's caBundle equal to the bundle. Every replica may do it: writes are
//   conditional on the resourceVersion, and the plan is the same whoever makes it.
import { X509Certificate, createPrivateKey, createPublicKey } from "node:crypto";
import type { Logger } from "pino";
import { KubeClient, isConflict, isNotFound, resourcePath, type KubeObject } from "../../common/kube/client.ts";
import type { KubeConfig } from "../../common/kube/config.ts";
import { Informer } from "../../common/kube/informer.ts";
import { FIELD_MANAGER } from "../runtime/apply.ts";
import { bundleText, materialFromBundle, planCertificates, type CertificateMaterial, type CertificatePolicy } from "./certificate-plan.ts";
import type { ServingCertificate } from "./webhook-server.ts";

const SECRETS = { group: "", version: "v1", plural: "secrets" };
export const WEBHOOK_CONFIGURATIONS = { group: "admissionregistration.k8s.io", version: "v1", plural: "mutatingwebhookconfigurations" };
const CA_KEY = "ca.key";

export interface WebhookTlsOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  secretName: string;
  /** Issue and rotate here, and publish the caBundle into this MutatingWebhookConfiguration. */
  selfManaged?: { configurationName: string; policy: CertificatePolicy };
  logger: Logger;
  onCertificate(certificate: ServingCertificate): void;
  now?: () => Date;
}

type WebhookConfiguration = KubeObject & { webhooks?: { name: string; clientConfig?: { caBundle?: string } }[] };

export class WebhookTls {
  readonly #o: WebhookTlsOptions;
  readonly #client: KubeClient;
  readonly #secret: Informer;
  readonly #configuration: Informer<WebhookConfiguration> | undefined;
  #queue: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #waitingLogged = false;

  constructor(options: WebhookTlsOptions) {
    this.#o = options;
    this.#client = new KubeClient(options.kubeConfig);
    this.#secret = new Informer({ kubeConfig: options.kubeConfig, resource: SECRETS, namespace: options.namespace, fieldSelector: `metadata.name=${options.secretName}`, resyncPeriodMs: 0, logger: options.logger });
    const changed = () => this.#enqueue();
    this.#secret.onAdd(changed);
    this.#secret.onUpdate(changed);
    this.#secret.onDelete(changed);
    if (options.selfManaged) {
      this.#configuration = new Informer<WebhookConfiguration>({
        kubeConfig: options.kubeConfig,
        resource: WEBHOOK_CONFIGURATIONS,
        fieldSelector: `metadata.name=${options.selfManaged.configurationName}`,
        resyncPeriodMs: 0,
        logger: options.logger,
      });
      this.#configuration.onAdd(changed);
      this.#configuration.onUpdate(changed);
      this.#configuration.onDelete(changed);
    }
  }

  async start(): Promise<void> {
    this.#secret.start();
    this.#configuration?.start();
    await Promise.all([this.#secret.hasSynced, this.#configuration?.hasSynced]);
    this.#enqueue();
    await this.#queue;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await Promise.all([this.#secret.stop(), this.#configuration?.stop()]);
    await this.#queue;
  }

  #enqueue(): void {
    if (this.#stopped || !this.#secret.synced || (this.#configuration && !this.#configuration.synced)) return;
    this.#queue = this.#queue
      .then(() => this.#sync())
      .catch((err: unknown) => {
        this.#o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "webhook certificate: sync failed; trying again in 5 s");
        this.#schedule(new Date(Date.now() + 5000));
      });
  }

  #schedule(at: Date): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#enqueue(), Math.min(Math.max(at.getTime() - Date.now(), 0), 2 ** 31 - 1));
    this.#timer.unref();
  }

  async #sync(): Promise<void> {
    const secret = this.#secret.get(this.#o.namespace, this.#o.secretName);
    const stored = readMaterial(secret);
    if (stored.serving) this.#o.onCertificate(stored.serving);
    const self = this.#o.selfManaged;
    if (!self) {
      if (!stored.serving) this.#o.logger.warn({ secret: `${this.#o.namespace}/${this.#o.secretName}` }, "webhook certificate: the Secret holds no usable tls.crt and tls.key yet (cert-manager issues it)");
      return;
    }
    const configuration = this.#configuration!.get(undefined, self.configurationName);
    if (!configuration) {
      if (!this.#waitingLogged) this.#o.logger.warn({ configuration: self.configurationName }, "webhook certificate: waiting for the MutatingWebhookConfiguration to exist");
      this.#waitingLogged = true;
      return;
    }
    this.#waitingLogged = false;
    const plan = planCertificates(stored.material, (this.#o.now ?? (() => new Date()))(), self.policy);
    let material = stored.material;
    if (plan.changes.length > 0) {
      const written = await this.#write(secret, configuration, plan.material);
      if (!written) return; // another replica wrote first: its event brings us back
      material = plan.material;
      this.#o.logger.info({ secret: `${this.#o.namespace}/${this.#o.secretName}`, changes: plan.changes, caCertificates: plan.material.caBundle.length }, "webhook certificate: rotated");
      this.#o.onCertificate({ cert: material.cert, key: material.key });
    }
    if (material) await this.#publish(configuration, bundleText(material));
    this.#schedule(plan.nextAt);
  }

  /** Creates or replaces the Secret (conditional on what was read); false on a conflict. */
  async #write(live: KubeObject | undefined, owner: KubeObject, material: CertificateMaterial): Promise<boolean> {
    const { namespace, secretName } = this.#o;
    const data = {
      "tls.crt": b64(material.cert),
      "tls.key": b64(material.key),
      "ca.crt": b64(bundleText(material)),
      [CA_KEY]: b64(material.caKey),
    };
    const body: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        name: secretName,
        namespace,
        labels: { "app.kubernetes.io/managed-by": "dagu-auth-operator", "app.kubernetes.io/component": "injection-webhook" },
        // Cluster-scoped owner: deleted with the webhook configuration (helm uninstall).
        ownerReferences: [{ apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", name: owner.metadata.name!, uid: owner.metadata.uid! }],
        ...(live ? { resourceVersion: live.metadata.resourceVersion } : {}),
      },
      type: "kubernetes.io/tls",
      data,
    };
    const collection = resourcePath(SECRETS, { namespace });
    try {
      if (live) await this.#client.request("PUT", `${collection}/${encodeURIComponent(secretName)}`, { body, query: { fieldManager: FIELD_MANAGER } });
      else await this.#client.request("POST", collection, { body, query: { fieldManager: FIELD_MANAGER } });
      return true;
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  /** Sets every webhook's caBundle of the configuration to the bundle, where it differs. */
  async #publish(configuration: WebhookConfiguration, bundle: string): Promise<void> {
    const caBundle = b64(bundle);
    const ops: unknown[] = [];
    (configuration.webhooks ?? []).forEach((w, i) => {
      if (w.clientConfig?.caBundle === caBundle) return;
      // The test makes the patch fail, not land on another webhook, if the list changed meanwhile.
      ops.push({ op: "test", path: `/webhooks/${i}/name`, value: w.name }, { op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: caBundle });
    });
    if (ops.length === 0) return;
    const path = resourcePath(WEBHOOK_CONFIGURATIONS, { name: configuration.metadata.name! });
    await this.#client.request("PATCH", path, { body: ops, contentType: "application/json-patch+json", query: { fieldManager: FIELD_MANAGER } });
    this.#o.logger.info({ configuration: configuration.metadata.name, webhooks: ops.length / 2 }, "webhook certificate: caBundle published");
  }
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

/** What a Secret holds: a serving pair that parses and matches, and (self-managed) the whole material. */
export function readMaterial(secret: KubeObject | undefined): { serving?: ServingCertificate; material?: CertificateMaterial } {
  const data = (secret?.data ?? {}) as Record<string, string>;
  const text = (k: string) => (data[k] ? Buffer.from(data[k], "base64").toString("utf8") : undefined);
  const cert = text("tls.crt");
  const key = text("tls.key");
  if (!cert || !key) return {};
  let serving: ServingCertificate | undefined;
  try {
    const x = new X509Certificate(cert);
    const matches = x.publicKey.export({ type: "spki", format: "der" }).equals(createPublicKey(createPrivateKey(key)).export({ type: "spki", format: "der" }));
    if (matches) serving = { cert, key };
  } catch {
    serving = undefined;
  }
  const ca = text("ca.crt");
  const caKey = text(CA_KEY);
  return { ...(serving ? { serving } : {}), ...(ca && caKey ? { material: materialFromBundle(ca, caKey, cert, key) } : {}) };
}
