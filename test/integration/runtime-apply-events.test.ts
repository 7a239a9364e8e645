// Server-side apply helpers and the Event recorder against the real API server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { adminAccess, adminKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { KubeConfig } from "../../src/common/kube/config.ts";
import { Applier, FIELD_MANAGER, isConflict, isNotFound, ownerReference } from "../../src/operator/runtime/apply.ts";
import { EventRecorder } from "../../src/operator/runtime/events.ts";
import type { KubeObject } from "../../src/common/kube/client.ts";

const logger = pino({ level: process.env.LOG_LEVEL ?? "silent" });

const configMap = (namespace: string, name: string, data: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace },
  data,
});

test("applyObject creates, is idempotent, and owns its fields under one manager", async (t) => {
  const ns = await testNamespace(t, "apply");
  const applier = new Applier(adminAccess());
  const first = await applier.applyObject(configMap(ns, "cm", { a: "1" }));
  assert.equal(first.metadata.namespace, ns);
  assert.deepEqual(first.data, { a: "1" });
  const managers = (first.metadata.managedFields ?? []) as { manager?: string; operation?: string }[];
  assert.ok(managers.some((m) => m.manager === FIELD_MANAGER && m.operation === "Apply"), "applied under the operator's field manager");

  const again = await applier.applyObject(configMap(ns, "cm", { a: "1" }));
  assert.equal(again.metadata.resourceVersion, first.metadata.resourceVersion, "applying the same object twice changes nothing");

  // A field dropped from the desired state is removed: the operator owned it.
  const changed = await applier.applyObject(configMap(ns, "cm", { b: "2" }));
  assert.deepEqual(changed.data, { b: "2" });
});

test("applyObject with force: false reports a conflict with another manager; force takes the field", async (t) => {
  const ns = await testNamespace(t, "apply-force");
  const applier = new Applier(adminAccess());
  await applier.applyObject(configMap(ns, "cm", { a: "human" }), { fieldManager: "kubectl" });
  await assert.rejects(applier.applyObject(configMap(ns, "cm", { a: "operator" }), { force: false }), (err: unknown) => {
    assert.ok(isConflict(err), `a 409: ${String(err)}`);
    assert.match(String(err), /PATCH \/api\/v1\/namespaces\/.+\/configmaps\/cm failed with HTTP 409/);
    return true;
  });
  const forced = await applier.applyObject(configMap(ns, "cm", { a: "operator" }));
  assert.deepEqual(forced.data, { a: "operator" });
});

