// The provider's configuration for the settings in force: discovered once (and again hourly, in the
// background, keeping the old one until the new one is read), never per request. The JWKS is cached by
// openid-client per configuration (re-read after 5 minutes, or on a key id it does not know once the copy
// is a minute old). A provider that cannot be reached is asked again after a backoff (5 s doubling to
// 5 minutes), not by every click on the SSO button.
import type { Configuration } from "openid-client";
import type { OidcSettings } from "../../../api/oidc.ts";
import { describeProviderError, discoverProvider } from "../../../common/oidc-client.ts";

const REFRESH_MS = 60 * 60_000;
const FIRST_RETRY_MS = 5_000;
const MAX_RETRY_MS = 5 * 60_000;

export type ProviderState = { ok: true; config: Configuration } | { ok: false; error: string };

interface Entry {
  key: string;
  config?: Configuration;
  discoveredAt: number;
  error?: string;
  retryMs: number;
  nextAttempt: number;
  pending?: Promise<void>;
}

export class ProviderCache {
  #entry: Entry | undefined;
  readonly #onError: (error: string) => void;

  constructor(onError: (error: string) => void) {
    this.#onError = onError;
  }

  /** The configuration now; waits only for a discovery already due (first use, or after a backoff). */
  async get(settings: OidcSettings): Promise<ProviderState> {
    const entry = this.#entryFor(settings);
    const now = Date.now();
    if (entry.config) {
      if (now - entry.discoveredAt >= REFRESH_MS && !entry.pending) void this.#discover(entry, settings);
      return { ok: true, config: entry.config };
    }
    if (entry.pending) await entry.pending;
    else if (now >= entry.nextAttempt) await this.#discover(entry, settings);
    return entry.config ? { ok: true, config: entry.config } : { ok: false, error: entry.error ?? "not discovered yet" };
  }

  /** Starts discovery for settings just loaded, so the first click does not wait. */
  warm(settings: OidcSettings): void {
    const entry = this.#entryFor(settings);
    if (!entry.config && !entry.pending && Date.now() >= entry.nextAttempt) void this.#discover(entry, settings);
  }

  #entryFor(settings: OidcSettings): Entry {
    const key = JSON.stringify([settings.issuer, settings.clientId, settings.clientSecret ?? "", settings.caBundle ?? ""]);
    if (this.#entry?.key !== key) this.#entry = { key, discoveredAt: 0, retryMs: FIRST_RETRY_MS, nextAttempt: 0 };
    return this.#entry;
  }

  #discover(entry: Entry, settings: OidcSettings): Promise<void> {
    entry.pending = discoverProvider({ issuer: settings.issuer, clientId: settings.clientId, clientSecret: settings.clientSecret, caBundle: settings.caBundle })
      .then((config) => {
        Object.assign(entry, { config, discoveredAt: Date.now(), error: undefined, retryMs: FIRST_RETRY_MS });
      })
      .catch((error: unknown) => {
        entry.error = describeProviderError(error);
        entry.nextAttempt = Date.now() + entry.retryMs;
        entry.retryMs = Math.min(entry.retryMs * 2, MAX_RETRY_MS);
        // A refresh that fails keeps the configuration read before.
        if (this.#entry === entry) this.#onError(entry.error);
      })
      .finally(() => {
        entry.pending = undefined;
      });
    return entry.pending;
  }
}
