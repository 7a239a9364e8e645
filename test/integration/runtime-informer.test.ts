// The informer against the real API server: events, resumed watches, 410 Gone, the stall watchdog.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test, type TestContext } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { pino } from "pino";
import { adminAccess, adminKubeConfig } from "../../dev/kube.ts";
import { eventually, testNamespace } from "../harness/per-test.ts";
import { Informer, type InformerOptions } from "../../src/common/kube/informer.ts";
import type { KubeObject } from "../../src/common/kube/client.ts";

const logger = pino({ level: process.env.LOG_LEVEL ?? "silent" });
const CONFIGMAPS = { group: "", version: "v1", plural: "configmaps" };

type Event = ["add" | "update" | "delete", string, string | undefined];

/** Starts an informer that records every event as [type, name, data.v]. */
function recordingInformer(t: TestContext, options: Partial<InformerOptions> & Pick<InformerOptions, "namespace">) {
  const informer = new Informer({ kubeConfig: adminAccess(), resource: CONFIGMAPS, logger, ...options });
  const events: Event[] = [];
  const v = (o: KubeObject) => (o.data as Record<string, string> | undefined)?.v;
  informer.onAdd((o) => events.push(["add", o.metadata.name!, v(o)]));
  informer.onUpdate((_old, o) => events.push(["update", o.metadata.name!, v(o)]));
  informer.onDelete((o) => events.push(["delete", o.metadata.name!, v(o)]));
  t.after(() => informer.stop());
  informer.start();
  return { informer, events };
}

function configMaps(namespace: string) {
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  return {
    create: (name: string, v: string) => core.createNamespacedConfigMap({ namespace, body: { metadata: { name }, data: { v } } }),
    update: (name: string, v: string) => core.replaceNamespacedConfigMap({ name, namespace, body: { metadata: { name }, data: { v } } }),
    remove: (name: string) => core.deleteNamespacedConfigMap({ name, namespace }),
  };
}

const has = (events: Event[], e: Event) => events.some((x) => x[0] === e[0] && x[1] === e[1] && x[2] === e[2]);

test("delivers add, update and delete of ConfigMaps and caches them", async (t) => {
  const ns = await testNamespace(t, "informer");
  const cm = configMaps(ns);
  await cm.create("before", "0");
  const { informer, events } = recordingInformer(t, { namespace: ns, labelSelector: undefined });
  await informer.hasSynced;
  assert.ok(has(events, ["add", "before", "0"]), "objects existing at start arrive as adds");
  assert.equal(informer.get(ns, "before")?.metadata.name, "before");

  await cm.create("a", "1");
  await cm.update("a", "2");
  await cm.remove("before");
  await eventually("add, update and delete", async () => has(events, ["delete", "before", "0"]) && informer.get(ns, "a")?.data);
  const mine = events.filter((e) => e[1] !== "kube-root-ca.crt");
  assert.deepEqual(mine, [
    ["add", "before", "0"],
    ["add", "a", "1"],
    ["update", "a", "2"],
    ["delete", "before", "0"],
  ]);
  assert.equal(informer.get(ns, "before"), undefined);
  // kube-root-ca.crt is published into every namespace by kube-controller-manager, at its own pace.
  assert.deepEqual(
    informer.list(ns).map((o) => o.metadata.name).filter((n) => n !== "kube-root-ca.crt"),
    ["a"],
  );
  assert.equal(informer.list("elsewhere").length, 0);
  assert.throws(() => {
    (informer.get(ns, "a")!.metadata as { name: string }).name = "mutated";
  }, TypeError, "cached objects are frozen");
});

test("a label selector limits what is cached", async (t) => {
  const ns = await testNamespace(t, "informer-sel");
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "in", labels: { pick: "yes" } } } });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "out" } } });
  const { informer } = recordingInformer(t, { namespace: ns, labelSelector: "pick=yes" });
  await informer.hasSynced;
  assert.deepEqual(informer.list().map((o) => o.metadata.name), ["in"]);
});

test("a watch interrupted mid-stream resumes from the last resourceVersion without missing an event", async (t) => {
  const ns = await testNamespace(t, "informer-resume");
  const cm = configMaps(ns);
  await cm.create("zero", "0");
  await cm.create("one", "1");
  const { informer, events } = recordingInformer(t, { namespace: ns });
  await informer.hasSynced;
  const watchesBefore = informer.stats.watches;

  // Cut the watch and keep it down while three changes happen.
  informer.testHooks.interruptWatch({ pauseMs: 1500 });
  await cm.create("two", "2");
  await cm.update("one", "1b");
  await cm.remove("zero");
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(!has(events, ["add", "two", "2"]), "nothing arrives while no watch is open");

  await eventually("the changes made while disconnected", async () => has(events, ["delete", "zero", "0"]));
  assert.ok(has(events, ["add", "two", "2"]));
  assert.ok(has(events, ["update", "one", "1b"]));
  assert.equal(informer.stats.lists, 1, "resumed by watching, not by listing again");
  assert.equal(informer.stats.watches, watchesBefore + 1);
});

