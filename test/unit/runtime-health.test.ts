import assert from "node:assert/strict";
import { test } from "node:test";
import { informersSynced, leaderElectionHealthy, parseAddress, startHealthServer } from "../../src/operator/runtime/health.ts";
import { OperatorMetrics } from "../../src/operator/runtime/metrics.ts";

test("parseAddress understands host:port, :port and [v6]:port", () => {
  assert.deepEqual(parseAddress(":8081"), { host: undefined, port: 8081 });
  assert.deepEqual(parseAddress("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  assert.deepEqual(parseAddress("[::1]:9090"), { host: "::1", port: 9090 });
  assert.throws(() => parseAddress("8081"), /not host:port/);
  assert.throws(() => parseAddress(":99999"), /out of range/);
});

test("healthz, readyz and metrics", async (t) => {
  const metrics = new OperatorMetrics();
  const informers = [{ synced: true }, { synced: false }];
  let election: true | string = "the Lease has not been read yet";
  const server = await startHealthServer({
    address: "127.0.0.1:0",
    registry: metrics.registry,
    readiness: [informersSynced(informers), leaderElectionHealthy({ health: () => election })],
  });
  t.after(() => server.close());

  const get = async (path: string) => {
    const res = await fetch(server.url + path);
    return { status: res.status, body: await res.text(), type: res.headers.get("content-type") };
  };
  assert.deepEqual((await get("/healthz")).status, 200);

  let ready = await get("/readyz");
  assert.equal(ready.status, 503);
  assert.match(ready.body, /\[-\]informers failed: 1 of 2 informers have not synced/);
  assert.match(ready.body, /\[-\]leader-election failed: the Lease has not been read yet/);

  informers[1]!.synced = true;
  election = true;
  ready = await get("/readyz");
  assert.equal(ready.status, 200);
  assert.equal(ready.body, "ok\n");
  assert.match((await get("/readyz?verbose")).body, /\[\+\]informers ok\n\[\+\]leader-election ok\nok/);

  server.addReadinessCheck({ name: "broken", check: () => { throw new Error("boom"); } });
  assert.match((await get("/readyz")).body, /\[-\]broken failed: check threw: boom/);

  const queue = { depth: 7 };
  metrics.observeQueue("DaguUser", queue);
  metrics.recordReconcile("DaguUser", "success", 0.02);
  metrics.recordReconcile("DaguUser", "error", 0.5);
  metrics.recordRetry("DaguUser");
  await metrics.timeHash("argon2id", async () => "hash");
  const scraped = await get("/metrics");
  assert.equal(scraped.status, 200);
  assert.match(scraped.type ?? "", /text\/plain/);
  for (const line of [
    'dagu_auth_operator_reconcile_total{kind="DaguUser",result="success"} 1',
    'dagu_auth_operator_reconcile_total{kind="DaguUser",result="error"} 1',
    'dagu_auth_operator_reconcile_duration_seconds_count{kind="DaguUser"} 2',
    'dagu_auth_operator_workqueue_depth{kind="DaguUser"} 7',
    'dagu_auth_operator_workqueue_retries_total{kind="DaguUser"} 1',
    'dagu_auth_operator_hash_duration_seconds_count{algorithm="argon2id"} 1',
  ]) {
    assert.ok(scraped.body.includes(line), `metrics contain ${line}`);
  }
  queue.depth = 0;
  assert.ok((await get("/metrics")).body.includes('dagu_auth_operator_workqueue_depth{kind="DaguUser"} 0'), "depth is sampled at scrape time");
  assert.equal((await get("/nope")).status, 404);
  assert.equal((await fetch(server.url + "/healthz", { method: "POST" })).status, 405);
});
