// HTTPS from a certificate and key file (`--tls-cert/--tls-key`, or Dagu's DAGU_CERT_FILE and
// DAGU_KEY_FILE). The files are watched; a new, valid pair is installed with setSecureContext, so new
// connections get the new certificate while open ones keep theirs. A pair that does not load (a
// half-written rotation, a key that does not match) keeps the previous one.
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { Server as HttpsServer } from "node:https";
import { dirname } from "node:path";
import { createSecureContext, type SecureContextOptions } from "node:tls";

export const TLS_MIN_VERSION = "TLSv1.2";

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export async function loadTlsPair(files: TlsFiles): Promise<SecureContextOptions> {
  const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  return checkedPair(cert, key);
}

export interface TlsWatcher {
  close(): void;
}

/** Where the serving certificate comes from: files, or a kubernetes.io/tls Secret watched through the API. */
export interface TlsProvider {
  /** For logs, e.g. the certificate file or the Secret's name (never its content). */
  readonly description: string;
  /** The first pair; rejects when there is none or it does not load. */
  load(): Promise<SecureContextOptions>;
  /** Calls `onChange` with every later valid pair; an invalid one goes to `onError` and the old one stays. */
  watch(onChange: (options: SecureContextOptions) => void, onError: (error: Error) => void): TlsWatcher;
}

/** A pair that Node accepts (the key matches the certificate), with our minimum version. */
export function checkedPair(cert: Buffer | string, key: Buffer | string): SecureContextOptions {
  const options: SecureContextOptions = { cert, key, minVersion: TLS_MIN_VERSION };
  createSecureContext(options); // throws on a mismatch or a pair that does not parse
  return options;
}

export function fileTlsProvider(files: TlsFiles): TlsProvider {
  return {
    description: files.certFile,
    load: () => loadTlsPair(files),
    watch: (onChange, onError) =>
      watchTlsFiles({ setSecureContext: onChange }, files, { onReload: () => undefined, onError }),
  };
}

/** Reloads the pair when either file (or its directory, for Kubernetes' symlink swaps) changes. */
export function watchTlsFiles(
  server: Pick<HttpsServer, "setSecureContext">,
  files: TlsFiles,
  hooks: { onReload: () => void; onError: (error: Error) => void },
  pollMs = 1000,
): TlsWatcher {
  let last = "";
  let timer: NodeJS.Timeout | undefined;
  const fingerprint = async () => {
    const [c, k] = await Promise.all([stat(files.certFile).catch(() => undefined), stat(files.keyFile).catch(() => undefined)]);
    return `${c?.ino}:${c?.mtimeMs}:${c?.size}|${k?.ino}:${k?.mtimeMs}:${k?.size}`;
  };
  const reload = async () => {
    const now = await fingerprint();
    if (now === last) return;
    try {
      server.setSecureContext(await loadTlsPair(files));
      last = now;
      hooks.onReload();
    } catch (error) {
      last = now; // do not retry the same broken pair every second
      hooks.onError(error as Error);
    }
  };
  void fingerprint().then((f) => (last = f));
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), 50);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(files.certFile), dirname(files.keyFile)])) {
    try {
      const w = watch(dir, { persistent: false }, schedule);
      w.on("error", () => undefined);
      watchers.push(w);
    } catch {
      // the poll below still notices
    }
  }
  const poll = setInterval(schedule, pollMs);
  poll.unref();
  return {
    close() {
      for (const w of watchers) w.close();
      clearInterval(poll);
      clearTimeout(timer);
    },
  };
}