test("watches closed by the server (timeoutSeconds) are resumed without losing events", async (t) => {
  const ns = await testNamespace(t, "informer-timeout");
  const cm = configMaps(ns);
  const { informer, events } = recordingInformer(t, { namespace: ns, watchTimeoutSeconds: 1 });
  await informer.hasSynced;
  const writes = 20;
  for (let i = 0; i < writes; i++) {
    await cm.create(`cm-${i}`, String(i));
    await new Promise((r) => setTimeout(r, 200)); // spread over ~4 server-side watch timeouts
  }
  await eventually("every write", async () => informer.list(ns).filter((o) => o.metadata.name?.startsWith("cm-")).length === writes);
  const adds = events.filter((e) => e[0] === "add" && e[1].startsWith("cm-")).map((e) => e[1]);
  assert.deepEqual(adds, Array.from({ length: writes }, (_, i) => `cm-${i}`), "every add, once, in order");
  assert.ok(informer.stats.watches >= 3, `the server closed watches (${informer.stats.watches} watch requests)`);
  assert.equal(informer.stats.lists, 1);
});

test("410 Gone on a too-old resourceVersion relists and emits the difference", async (t) => {
  // A fresh CRD: its watch cache starts at the resourceVersion of its creation, so "1"
  // is genuinely expired on the real server (ConfigMaps' cache may still reach back to 1
  // on a young control plane).
  const group = `r${randomBytes(4).toString("hex")}.runtime-test.dagu.dev`;
  const ext = adminKubeConfig().makeApiClient(k8s.ApiextensionsV1Api);
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
            schema: { openAPIV3Schema: { type: "object", properties: { spec: { type: "object", properties: { v: { type: "string" } } } } } },
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
  const ns = await testNamespace(t, "informer-gone");
  const custom = adminKubeConfig().makeApiClient(k8s.CustomObjectsApi);
  const widget = (name: string, v: string) => ({ apiVersion: `${group}/v1`, kind: "Widget", metadata: { name }, spec: { v } });
  const at = { group, version: "v1", namespace: ns, plural: "widgets" };
  await eventually("widgets are served", async () => {
    await custom.createNamespacedCustomObject({ ...at, body: widget("keep", "1") });
    return true;
  });
  await custom.createNamespacedCustomObject({ ...at, body: widget("change", "1") });
  await custom.createNamespacedCustomObject({ ...at, body: widget("drop", "1") });

  const informer = new Informer({ kubeConfig: adminAccess(), resource: { group, version: "v1", plural: "widgets" }, namespace: ns, logger });
  const events: string[] = [];
  const v = (o: KubeObject) => (o.spec as { v?: string }).v;
  informer.onAdd((o) => events.push(`add ${o.metadata.name} ${v(o)}`));
  informer.onUpdate((_old, o) => events.push(`update ${o.metadata.name} ${v(o)}`));
  informer.onDelete((o) => events.push(`delete ${o.metadata.name} ${v(o)}`));
  t.after(() => informer.stop());
  informer.start();
  await informer.hasSynced;
  assert.deepEqual(events.sort(), ["add change 1", "add drop 1", "add keep 1"]);
  events.length = 0;

  // While the watch is down, change things; then resume from resourceVersion "1".
  informer.testHooks.interruptWatch({ pauseMs: 1000, fromResourceVersion: "1" });
  await custom.createNamespacedCustomObject({ ...at, body: widget("new", "1") });
  await custom.patchNamespacedCustomObject(
    { ...at, name: "change", body: { spec: { v: "2" } } },
    k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
  );
  await custom.deleteNamespacedCustomObject({ ...at, name: "drop" });

  await eventually("the relist's difference", async () => events.length >= 3 && informer.stats.lists === 2);
  assert.equal(informer.stats.gone, 1, "the server answered 410 Gone");
  assert.deepEqual(events.sort(), ["add new 1", "delete drop 1", "update change 2"], "only the difference, nothing for the unchanged object");
  assert.deepEqual(informer.list().map((o) => o.metadata.name).sort(), ["change", "keep", "new"]);

  // And the watch works again afterwards.
  await custom.deleteNamespacedCustomObject({ ...at, name: "keep" });
  await eventually("a delete after the relist", async () => events.includes("delete keep 1"));
});

test("the stall watchdog restarts a watch that delivers nothing", async (t) => {
  const ns = await testNamespace(t, "informer-stall");
  const cm = configMaps(ns);
  const { informer, events } = recordingInformer(t, { namespace: ns, stallTimeoutMs: 1000 });
  await informer.hasSynced;
  const watches = informer.stats.watches;
  await eventually("two stalls", async () => informer.stats.stalls >= 2, 10_000);
  assert.ok(informer.stats.watches >= watches + 2, "each stall started a new watch");
  await cm.create("after-stall", "1");
  await eventually("an event after the restarts", async () => has(events, ["add", "after-stall", "1"]));
  assert.equal(informer.stats.lists, 1, "restarted from the last resourceVersion, no relist");
});

