// The informer against a scripted fake API server, for protocol paths the real server does not
// show on demand: an HTTP 410 answer to a watch (the real one sends an ERROR event, covered in
// test/integration/runtime-informer.test.ts) and resuming from a bookmark's resourceVersion.
import assert from "node:assert/strict";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { KubeConfig } from "../../src/common/kube/config.ts";
import { pino } from "pino";
import { Informer } from "../../src/common/kube/informer.ts";

const cm = (name: string, rv: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", resourceVersion: rv } });
const list = (rv: string, items: ReturnType<typeof cm>[]) => ({
  kind: "ConfigMapList",
  apiVersion: "v1",
  metadata: { resourceVersion: rv },
  items: items.map(({ metadata }) => ({ metadata })), // list items carry no apiVersion/kind on the wire
});

test("an HTTP 410 on watch relists and emits the difference; a bookmark moves the resume point", { timeout: 20_000 }, async (t) => {
  const watchVersions: string[] = [];
  const open: ServerResponse[] = [];
  let lists = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url!, "http://x");
    assert.equal(url.pathname, "/api/v1/namespaces/ns/configmaps");
    const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (url.searchParams.get("watch") !== "true") {
      lists++;
      return lists === 1
        ? send(200, list("10", [cm("a", "5"), cm("b", "6"), cm("d", "7")]))
        : send(200, list("20", [cm("a", "5"), cm("b", "12"), cm("c", "13")]));
    }
    assert.equal(url.searchParams.get("allowWatchBookmarks"), "true");
    const rv = url.searchParams.get("resourceVersion") ?? "";
    watchVersions.push(rv);
    if (rv === "10") return send(410, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410, message: "too old resource version: 10 (15)" });
    res.writeHead(200, { "content-type": "application/json" });
    const line = (type: string, object: unknown) => res.write(JSON.stringify({ type, object }) + "\n");
    if (rv === "20") {
      line("BOOKMARK", { kind: "ConfigMap", apiVersion: "v1", metadata: { resourceVersion: "25" } });
      return res.end(); // the server ends the watch; the informer must resume at 25
    }
    line("MODIFIED", cm("c", "26"));
    open.push(res); // stays open until the test ends
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const res of open) res.destroy();
    server.close();
  });
  const kubeConfig = new KubeConfig({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, credentials: { kind: "none" }, source: "fake API server" });

  const informer = new Informer({ kubeConfig, resource: { group: "", version: "v1", plural: "configmaps" }, namespace: "ns", logger: pino({ level: process.env.LOG_LEVEL ?? "silent" }) });
  const events: string[] = [];
  informer.onAdd((o) => events.push(`add ${o.metadata.name} ${o.metadata.resourceVersion}`));
  informer.onUpdate((_, o) => events.push(`update ${o.metadata.name} ${o.metadata.resourceVersion}`));
  informer.onDelete((o) => events.push(`delete ${o.metadata.name} ${o.metadata.resourceVersion}`));
  t.after(() => informer.stop());
  informer.start();
  await informer.hasSynced;

  const deadline = Date.now() + 10_000;
  while (!events.includes("update c 26") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(events, [
    "add a 5",
    "add b 6",
    "add d 7",
    // the relist after 410: a unchanged (no event), b changed, c new, d gone
    "update b 12",
    "add c 13",
    "delete d 7",
    // the watch resumed from the bookmark
    "update c 26",
  ]);
  assert.deepEqual(watchVersions, ["10", "20", "25"]);
  assert.equal(informer.stats.gone, 1);
  assert.equal(informer.stats.lists, 2);
  assert.equal(informer.get("ns", "a")?.kind, "ConfigMap", "list items get the list's apiVersion and kind");
  assert.equal(informer.lastResourceVersion, "26");
});
