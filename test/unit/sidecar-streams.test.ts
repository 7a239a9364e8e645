// Open streams checked again (src/sidecar/streams.ts): ended when the credential no longer authenticates,
// when its role no longer suffices, or when the check itself fails (fail closed); kept otherwise.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Role } from "../../src/api/common.ts";
import type { AuthRequest, AuthResult } from "../../src/sidecar/auth/authenticators.ts";
import type { CredentialSnapshot } from "../../src/sidecar/credentials/credential-store.ts";
import { OpenStreams } from "../../src/sidecar/auth/open-streams.ts";

const snapshot = {} as CredentialSnapshot;
const as = (role: Role): AuthResult => ({ ok: true, method: "jwt", principal: { kind: "user", id: role, username: role, role } });

test("a stream is ended when its credential fails, its role is too low, or the check throws; the others are kept", async () => {
  const answers = new Map<string, AuthResult | "throw">([
    ["kept", as("viewer")],
    ["revoked", { ok: false, status: 401, reason: "jwt_user_disabled" }],
    ["demoted", as("viewer")],
    ["broken", "throw"],
  ]);
  const ended: string[] = [];
  const reasons: string[] = [];
  const streams = new OpenStreams(
    async (_s, request: AuthRequest) => {
      const answer = answers.get(request.authorization!)!;
      if (answer === "throw") throw new Error("boom");
      return answer;
    },
    (reason) => reasons.push(reason),
  );
  for (const [name, minRole] of [["kept", "viewer"], ["revoked", "viewer"], ["demoted", "admin"], ["broken", "viewer"]] as const) {
    streams.add({ credential: { authorization: name, queryToken: undefined, clientAddress: "127.0.0.1" }, minRole, end: () => ended.push(name) });
  }
  await streams.check(snapshot);
  assert.deepEqual(ended.sort(), ["broken", "demoted", "revoked"]);
  assert.deepEqual(reasons.sort(), ["jwt_user_disabled", "needs_admin", "recheck_failed"]);
  assert.equal(streams.size, 1);
  await streams.check(snapshot);
  assert.equal(ended.length, 3, "each is ended once");
});

test("a stream that ended by itself is forgotten; no snapshot checks nothing", async () => {
  let asked = 0;
  const streams = new OpenStreams(async () => (asked++, as("admin")), () => undefined);
  const forget = streams.add({ credential: { authorization: "x", queryToken: undefined, clientAddress: "" }, minRole: "viewer", end: () => assert.fail("not ended") });
  await streams.check(undefined);
  assert.equal(asked, 0);
  forget();
  await streams.check(snapshot);
  assert.equal(asked, 0);
  assert.equal(streams.size, 0);
});