test("applyStatus writes the status subresource only", async (t) => {
  const { group } = await widgetCrd(t);
  const ns = await testNamespace(t, "apply-status");
  const applier = new Applier(adminAccess());
  const widget: KubeObject = { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w", namespace: ns }, spec: { v: "1" } };
  const created = await eventually("the widget kind is served", () => applier.applyObject(widget));
  assert.equal(created.metadata.generation, 1);

  const status = { conditions: [{ type: "Ready", status: "True", reason: "Reconciled", message: "ok", lastTransitionTime: "2025-01-01T00:00:00Z", observedGeneration: 1 }] };
  const withStatus = await applier.applyStatus<KubeObject>({ ...widget, status });
  assert.deepEqual(withStatus.status, status);
  assert.equal(withStatus.metadata.generation, 1, "a status write does not bump the generation");
  assert.deepEqual(withStatus.spec, { v: "1" }, "the spec in the body of applyStatus was not applied");
  await assert.rejects(applier.applyStatus(widget), /has no status/);
});

test("deleteIfExists deletes once and then reports absence; ownerReference gets the owned deleted", async (t) => {
  const ns = await testNamespace(t, "apply-delete");
  const applier = new Applier(adminAccess());
  const owner = await applier.applyObject(configMap(ns, "owner", {}));
  const child = await applier.applyObject({ ...configMap(ns, "child", {}), metadata: { name: "child", namespace: ns, ownerReferences: [ownerReference(owner)] } });
  assert.deepEqual(child.metadata.ownerReferences, [
    { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true },
  ]);
  assert.throws(() => ownerReference(configMap(ns, "unsaved", {})), /metadata.uid are required/);

  const ref = { apiVersion: "v1", kind: "ConfigMap", name: "owner", namespace: ns };
  await assert.rejects(applier.deleteIfExists(ref, { uid: "not-the-uid" }), (err: unknown) => isConflict(err), "a uid precondition protects a recreated namesake");
  assert.equal(await applier.deleteIfExists(ref), true);
  assert.equal(await applier.deleteIfExists(ref), false);
  // The garbage collector (kube-controller-manager) follows the ownerReference.
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  await eventually("the owned ConfigMap is collected", async () => {
    try {
      await core.readNamespacedConfigMap({ name: "child", namespace: ns });
      return false;
    } catch (err) {
      return isNotFound(err);
    }
  }, 60_000, 250);
});

test("the recorder creates an Event and bumps its series on a repeat", async (t) => {
  const ns = await testNamespace(t, "events");
  const applier = new Applier(adminAccess());
  const obj = await applier.applyObject(configMap(ns, "subject", {}));
  const recorder = new EventRecorder({ kube: adminAccess(), instance: "test-pod", logger });
  await recorder.normal(obj, "Reconciled", "credentials written");
  await Promise.all([recorder.normal(obj, "Reconciled", "credentials written"), recorder.normal(obj, "Reconciled", "credentials written")]);
  await recorder.warning(obj, "InvalidSpec", "spec.role: must be one of admin, manager, operator, developer, viewer", "Validate");

  const events = adminKubeConfig().makeApiClient(k8s.EventsV1Api);
  const list = await events.listNamespacedEvent({ namespace: ns });
  const mine = list.items.filter((e) => e.regarding?.uid === obj.metadata.uid);
  assert.equal(mine.length, 2, "three identical events are one Event");
  const normal = mine.find((e) => e.reason === "Reconciled")!;
  assert.equal(normal.type, "Normal");
  assert.equal(normal.note, "credentials written");
  assert.equal(normal.series?.count, 3);
  assert.equal(normal.reportingController, "dagu-auth-operator");
  assert.equal(normal.reportingInstance, "test-pod");
  assert.equal(normal.regarding?.kind, "ConfigMap");
  const warning = mine.find((e) => e.reason === "InvalidSpec")!;
  assert.equal(warning.type, "Warning");
  assert.equal(warning.action, "Validate");
  assert.equal(warning.series, undefined);
});

test("the recorder never throws into the caller", async () => {
  const broken = new KubeConfig({ server: "https://127.0.0.1:1", skipTlsVerify: true, credentials: { kind: "none" }, source: "unreachable" });
  const recorder = new EventRecorder({ kube: broken, logger });
  const obj = configMap("ns", "n", {});
  await recorder.warning(obj, "Failed", "the API server is unreachable");
});

/** A throwaway CRD with a status subresource (deleted after the test). */
async function widgetCrd(t: TestContext): Promise<{ group: string }> {
  const group = `r${randomBytes(4).toString("hex")}.runtime-test.dagu.dev`;
  const ext = adminKubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
  const object = { type: "object", properties: {} };
  await ext.createCustomResourceDefinition({
    body: {
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: "Namespaced",
        names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
        versions: [
          {
            name: "v1",
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: "object",
                properties: {
                  spec: { type: "object", properties: { v: { type: "string" } } },
                  status: {
                    type: "object",
                    properties: {
                      conditions: {
                        type: "array",
                        items: {
                          ...object,
                          properties: {
                            type: { type: "string" },
                            status: { type: "string" },
                            reason: { type: "string" },
                            message: { type: "string" },
                            lastTransitionTime: { type: "string" },
                            observedGeneration: { type: "integer" },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    },
  });
  t.after(() => ext.deleteCustomResourceDefinition({ name: `widgets.${group}` }).catch(() => undefined));
  await eventually("the CRD is established", async () => {
    const crd = await ext.readCustomResourceDefinition({ name: `widgets.${group}` });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True");
  });
  return { group };
}
