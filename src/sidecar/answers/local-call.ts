// A request the sidecar answers itself (the auth API, management writes): what its handler is given
// and what it reports back for the audit log.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Principal } from "../auth/authenticators.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";

export interface LocalCall {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly operationId: string;
  readonly params: Readonly<Record<string, string>>;
  readonly snapshot: CredentialSnapshot;
  readonly principal: Principal | undefined;
  readonly clientAddress: string;
}

/** What happened, for the audit log (the HTTP status is logged separately). */
export interface LocalOutcome {
  /** The user a login or password change was about, when known. */
  readonly subject?: string;
  readonly detail?: string;
}
