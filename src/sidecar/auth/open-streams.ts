// Long-lived answers (SSE, MCP's server stream, WebSockets) outlive the check made when they opened. Each is
// kept here with the credential it was opened with, and checked again whenever new credentials are in force
// and every CHECK_INTERVAL_MS (tokens and keys expire by themselves): a stream whose credential no longer
// authenticates, or whose role no longer suffices, is ended. Dagu ends a stream only when it is closed.
import type { Role } from "../../api/common.ts";
import type { AuthRequest, AuthResult } from "./authenticators.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";
import { roleAtLeast } from "../routes/roles.ts";

export const CHECK_INTERVAL_MS = 15_000;

export interface OpenStream {
  /** What authenticated the stream (the Authorization header or the `?token=`), to authenticate it again. */
  readonly credential: AuthRequest;
  readonly minRole: Role;
  /** Ends the stream at once (the client's connection, and so the request to Dagu). */
  end(): void;
}

export type Reauthenticate = (snapshot: CredentialSnapshot, request: AuthRequest) => Promise<AuthResult>;

export class OpenStreams {
  readonly #open = new Set<OpenStream>();
  readonly #authenticate: Reauthenticate;
  readonly #ended: (reason: string) => void;
  #checking: Promise<void> | undefined;
  #again = false;

  constructor(authenticate: Reauthenticate, ended: (reason: string) => void) {
    this.#authenticate = authenticate;
    this.#ended = ended;
  }

  /** Keeps `stream` until the returned function is called (when it ends by itself). */
  add(stream: OpenStream): () => void {
    this.#open.add(stream);
    return () => void this.#open.delete(stream);
  }

  get size(): number {
    return this.#open.size;
  }

  /** Checks every open stream against `snapshot`; a check asked for while one runs runs once more after it. */
  check(snapshot: CredentialSnapshot | undefined): Promise<void> {
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        if (snapshot) await this.#checkAll(snapshot);
      } while (this.#again);
    })().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #checkAll(snapshot: CredentialSnapshot): Promise<void> {
    for (const stream of [...this.#open]) {
      let reason: string | undefined;
      try {
        const auth = await this.#authenticate(snapshot, stream.credential);
        if (!auth.ok) reason = auth.reason;
        else if (!roleAtLeast(auth.principal.role, stream.minRole)) reason = `needs_${stream.minRole}`;
      } catch {
        reason = "recheck_failed"; // fail closed
      }
      if (reason !== undefined && this.#open.delete(stream)) {
        stream.end();
        this.#ended(reason);
      }
    }
  }
}
