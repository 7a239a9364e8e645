// Single sign-on in the cluster, on real parts: a DaguAuth with spec.oidc applied to the real API server,
// the operator (under its own RBAC) materializing it, two sidecar replicas in --kubernetes mode under the
// ServiceAccount the operator made, a real Dagu behind them, and a real OpenID provider. A user created
// by one replica's SSO login is known to the other within about a second; status lists SSO users; a
// DaguUser pins a role or disables one, and removing a record ends its tokens at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parseSsoUsers } from "../../src/api/credentials.ts";
import { freePort } from "../../dev/control-plane.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { authorize, Browser, reservePort, startProvider } from "../harness/oidc-provider.ts";
import { core, create, credentials, get, patchSpec, secret, waitReady, withOperator } from "../harness/resources.ts";
import { startDagu } from "../harness/dagu.ts";
import { startSidecar } from "../harness/sidecar.ts";
import { kubernetesSidecarArgs } from "../harness/sso.ts";

const CLIENT_SECRET = `k8s-client-secret-${"z".repeat(20)}`;

test("SSO on the cluster: the operator materializes spec.oidc, replicas share SSO users, a DaguUser pins or disables one", async (t) => {
  const ns = await testNamespace(t, "sso");
  const [reservedA, reservedB] = [await reservePort(), await reservePort()];
  const [portA, portB] = [reservedA.port, reservedB.port];
  const urlA = `http://127.0.0.1:${portA}`;
  const provider = await startProvider({ clients: [{ clientId: "dagu", clientSecret: CLIENT_SECRET, redirectUris: [`${urlA}/oidc-callback`] }] });
  t.after(() => provider.stop());
  provider.accounts.set("alice", { email: "alice@example.com", email_verified: true, preferred_username: "alice", groups: ["devs"] });
  provider.accounts.set("bob", { email: "bob@example.com", preferred_username: "bob", groups: [] });

  await withOperator(t);
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await secret(ns, "oidc-client", { secret: CLIENT_SECRET });
  const oidc = {
    issuer: provider.issuer,
    clientId: "dagu",
    clientSecretRef: { name: "oidc-client", key: "secret" },
    clientUrl: urlA,
    caBundle: provider.ca.certPem,
    roleMapping: { groupMappings: { devs: "developer" } },
  };
  await create(ns, "daguauths", "DaguAuth", "dagu", { builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } }, oidc });
  const auth = await waitReady(ns, "daguauths", "dagu", "Materialized");
  const doc = await credentials(ns, "dagu");
  assert.equal(doc.oidc?.clientSecret, CLIENT_SECRET, "the client secret is in the credentials (a Secret), never in the DaguAuth");
  await eventually("the provider's discovery is reported", async () => {
    const c = (await get(ns, "daguauths", "dagu")).status?.conditions?.find((x) => x.type === "OIDCProviderReachable");
    return c?.status === "True" && c.reason === "Discovered" ? c : undefined;
  }, 30_000, 200);
  const ssoSecret = await core.readNamespacedSecret({ name: "dagu-sso-users", namespace: ns });
  assert.equal(ssoSecret.metadata?.ownerReferences?.[0]?.kind, "DaguAuth", "owned by the DaguAuth: GitOps sees a child, not drift");

  const dagu = await startDagu();
  t.after(() => dagu.stop());
  const api = dagu.version.startsWith("1.") ? "/api/v2" : "/api/v1";
  const dir = await mkdtemp(join(tmpdir(), "sso-k8s-"));
  const args = await kubernetesSidecarArgs(dir, ns, "dagu", String(auth.status!.serviceAccountName));
  await Promise.all([reservedA.release(), reservedB.release()]);
  const [a, b] = await Promise.all([startSidecar({ upstream: dagu.url, port: portA, args }), startSidecar({ upstream: dagu.url, port: portB, args })]);
  t.after(() => Promise.all([a.stop(), b.stop()]));

  const login = async (person: string): Promise<{ token?: string; error?: string }> => {
    const browser = new Browser(provider.ca);
    const start = await browser.get(`${urlA}/oidc-login`);
    const back = await authorize(browser, start.location!, person, `${urlA}/oidc-callback`);
    const done = new URL((await browser.get(back)).location!);
    return { ...(done.hash.startsWith("#token=") ? { token: decodeURIComponent(done.hash.slice(7)) } : {}), ...(done.searchParams.get("error") ? { error: done.searchParams.get("error")! } : {}) };
  };
  const meAt = async (url: string, token: string) => (await fetch(`${url}${api}/auth/me`, { headers: { authorization: `Bearer ${token}` } })).status;
  const role = (token: string) => (JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { role: string }).role;

  // A new user through replica A, known to replica B within about a second.
  const alice = await login("alice");
  assert.ok(alice.token, alice.error);
  assert.equal(role(alice.token), "developer");
  const started = Date.now();
  await eventually("replica B accepts the new SSO user's token", async () => ((await meAt(`http://127.0.0.1:${portB}`, alice.token!)) === 200 ? true : undefined), 10_000, 20);
  const propagation = Date.now() - started;
  t.diagnostic(`an SSO user created on replica A is known to replica B after ${propagation} ms`);
  assert.ok(propagation < 2000, `within about a second (took ${propagation} ms)`);
  const listed = await eventually("status lists the SSO user", async () => {
    const s = (await get(ns, "daguauths", "dagu")).status as { ssoUsers?: number; provisionedUsers?: { username: string; role: string; pinnedBy?: string }[] } | undefined;
    return s?.ssoUsers === 1 ? s : undefined;
  }, 30_000, 200);
  assert.equal(listed.provisionedUsers?.[0]?.username, "alice");

  // An admin pins alice's role in Git: the record is shadowed (its tokens end), the next login is the declared user.
  await create(ns, "daguusers", "DaguUser", "alice", { authRef: { name: "dagu" }, username: "alice", role: "admin", email: "alice@example.com", sso: true });
  await waitReady(ns, "daguusers", "alice", "Materialized");
  await eventually("the shadowed record's token is refused", async () => ((await meAt(`http://127.0.0.1:${portB}`, alice.token!)) === 401 ? true : undefined), 30_000, 50);
  const pinned = await login("alice");
  assert.equal(role(pinned.token!), "admin");
  await eventually("status says who pins alice", async () => ((await get(ns, "daguauths", "dagu")).status as { provisionedUsers?: { pinnedBy?: string }[] } | undefined)?.provisionedUsers?.[0]?.pinnedBy === "alice" || undefined, 30_000, 200);
  await patchSpec(ns, "daguusers", "alice", { disabled: true });
  await eventually("a disabled user's token is refused on both replicas", async () => ((await meAt(urlA, pinned.token!)) === 401 && (await meAt(`http://127.0.0.1:${portB}`, pinned.token!)) === 401 ? true : undefined), 30_000, 50);
  assert.match((await login("alice")).error ?? "", /disabled/);

  // Removing a record (kubectl edit of the Secret) ends its tokens at once, on every replica.
  const bob = await login("bob");
  assert.equal(role(bob.token!), "viewer");
  const live = await core.readNamespacedSecret({ name: "dagu-sso-users", namespace: ns });
  const records = parseSsoUsers(Buffer.from(live.data!["sso-users.json"]!, "base64").toString());
  assert.ok(records.success);
  const without = Object.fromEntries(Object.entries(records.data).filter(([, r]) => r.subject !== "bob"));
  await core.patchNamespacedSecret({ name: "dagu-sso-users", namespace: ns, body: { data: { "sso-users.json": Buffer.from(JSON.stringify(without)).toString("base64") } } }, k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch));
  await eventually("the removed user's token is refused on both replicas", async () => ((await meAt(urlA, bob.token!)) === 401 && (await meAt(`http://127.0.0.1:${portB}`, bob.token!)) === 401 ? true : undefined), 10_000, 20);

  // A role expression that does not compile: not Ready, nothing written; fixed: Ready again.
  const generation = (await credentials(ns, "dagu")).generation;
  await patchSpec(ns, "daguauths", "dagu", { oidc: { roleMapping: { roleAttributePath: "if .a then" } } });
  const broken = await waitReady(ns, "daguauths", "dagu", "InvalidRoleAttributePath", "False");
  assert.match(broken.status!.conditions!.find((c) => c.type === "Ready")!.message, /spec\.oidc\.roleMapping\.roleAttributePath does not compile/);
  assert.equal((await credentials(ns, "dagu")).generation, generation, "nothing new written");
  await patchSpec(ns, "daguauths", "dagu", { oidc: { roleMapping: { roleAttributePath: 'if (.groups | index("devs")) then "operator" else empty end' } } });
  await waitReady(ns, "daguauths", "dagu", "Materialized");

  // A provider that does not answer: the condition says so, Ready stays True (password logins work).
  // An initial admin: without one a builtin DaguAuth is NoAdmin (issue 13), whatever its provider does.
  await create(ns, "daguauths", "DaguAuth", "unreachable", { builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } }, oidc: { issuer: `https://127.0.0.1:${await freePort()}`, clientId: "dagu", clientUrl: urlA } });
  await waitReady(ns, "daguauths", "unreachable", "Materialized");
  const failed = await eventually("the unreachable provider is reported", async () => {
    const c = (await get(ns, "daguauths", "unreachable")).status?.conditions?.find((x) => x.type === "OIDCProviderReachable");
    return c?.status === "False" ? c : undefined;
  }, 30_000, 200);
  assert.equal(failed.reason, "DiscoveryFailed");
  assert.match(failed.message, /ECONNREFUSED/);
});
