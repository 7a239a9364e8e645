// Calls back when a file may have changed: a watch on its directory (editors and Kubernetes volume updates
// replace files, which a watch on the file itself loses) plus a stat poll as a safety net, debounced, so a
// change is noticed within about a second. The caller reads the file and decides whether it changed.
import { watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname } from "node:path";

export class WatchedFile {
  readonly #file: string;
  readonly #onChange: () => void;
  readonly #pollMs: number;
  #lastStat = "";
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(file: string, onChange: () => void, pollMs = 1000) {
    this.#file = file;
    this.#onChange = onChange;
    this.#pollMs = pollMs;
  }

  /** The first poll always calls back once: a change between the caller's first read and the watch is not lost. */
  start(): void {
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, () => this.#schedule());
      this.#watcher.on("error", () => undefined); // the poll keeps working
    } catch {
      // Directory not watchable (e.g. missing): the poll still notices when the file appears.
    }
    this.#poll = setInterval(() => void this.#pollOnce(), this.#pollMs);
    this.#poll.unref();
  }

  stop(): void {
    this.#stopped = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }

  #schedule(): void {
    if (this.#stopped) return; // a poll still in its stat() when stop() ran
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(this.#onChange, 25);
    this.#debounce.unref();
  }

  async #statKey(): Promise<string> {
    const s = await stat(this.#file).catch(() => undefined);
    return s ? `${s.ino}:${s.size}:${s.mtimeMs}` : "missing";
  }

  async #pollOnce(): Promise<void> {
    const key = await this.#statKey();
    if (key !== this.#lastStat) {
      this.#lastStat = key;
      this.#schedule();
    }
  }
}
