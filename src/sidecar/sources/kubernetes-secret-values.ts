// Values of named Secrets, each followed by a watch selecting it by name (the sidecar's Role names
// them): the keys and CAs of the remote nodes (remote-nodes.ts). The set follows the credentials
// document; a Secret it no longer names stops being watched.
import type { Logger } from "pino";
import type { KubeConfig } from "../../common/kube/config.ts";
import { Informer } from "../../common/kube/informer.ts";
import type { SecretValues } from "../proxy/remote-nodes.ts";

const SECRETS = { group: "", version: "v1", plural: "secrets" };

export class KubernetesSecretValues implements SecretValues {
  readonly #o: { kubeConfig: KubeConfig; namespace: string; logger: Logger };
  readonly #watches = new Map<string, Informer>();

  constructor(options: { kubeConfig: KubeConfig; namespace: string; logger: Logger }) {
    this.#o = options;
  }

  follow(secretNames: readonly string[]): void {
    const wanted = new Set(secretNames);
    for (const [name, informer] of this.#watches) {
      if (wanted.has(name)) continue;
      this.#watches.delete(name);
      void informer.stop();
    }
    for (const name of wanted) {
      if (this.#watches.has(name)) continue;
      const informer = new Informer({ kubeConfig: this.#o.kubeConfig, resource: SECRETS, namespace: this.#o.namespace, fieldSelector: `metadata.name=${name}`, resyncPeriodMs: 0, logger: this.#o.logger });
      this.#watches.set(name, informer.start());
    }
  }

  value(secretName: string, key: string): string | undefined {
    const secret = this.#watches.get(secretName)?.get(this.#o.namespace, secretName);
    const encoded = (secret?.data as Record<string, string> | undefined)?.[key];
    return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
  }

  async stop(): Promise<void> {
    const all = [...this.#watches.values()];
    this.#watches.clear();
    await Promise.all(all.map((i) => i.stop()));
  }
}
