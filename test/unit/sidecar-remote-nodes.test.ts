// The sidecar's egress to Dagu's remote nodes, with a recording upstream in place of the remote's sidecar
// (the whole chain with real Dagus is test/integration/remote-nodes.test.ts): the node's current key is
// sent, the browser's credentials and forwarding headers are not, only the configured nodes are reached,
// only below their URL, and a missing key is a 503, not an unauthenticated request.
import { test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import type { Credentials, SsoUsers } from "../../src/api/credentials.ts";
import { CredentialStore } from "../../src/sidecar/credentials/credential-store.ts";
import type { CredentialSource, CredentialSourceEvents, SsoUsersChange } from "../../src/sidecar/credentials/credential-source.ts";
import { request } from "node:http";
import { RemoteNodeEgress, type SecretValues } from "../../src/sidecar/proxy/remote-nodes.ts";
import { EventEmitter } from "node:events";
import { startRecorder } from "../harness/sidecar.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

class StaticSource extends EventEmitter<CredentialSourceEvents> implements CredentialSource {
  readonly description = "static";
  readonly doc: Credentials;
  constructor(doc: Credentials) {
    super();
    this.doc = doc;
  }
  async start() {
    this.emit("change", this.doc);
  }
  async stop() {}
  current() {
    return this.doc;
  }
  async recordPasswordChange() {}
  ssoUsers(): SsoUsers {
    return {};
  }
  async updateSsoUsers<T>(change: SsoUsersChange<T>): Promise<T> {
    return change({}).result;
  }
}

test("the egress sends the node's current key, strips the browser's credentials, and refuses what it must", async () => {
  const remote = await startRecorder();
  const built = await buildCredentials({});
  const doc: Credentials = { ...built.credentials, remoteNodes: [{ name: "team-b", url: `${remote.url}/base/`, token: { secretName: "k", key: "apiKey" } }] };
  const store = new CredentialStore(new StaticSource(doc));
  await store.start();
  const values = new Map<string, string>([["k/apiKey", "dagu_first"]]);
  const followed: string[][] = [];
  const secrets: SecretValues = { follow: (n) => void followed.push([...n]), value: (s, k) => values.get(`${s}/${k}`), stop: async () => undefined };
  const egress = new RemoteNodeEgress({ listen: { host: "127.0.0.1", port: 0 }, store, secrets, logger: pino({ level: "silent" }) });
  const { port } = await egress.start();
  const base = `http://127.0.0.1:${port}`;
  try {
    assert.deepEqual(followed.at(-1), ["k"], "the node's Secret is followed");
    const r = await fetch(`${base}/team-b/api/v1/dags?x=1`, { headers: { authorization: "Bearer user-token", cookie: "session=s", "x-forwarded-for": "1.2.3.4", "x-custom": "kept" } });
    assert.equal(r.status, 200);
    const seen = remote.requests.at(-1)!;
    assert.equal(seen.url, "/base/api/v1/dags?x=1", "below the node's URL, query kept");
    assert.equal(seen.headers.authorization, "Bearer dagu_first");
    assert.equal(seen.headers.cookie, undefined);
    assert.equal(seen.headers["x-forwarded-for"], undefined);
    assert.equal(seen.headers["x-custom"], "kept");
    const posted = await fetch(`${base}/team-b/api/v1/dags/x/start`, { method: "POST", body: JSON.stringify({ a: 1 }), headers: { "content-type": "application/json" } });
    assert.equal(posted.status, 200);
    assert.ok(remote.requests.at(-1)!.complete, "the body went through");

    values.set("k/apiKey", "dagu_rotated"); // the watch delivered a rotation
    await (await fetch(`${base}/team-b/api/v1/dags`)).arrayBuffer();
    assert.equal(remote.requests.at(-1)!.headers.authorization, "Bearer dagu_rotated");

    const before = remote.requests.length;
    // Raw paths (fetch would resolve the dot segments itself).
    const raw = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: "127.0.0.1", port, path }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    for (const [path, status] of [["/nobody/api/v1/dags", 404], ["/team-b/api/v1/../../etc", 400], ["/team-b/../x", 400], ["/team-b/api/v1/%2e%2e/x", 400], ["/team-b/..%2Fadmin", 400], ["/team-b/a\\..\\b", 400]] as const) {
      const bad = await raw(path);
      assert.equal(bad.status, status, path);
      assert.ok((JSON.parse(bad.body) as { code: string }).code.length > 0);
    }
    values.delete("k/apiKey");
    assert.equal((await fetch(`${base}/team-b/api/v1/dags`)).status, 503, "no key: nothing is sent unauthenticated");
    assert.equal(remote.requests.length, before, "none of these reached the remote");
  } finally {
    await egress.stop();
    await store.stop();
    await remote.stop();
  }
});
