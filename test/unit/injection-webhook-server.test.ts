// The webhook's HTTPS endpoint with stand-in look-ups (the real API server calls it in
// test/integration/injection.test.ts): bad requests get a 4xx with a short reason and never crash it;
// reviews are answered with the reason or a JSON Patch that turns the pod into the mutated one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import pino from "pino";
import { Registry } from "prom-client";
import type { KubeObject } from "../../src/common/kube/client.ts";
import { planCertificates } from "../../src/operator/injection/certificate-plan.ts";
import { InjectionConfig } from "../../src/operator/injection/config.ts";
import { injectPod } from "../../src/operator/injection/mutate.ts";
import { Pod } from "../../src/operator/injection/pod.ts";
import { WebhookServer } from "../../src/operator/injection/webhook-server.ts";

const material = planCertificates(undefined, new Date(), { hosts: ["127.0.0.1"], caValidityMs: 86_400_000, certValidityMs: 3_600_000, propagationMs: 1000 }).material;
const config = InjectionConfig.parse({ sidecar: { image: "dagu-auth:test" } });
const auths = new Map<string, KubeObject>([["ns/dagu", { metadata: { name: "dagu", namespace: "ns", uid: "u1" }, spec: { mode: "builtin" } }]]);
const sas = new Map<string, KubeObject>([["ns/dagu-sidecar", { metadata: { name: "dagu-sidecar", namespace: "ns", labels: { "auth.dagu.dev/auth": "dagu" } } }]]);

async function withServer(fn: (send: (opts: { method?: string; path?: string; type?: string; body?: string | Buffer }) => Promise<{ status: number; text: string }>) => Promise<void>): Promise<void> {
  const server = new WebhookServer({
    host: "127.0.0.1",
    port: 0,
    config,
    logger: pino({ level: "silent" }),
    registry: new Registry(),
    lookups: { daguAuth: async (ns, n) => auths.get(`${ns}/${n}`), serviceAccount: async (ns, n) => sas.get(`${ns}/${n}`) },
  });
  server.useCertificate({ cert: material.cert, key: material.key });
  const { port } = await server.listen();
  try {
    await fn(
      (o) =>
        new Promise((resolve, reject) => {
          const req = request({ host: "127.0.0.1", port, method: o.method ?? "POST", path: o.path ?? "/inject", ca: material.caBundle, headers: { "content-type": o.type ?? "application/json" } }, (res) => {
            let text = "";
            res.on("data", (d: Buffer) => (text += d.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
          });
          req.on("error", reject);
          req.end(o.body);
        }),
    );
  } finally {
    await server.close();
  }
}

const pod = (labels: Record<string, string>, annotations?: Record<string, string>) => ({
  metadata: { name: "p", labels, ...(annotations ? { annotations } : {}) },
  spec: { containers: [{ name: "dagu", image: "ghcr.io/dagucloud/dagu:2.15.1" }] },
});
const review = (object: unknown, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "u-1", kind: { group: "", version: "v1", kind: "Pod" }, namespace: "ns", operation: "CREATE", object, ...extra } });

test("bad requests: 404, 405, 415, 400 and 413 with a short reason; the server keeps answering", async () => {
  await withServer(async (send) => {
    assert.equal((await send({ path: "/other", body: "{}" })).status, 404);
    assert.equal((await send({ method: "GET" })).status, 405);
    assert.equal((await send({ type: "text/plain", body: "{}" })).status, 415);
    const notJson = await send({ body: "{not json" });
    assert.deepEqual([notJson.status, notJson.text], [400, "not JSON\n"]);
    const wrong = await send({ body: JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} }) });
    assert.equal(wrong.status, 400);
    assert.match(wrong.text, /not an admission\.k8s\.io\/v1 AdmissionReview/);
    const huge = await send({ body: Buffer.alloc(5 * 1024 * 1024, 0x20) });
    assert.equal(huge.status, 413);
    assert.equal((await send({ body: review(pod({ "auth.dagu.dev/inject": "dagu" })) })).status, 200, "still answering");
  });
});

test("reviews: the reason of a refusal, a skip with a warning, and a patch that yields the mutated pod", async () => {
  await withServer(async (send) => {
    const answer = async (body: string) => (JSON.parse((await send({ body })).text) as { response: { uid: string; allowed: boolean; status?: { message: string }; patch?: string; warnings?: string[] } }).response;
    const missing = await answer(review(pod({ "auth.dagu.dev/inject": "nope" })));
    assert.equal(missing.uid, "u-1");
    assert.equal(missing.allowed, false);
    assert.match(missing.status!.message, /DaguAuth nope \(named by auth\.dagu\.dev\/inject\) does not exist in namespace ns/);
    const bad = await answer(review(pod({ "auth.dagu.dev/inject": "Not A Name" })));
    assert.match(bad.status!.message, /must name a DaguAuth/);
    const update = await answer(review(pod({ "auth.dagu.dev/inject": "dagu" }), { operation: "UPDATE" }));
    assert.equal(update.allowed, false, "only creations are handled");
    const noSa = await answer(review({ ...pod({ "auth.dagu.dev/inject": "other" }) }));
    assert.equal(noSa.allowed, false);
    const skipped = await answer(review({ metadata: { annotations: { "auth.dagu.dev/inject": "dagu" } }, spec: { containers: [{ name: "w", args: ["dagu", "worker"] }] } }));
    assert.deepEqual([skipped.allowed, skipped.patch], [true, undefined]);
    assert.match(skipped.warnings![0]!, /dagu worker/);

    const original = pod({}, { "auth.dagu.dev/inject": "dagu" });
    const mutated = await answer(review(original));
    assert.equal(mutated.allowed, true);
    const ops = JSON.parse(Buffer.from(mutated.patch!, "base64").toString()) as { op: string; path: string; value?: unknown }[];
    const patched = structuredClone(original) as Record<string, Record<string, unknown>>;
    for (const op of ops) {
      const [, section, field] = op.path.split("/") as [string, string, string];
      if (op.op === "add") patched[section]![field] = op.value;
      else Reflect.deleteProperty(patched[section]!, field);
    }
    const expected = injectPod(Pod.parse(original), { namespace: "ns", authName: "dagu", serviceAccountName: "dagu-sidecar" }, config);
    assert.equal(expected.kind, "inject");
    assert.deepEqual(patched, JSON.parse(JSON.stringify((expected as { pod: unknown }).pod)));
  });
});
