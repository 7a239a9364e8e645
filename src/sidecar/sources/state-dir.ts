// `--state-dir`: what a standalone sidecar must remember across restarts (a generated token secret,
// the hash of the configured password with its time, self-service password changes, the users, API
// keys and webhooks created through Dagu's API, and the users single sign-on created). One JSON file,
// replaced atomically (write a temporary file with mode 0600, fsync, rename), writes serialized.
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { PasswordChange, PasswordChanges, SsoUsers } from "../../api/credentials.ts";
import { StandaloneRecords } from "./standalone-records.ts";

export const STATE_FILE = "sidecar-state.json";

const State = z.object({
  version: z.literal(1),
  /** base64url of a generated HS256 secret (used when the config sets none). */
  tokenSecret: z.string().optional(),
  /** The configured password's hash and when it was first seen, keyed by user id. */
  configPasswords: z.record(z.string(), PasswordChange).default({}),
  passwordChanges: PasswordChanges.default({}),
  /** Users, API keys and webhooks created through Dagu's API (standalone-records.ts). */
  ...StandaloneRecords,
  /** Users created by single sign-on (auth.oidc), keyed by id. */
  ssoUsers: SsoUsers.default({}),
});
export type SidecarState = z.infer<typeof State>;

const EMPTY: SidecarState = { version: 1, configPasswords: {}, passwordChanges: {}, users: {}, apiKeys: {}, webhooks: {}, ssoUsers: {} };

export class StateDir {
  readonly dir: string;
  #state: SidecarState = EMPTY;
  #writes: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
  }

  get file(): string {
    return join(this.dir, STATE_FILE);
  }

  /** Reads the state; a missing file is an empty state, a corrupt one an error (never silently reset). */
  async load(): Promise<SidecarState> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return (this.#state = EMPTY);
      throw new Error(`cannot read ${this.file}: ${(error as Error).message}`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new Error(`${this.file} is not valid JSON; fix or remove it`);
    }
    const parsed = State.safeParse(json);
    if (!parsed.success) {
      throw new Error(`${this.file} is not a valid sidecar state: ${z.prettifyError(parsed.error)}`);
    }
    return (this.#state = parsed.data);
  }

  current(): SidecarState {
    return this.#state;
  }

  /** Applies `change` to the latest state and writes it; calls are serialized. */
  update(change: (state: SidecarState) => SidecarState): Promise<SidecarState> {
    const next = this.#writes.then(async () => {
      const state = change(this.#state);
      await writeAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`);
      this.#state = state;
      return state;
    });
    this.#writes = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }
}

/** Writes `content` to `file` so that readers see the old or the new file, never a torn one. */
export async function writeAtomic(file: string, content: string): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", 0o600);
  try {
    await handle.writeFile(content, "utf8");
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, file);
}