test("resync re-delivers every object as an update with the same object", async (t) => {
  const ns = await testNamespace(t, "informer-resync");
  await configMaps(ns).create("x", "1");
  const informer = new Informer({ kubeConfig: adminAccess(), resource: CONFIGMAPS, namespace: ns, resyncPeriodMs: 300, logger });
  const resyncs: string[] = [];
  informer.onUpdate((oldObj, newObj) => {
    if (oldObj === newObj) resyncs.push(newObj.metadata.name!);
  });
  t.after(() => informer.stop());
  informer.start();
  await informer.hasSynced;
  await eventually("two resyncs", async () => resyncs.filter((n) => n === "x").length >= 2, 5000);
});

test("stop before sync rejects hasSynced; stop ends the watch", async (t) => {
  const ns = await testNamespace(t, "informer-stop");
  const informer = new Informer({ kubeConfig: adminAccess(), resource: CONFIGMAPS, namespace: ns, logger });
  informer.start();
  await informer.stop();
  await assert.rejects(informer.hasSynced, /stopped before it synced/);
  const synced = new Informer({ kubeConfig: adminAccess(), resource: CONFIGMAPS, namespace: ns, logger }).start();
  await synced.hasSynced;
  await eventually("a watch is open", async () => synced.stats.watches >= 1);
  await new Promise((r) => setTimeout(r, 200));
  await synced.stop();
  const events = synced.stats.events;
  await configMaps(ns).create("after-stop", "1");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(synced.stats.events, events, "no events after stop");
  assert.equal(synced.get(ns, "after-stop"), undefined);
});

test("metadata only: names, labels and resourceVersions of Secrets, never their data, also from an empty list", async (t) => {
  const ns = await testNamespace(t, "informer-meta");
  const informer = new Informer({ kubeConfig: adminAccess(), resource: { group: "", version: "v1", plural: "secrets" }, namespace: ns, metadataOnly: true, logger });
  const seen: KubeObject[] = [];
  informer.onAdd((o) => seen.push(o));
  informer.onUpdate((_old, o) => seen.push(o));
  t.after(() => informer.stop());
  informer.start();
  await informer.hasSynced; // the empty list of PartialObjectMetadata has `items: null`
  assert.equal(informer.list().length, 0);
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "s", labels: { team: "a" } }, stringData: { password: "do-not-send-me" } } });
  await core.replaceNamespacedSecret({ name: "s", namespace: ns, body: { metadata: { name: "s", labels: { team: "b" } }, stringData: { password: "nor-me" } } });
  const latest = await eventually("the update's metadata", async () => informer.get(ns, "s")?.metadata.labels?.team === "b" && informer.get(ns, "s"));
  assert.ok(seen.length >= 2);
  for (const o of seen) assert.equal(o.data, undefined, "no data in a metadata-only event");
  assert.equal(latest.kind, "PartialObjectMetadata");
  assert.ok(!JSON.stringify(seen).includes("do-not-send-me") && !JSON.stringify(seen).includes("nor-me"));
});

test("over a list of namespaces (a namespaced install): one cache of those, nothing from any other", async (t) => {
  const [a, b, other] = [await testNamespace(t, "inf-a"), await testNamespace(t, "inf-b"), await testNamespace(t, "inf-other")];
  await configMaps(a).create("in-a", "1");
  await configMaps(other).create("in-other", "1");
  const { informer, events } = recordingInformer(t, { namespace: undefined, namespaces: [a, b] });
  await informer.hasSynced;
  assert.ok(informer.synced && informer.connected);
  await configMaps(b).create("in-b", "2");
  await configMaps(other).create("later-other", "2");
  await configMaps(a).remove("in-a");
  await eventually("b's add and a's delete", async () => has(events, ["add", "in-b", "2"]) && has(events, ["delete", "in-a", "1"]));
  const mine = events.filter((e) => e[1] !== "kube-root-ca.crt");
  assert.deepEqual(mine, [
    ["add", "in-a", "1"],
    ["add", "in-b", "2"],
    ["delete", "in-a", "1"],
  ]);
  assert.equal(informer.get(b, "in-b")?.metadata.name, "in-b");
  assert.equal(informer.get(other, "in-other"), undefined);
  assert.deepEqual(informer.list(b).map((o) => o.metadata.name).filter((n) => n !== "kube-root-ca.crt"), ["in-b"]);
  assert.deepEqual(informer.list().filter((o) => o.metadata.namespace === other), [], "nothing of another namespace is cached");
});
