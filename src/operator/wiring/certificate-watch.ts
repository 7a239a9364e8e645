// cert-manager is optional: a cache of a kind the API does not serve would never sync, so Certificates
// are watched only once discovery finds the kind (polled every minute until then). When it appears after
// the start, the DaguAuths that name an issuer (and said CertManagerMissing) are reconciled at once, not
// at the next resync.
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { KubeClient, KubeObject } from "../../common/kube/client.ts";
import type { Informer } from "../../common/kube/informer.ts";
import { keyOf, type ObjectCache } from "../context.ts";

const CERT_MANAGER_POLL_MS = 60_000;

export interface CertificateWatchOptions {
  client: Pick<KubeClient, "resolve">;
  certificates: Pick<Informer, "start">;
  auths: ObjectCache;
  enqueueAuth(key: string): void;
  log: Pick<Logger, "info">;
}

/** Starts polling; returns what stops it. */
export function watchCertificatesWhenServed(options: CertificateWatchOptions): { stop(): void } {
  const stop = new AbortController();
  void poll(options, stop.signal);
  return { stop: () => stop.abort() };
}

async function poll(options: CertificateWatchOptions, signal: AbortSignal): Promise<void> {
  const { client, certificates, auths, log } = options;
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await client.resolve("cert-manager.io/v1", "Certificate");
      if (signal.aborted) return;
      certificates.start();
      log.info("cert-manager's Certificate kind is served; watching Certificates");
      if (attempt > 0) for (const auth of auths.list()) if (namesIssuer(auth)) options.enqueueAuth(keyOf(auth));
      return;
    } catch (err) {
      if (attempt === 0) log.info({ err: err instanceof Error ? err.message : String(err) }, "cert-manager's Certificate kind is not served; checking again every minute");
    }
    await sleep(CERT_MANAGER_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
}

const namesIssuer = (auth: KubeObject) => (auth.spec as { tls?: { issuerRef?: unknown } } | undefined)?.tls?.issuerRef ? true : false;
