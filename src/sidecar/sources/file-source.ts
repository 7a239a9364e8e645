// `--credentials-file`: the same credentials document the operator materializes, from a file. Watched
// through its directory (editors and Kubernetes volume updates replace files, which a watch on the file
// itself loses), with a one-second stat poll as a safety net, so a change is in force within ~1 s.
import { EventEmitter } from "node:events";
import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { parseCredentials, type Credentials } from "../../api/credentials.ts";
import type { CredentialSource, CredentialSourceEvents } from "../credential-source.ts";
import { applyPasswordChanges } from "../password-changes.ts";
import type { PasswordChangeLog } from "./password-change-log.ts";

export interface FileSourceOptions {
  file: string;
  passwordChanges: PasswordChangeLog;
  /** Stat poll interval (ms). */
  pollMs?: number;
}

export class FileCredentialSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description: string;
  readonly #file: string;
  readonly #changes: PasswordChangeLog;
  readonly #pollMs: number;
  #raw: Credentials | undefined;
  #current: Credentials | undefined;
  #lastText: string | undefined;
  #lastStat = "";
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reading: Promise<void> = Promise.resolve();

  constructor(options: FileSourceOptions) {
    super();
    this.#file = resolve(options.file);
    this.#changes = options.passwordChanges;
    this.#pollMs = options.pollMs ?? 1000;
    this.description = `file:${this.#file}`;
  }

  async start(): Promise<void> {
    await this.#reload();
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, () => this.#schedule());
      this.#watcher.on("error", () => undefined); // the poll keeps working
    } catch {
      // Directory not watchable (e.g. missing): the poll below still notices when it appears.
    }
    this.#poll = setInterval(() => void this.#pollOnce(), this.#pollMs);
    this.#poll.unref();
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
    await this.#reading;
  }

  current(): Credentials | undefined {
    return this.#current;
  }

  async recordPasswordChange(userId: string, passwordHash: string, changedAt: string): Promise<void> {
    await this.#changes.record(userId, passwordHash, changedAt);
    if (this.#raw) this.#publish(this.#raw);
  }

  #schedule(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.#reload(), 25);
  }

  async #pollOnce(): Promise<void> {
    const s = await stat(this.#file).catch(() => undefined);
    const key = s ? `${s.ino}:${s.size}:${s.mtimeMs}` : "missing";
    if (key !== this.#lastStat) {
      this.#lastStat = key;
      this.#schedule();
    }
  }

  /** Reads and parses the file; reads are serialized so an older read never wins. */
  #reload(): Promise<void> {
    this.#reading = this.#reading.then(async () => {
      let text: string;
      try {
        text = await readFile(this.#file, "utf8");
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "error";
        if (this.#lastText !== `\0${code}`) {
          this.#lastText = `\0${code}`;
          this.emit("invalid", new Error(`cannot read credentials file ${this.#file}: ${code}`));
        }
        return;
      }
      if (text === this.#lastText) return;
      this.#lastText = text;
      const parsed = parseCredentials(text);
      if (!parsed.success) {
        this.emit("invalid", new Error(`credentials file ${this.#file} is not valid: ${z.prettifyError(parsed.error)}`));
        return;
      }
      this.#raw = parsed.data;
      this.#publish(parsed.data);
    });
    return this.#reading;
  }

  #publish(raw: Credentials): void {
    this.#current = applyPasswordChanges(raw, this.#changes.all());
    this.emit("change", this.#current);
  }
}
