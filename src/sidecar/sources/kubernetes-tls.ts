// The serving certificate from a kubernetes.io/tls Secret (the one cert-manager
// issues for the DaguAuth), read through an API watch: a renewed certificate is
// installed for new connections within about a second, open ones keep theirs.
import type { KubeConfig } from "../../common/kube/config.ts";
import type { Logger } from "pino";
import type { SecureContextOptions } from "node:tls";
import type { KubeObject } from "../../common/kube/client.ts";
import { Informer } from "../../common/kube/informer.ts";
import { checkedPair, type TlsProvider } from "../listener/tls.ts";

export interface KubernetesTlsOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  secretName: string;
  logger: Logger;
  /** How long load() waits for the Secret to exist (cert-manager may still be issuing). */
  waitMs?: number;
}

function pairOf(secret: KubeObject | undefined): SecureContextOptions | Error {
  const data = secret?.data as Record<string, string> | undefined;
  if (!data?.["tls.crt"] || !data["tls.key"]) return new Error("the Secret has no tls.crt and tls.key yet");
  try {
    return checkedPair(Buffer.from(data["tls.crt"], "base64"), Buffer.from(data["tls.key"], "base64"));
  } catch (error) {
    return new Error(`tls.crt and tls.key do not form a usable pair: ${(error as Error).message}`);
  }
}

export function kubernetesTlsProvider(options: KubernetesTlsOptions): TlsProvider {
  const informer = new Informer({
    kubeConfig: options.kubeConfig,
    resource: { group: "", version: "v1", plural: "secrets" },
    namespace: options.namespace,
    fieldSelector: `metadata.name=${options.secretName}`,
    resyncPeriodMs: 0,
    logger: options.logger,
  });
  const current = () => pairOf(informer.get(options.namespace, options.secretName));
  const description = `secret:${options.namespace}/${options.secretName}`;
  return {
    description,
    async load() {
      informer.start();
      await informer.hasSynced;
      const deadline = Date.now() + (options.waitMs ?? 120_000);
      for (;;) {
        const pair = current();
        if (!(pair instanceof Error)) return pair;
        if (Date.now() > deadline) throw new Error(`${description}: ${pair.message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    },
    watch(onChange, onError) {
      const changed = () => {
        const pair = current();
        if (pair instanceof Error) onError(new Error(`${description}: ${pair.message}`));
        else onChange(pair);
      };
      const offs = [informer.onAdd(changed), informer.onUpdate(changed)];
      return {
        close() {
          for (const off of offs) off();
          void informer.stop();
        },
      };
    },
  };
}
