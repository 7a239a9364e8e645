// `--credentials-file`: the same credentials document the operator materializes, from a file, watched
// (watched-file.ts) so a change is in force within about a second.
import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { z } from "zod";
import { parseCredentials, type Credentials, type SsoUsers } from "../../api/credentials.ts";
import { withSsoUsers } from "../../common/sso-overlay.ts";
import type { CredentialSource, CredentialSourceEvents, SsoUsersChange } from "../credentials/credential-source.ts";
import { applyPasswordChanges } from "../credentials/password-changes.ts";
import { memorySsoUserLog, type PasswordChangeLog, type SsoUserLog } from "./password-change-log.ts";
import { WatchedFile } from "./watched-file.ts";

export interface FileSourceOptions {
  file: string;
  passwordChanges: PasswordChangeLog;
  /** Where users created by single sign-on are kept (default: in memory). */
  ssoUsers?: SsoUserLog;
  /** Stat poll interval (ms). */
  pollMs?: number;
}

export class FileCredentialSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description: string;
  readonly #file: string;
  readonly #changes: PasswordChangeLog;
  readonly #sso: SsoUserLog;
  readonly #watched: WatchedFile;
  #raw: Credentials | undefined;
  /** Why the file's latest content was refused, until a valid one is read. */
  #broken: Error | undefined;
  #current: Credentials | undefined;
  #lastText: string | undefined;
  #reading: Promise<void> = Promise.resolve();

  constructor(options: FileSourceOptions) {
    super();
    this.#file = resolve(options.file);
    this.#changes = options.passwordChanges;
    this.#sso = options.ssoUsers ?? memorySsoUserLog();
    this.#watched = new WatchedFile(this.#file, () => void this.#reload(), options.pollMs);
    this.description = `file:${this.#file}`;
  }

  async start(): Promise<void> {
    await this.#reload();
    this.#watched.start();
  }

  async stop(): Promise<void> {
    this.#watched.stop();
    await this.#reading;
  }

  current(): Credentials | undefined {
    return this.#current;
  }

  async recordPasswordChange(userId: string, passwordHash: string, changedAt: string): Promise<void> {
    await this.#changes.record(userId, passwordHash, changedAt);
    if (this.#raw) this.#publish(this.#raw);
  }

  ssoUsers(): SsoUsers {
    return this.#sso.all();
  }

  async updateSsoUsers<T>(change: SsoUsersChange<T>): Promise<T> {
    const result = await this.#sso.update(change);
    if (this.#raw) this.#publish(this.#raw);
    return result;
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
          this.#invalid(new Error(`cannot read credentials file ${this.#file}: ${code}`));
        }
        return;
      }
      if (text === this.#lastText) return;
      this.#lastText = text;
      const parsed = parseCredentials(text);
      if (!parsed.success) {
        this.#invalid(new Error(`credentials file ${this.#file} is not valid: ${z.prettifyError(parsed.error)}`));
        return;
      }
      this.#broken = undefined;
      this.#raw = parsed.data;
      this.#publish(parsed.data);
    });
    return this.#reading;
  }

  #publish(raw: Credentials): void {
    this.#current = withSsoUsers(applyPasswordChanges(raw, this.#changes.all()), this.#sso.all());
    this.emit("change", this.#current);
    // A password change while the file is broken is in force at once, and readiness stays off.
    if (this.#broken) this.emit("invalid", this.#broken);
  }

  #invalid(error: Error): void {
    this.#broken = error;
    this.emit("invalid", error);
  }
}
