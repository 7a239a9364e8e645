// Issue 15.2: failed logins must not lock a user out for everyone. On the real sidecar in front of a real
// Dagu; each client is its own loopback source address (127.0.x.y), so the sidecar sees distinct peers
// exactly as it would see distinct machines. Login settings: 3 attempts, 60 s window, 300 s lockout.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { eventually } from "../harness/per-test.ts";
import type { SidecarInstance } from "../harness/sidecar.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

const PASSWORDS = { admin: "admin-password-1", alice: "alice-password-1", bob: "bob-password-1" } as const;
let stack: SidecarStack;
let sidecar: SidecarInstance;
let prefix: string;

before(async () => {
  stack = await startSidecarStack({
    credentials: {
      users: [
        { username: "admin", password: PASSWORDS.admin, role: "admin" },
        { username: "alice", password: PASSWORDS.alice, role: "viewer" },
        { username: "bob", password: PASSWORDS.bob, role: "viewer" },
      ],
      login: { maxAttempts: 3, windowSeconds: 60, lockoutSeconds: 300 },
    },
  });
  ({ sidecar, prefix } = stack);
});

after(() => stack?.stop());

interface LoginResult {
  status: number;
  token?: string;
}

/** POST /auth/login from `address` (a loopback source address), optionally with extra headers. */
function loginFrom(address: string, username: string, password: string, headers: Record<string, string> = {}): Promise<LoginResult> {
  const body = JSON.stringify({ username, password });
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port: sidecar.port, localAddress: address, method: "POST", path: `${prefix}/auth/login`, agent: false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, token: (JSON.parse(text) as { token?: string }).token }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The token opens Dagu's own API through the sidecar: the login was real. */
async function reachesDagu(token: string | undefined): Promise<number> {
  const r = await fetch(`${sidecar.url}${prefix}/dags`, { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

/** The audit line of the last login of `user` from `client`. */
async function auditOf(user: string, client: string): Promise<Record<string, unknown>> {
  return eventually(`the audit line of ${user} from ${client}`, async () => {
    const lines = sidecar.lines().map((l) => l.audit as Record<string, unknown> | undefined).filter((a) => a?.operation === "login" && a.user === user && a.client === client);
    return lines.at(-1);
  }, 5_000, 20);
}

describe("failed logins lock the guesser, not the user", () => {
  test("attackers hammering admin from their own addresses lock themselves; the owner logs in from another address", async () => {
    const attackers = ["127.0.6.1", "127.0.6.2", "127.0.6.3", "127.0.6.4", "127.0.6.5"];
    const statuses = await Promise.all(
      attackers.map(async (address) => {
        const seen: number[] = [];
        for (let i = 0; i < 6; i++) seen.push((await loginFrom(address, "admin", `guess-${address}-${i}`)).status);
        return seen;
      }),
    );
    for (const seen of statuses) assert.deepEqual(seen, [401, 401, 401, 429, 429, 429], "each attacker: its own 3 failures, then locked");
    // 15 failures from 5 clients put admin "under attack": slowed (a wait before the hash), not locked.
    const owner = await loginFrom("127.0.6.100", "admin", PASSWORDS.admin);
    assert.equal(owner.status, 200, "the owner gets in while admin is being hammered");
    assert.equal(await reachesDagu(owner.token), 200);
    assert.equal((await auditOf("admin", "127.0.6.100")).reason, "slowed");
    assert.equal((await loginFrom("127.0.6.1", "admin", PASSWORDS.admin)).status, 429, "a locked attacker stays locked, right password or not");
  });

  test("behind a shared address (an ingress without trusted proxies) a guesser does not lock the others out", async () => {
    const ingress = "127.0.7.1";
    // Spraying: one wrong password for each of many names, then hammering admin; X-Forwarded-For from an
    // untrusted peer is ignored, so all of this is one client to the sidecar.
    for (let i = 0; i < 20; i++) assert.equal((await loginFrom(ingress, `user${i}`, "Winter2026!", { "x-forwarded-for": `198.51.100.${i}` })).status, 401);
    for (let i = 0; i < 5; i++) await loginFrom(ingress, "admin", `guess-${i}`);
    const alice = await loginFrom(ingress, "alice", PASSWORDS.alice, { "x-forwarded-for": "203.0.113.77" });
    assert.equal(alice.status, 200, "another user behind the same address logs in (slowed, not locked)");
    assert.equal(await reachesDagu(alice.token), 200);
    assert.equal((await auditOf("alice", ingress)).reason, "slowed");
    assert.equal((await loginFrom(ingress, "admin", PASSWORDS.admin)).status, 429, "admin is locked for this address (who is who behind it cannot be told)");
    assert.equal((await loginFrom("127.0.7.2", "admin", PASSWORDS.admin)).status, 200, "but not for another address");
  });

  test("many addresses guessing once each: the user is slowed, clients that failed share a small budget, a fresh client still gets in", async () => {
    // 12 distinct addresses (4 x maxAttempts) fail once each on bob: under attack.
    for (let i = 1; i <= 12; i++) assert.equal((await loginFrom(`127.0.8.${i}`, "bob", `guess-${i}`)).status, 401);
    // They may try again, but together only maxAttempts (3) times per window, however many they are.
    const again: number[] = [];
    for (let i = 1; i <= 6; i++) again.push((await loginFrom(`127.0.8.${i}`, "bob", `again-${i}`)).status);
    assert.deepEqual(again, [401, 401, 401, 429, 429, 429]);
    const owner = await loginFrom("127.0.8.100", "bob", PASSWORDS.bob);
    assert.equal(owner.status, 200);
    assert.equal(await reachesDagu(owner.token), 200);
  });
});
