// Resource helpers shared by integration tests: create our kinds and Secrets,
// wait for Ready, read the credentials the operator wrote.
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { parseCredentials, type Credentials as CredentialsDoc } from "../../src/api/index.ts";
import { adminKubeConfig } from "../../dev/kube.ts";
import { eventually } from "./per-test.ts";
import { startTestOperator, type TestOperator } from "./test-operator.ts";

export const kc = adminKubeConfig();
export const core = kc.makeApiClient(k8s.CoreV1Api);
export const custom = kc.makeApiClient(k8s.CustomObjectsApi);
export const GROUP = "auth.dagu.dev";
export const VERSION = "v1alpha1";

export type Obj = { metadata: { name: string; uid?: string; resourceVersion?: string; generation?: number; ownerReferences?: { kind: string }[] }; status?: { conditions?: { type: string; status: string; reason: string; message: string; observedGeneration?: number }[]; [k: string]: unknown } };

export async function secret(ns: string, name: string, data: Record<string, string>): Promise<void> {
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name }, stringData: data } });
}

export async function setSecret(ns: string, name: string, data: Record<string, string>): Promise<void> {
  await core.replaceNamespacedSecret({ name, namespace: ns, body: { metadata: { name }, stringData: data } });
}

export async function create(ns: string, plural: string, kind: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec } });
}

export async function get(ns: string, plural: string, name: string): Promise<Obj> {
  return (await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural, name })) as Obj;
}

export async function patchSpec(ns: string, plural: string, name: string, spec: Record<string, unknown>): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { group: GROUP, version: VERSION, namespace: ns, plural, name, body: { spec } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
}

export function ready(obj: Obj) {
  return obj.status?.conditions?.find((c) => c.type === "Ready");
}

export async function waitReady(ns: string, plural: string, name: string, reason?: string, status = "True"): Promise<Obj> {
  return eventually(`${plural}/${name} Ready=${status}${reason ? ` (${reason})` : ""}`, async () => {
    const o = await get(ns, plural, name);
    const c = ready(o);
    return c?.status === status && (!reason || c.reason === reason) && c.observedGeneration === o.metadata.generation ? o : undefined;
  }, 60_000, 200);
}

export async function credentials(ns: string, auth: string): Promise<CredentialsDoc> {
  const s = await core.readNamespacedSecret({ name: `${auth}-credentials`, namespace: ns });
  const r = parseCredentials(Buffer.from(s.data!["credentials.json"]!, "base64").toString("utf8"));
  assert.ok(r.success, "the credentials document is valid");
  return r.data;
}

export async function waitCredentials(ns: string, auth: string, check: (c: CredentialsDoc) => boolean, what: string): Promise<CredentialsDoc> {
  return eventually(`credentials: ${what}`, async () => {
    const c = await credentials(ns, auth).catch(() => undefined);
    return c && check(c) ? c : undefined;
  }, 60_000, 200);
}

export async function hashCount(op: TestOperator): Promise<number> {
  return (await op.metrics.hashDuration.get()).values.filter((v) => v.metricName?.endsWith("_count")).reduce((a, v) => a + v.value, 0);
}

export async function withOperator(t: { after: (fn: () => Promise<void>) => void }, name?: string, options: Parameters<typeof startTestOperator>[0] = {}): Promise<TestOperator> {
  const op = await startTestOperator({ ...options, ...(name ? { name } : {}) });
  t.after(() => op.stop());
  return op;
}

export async function builtinSetup(ns: string): Promise<void> {
  await secret(ns, "admin-pw", { password: "admin-password-1" });
  await secret(ns, "alice-pw", { password: "alice-password-1" });
  await create(ns, "daguauths", "DaguAuth", "dagu", { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  await create(ns, "daguusers", "DaguUser", "alice", { authRef: { name: "dagu" }, username: "alice", role: "developer", password: { secretRef: { name: "alice-pw", key: "password" } } });
  await create(ns, "daguusers", "DaguUser", "bob", { authRef: { name: "dagu" }, username: "bob", role: "viewer", password: { generate: { secretName: "bob-password" } } });
  await create(ns, "daguapikeys", "DaguApiKey", "ci", { authRef: { name: "dagu" }, role: "operator", secretName: "ci-api-key" });
  await create(ns, "daguwebhooks", "DaguWebhook", "hello", { authRef: { name: "dagu" }, dagName: "hello", auth: { mode: "tokenAndHmac", hmacEnforcement: "strict" }, secretName: "hello-webhook" });
}

export async function secretValue(ns: string, name: string, key: string): Promise<string> {
  const s = await core.readNamespacedSecret({ name, namespace: ns });
  return Buffer.from(s.data![key]!, "base64").toString("utf8");
}
