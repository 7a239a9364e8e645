// Streams through the sidecar. Against the real Dagu v2.15.1: its multiplexed SSE stream and topic
// mutation, and a multi-megabyte log. The timing properties (nothing buffered before the last event, a
// graceful shutdown that lets an open stream finish) and the WebSocket (Dagu registers its terminal only
// with its own auth on) are shown in front of a small Dagu 2.x stand-in whose stream ends when the test
// says. Also: the Dagu 2 route table chosen by detection, `?token=` accepted only on streaming routes, and
// open streams ended when their credential is revoked (a disabled user, a removed API key).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer as createNetServer, type AddressInfo, type Server as NetServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import { startFakeDagu2, startSidecar, type FakeDagu2, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

let fake: FakeDagu2;
let sidecar: SidecarInstance;
let built: TestCredentials;
let dir: string;
const tokens: Record<string, string> = {};

before(async () => {
  fake = await startFakeDagu2();
  dir = await mkdtemp(join(tmpdir(), "sidecar-stream-"));
  built = await buildCredentials({
    users: [
      { username: "admin", password: "admin-password-1", role: "admin" },
      { username: "vic", password: "viewer-password-1", role: "viewer" },
      { username: "rita", password: "revoked-password-1", role: "admin" },
    ],
    apiKeys: [{ name: "streamer", role: "viewer" }],
  });
  await writeFile(join(dir, "credentials.json"), JSON.stringify(built.credentials));
  sidecar = await startSidecar({ upstream: fake.url, args: ["--credentials-file", join(dir, "credentials.json")] });
  for (const [u, p] of [["admin", "admin-password-1"], ["vic", "viewer-password-1"], ["rita", "revoked-password-1"]] as const) {
    const r = await fetch(`${sidecar.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: u, password: p }) });
    tokens[u] = ((await r.json()) as { token: string }).token;
  }
});

after(async () => {
  await sidecar?.stop();
  await fake?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The credentials file, changed by `change` until `restore()`: both sidecars of this file read it. */
let generation = 1;
async function writeCredentials(change: (c: TestCredentials["credentials"]) => void): Promise<{ restore(): Promise<void> }> {
  // Each document a newer generation: the sidecar never goes back to an older one.
  const write = (c: TestCredentials["credentials"]) => writeFile(join(dir, "credentials.json"), JSON.stringify({ ...c, generation: built.credentials.generation + generation++ }));
  const changed = structuredClone(built.credentials);
  change(changed);
  await write(changed);
  return { restore: () => write(built.credentials) };
}

/** Resolves with "ended" when the stream ends (done or cut), or "open" when `ms` pass first. */
async function endsWithin(reader: ReadableStreamDefaultReader<Uint8Array>, ms: number): Promise<"ended" | "open"> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const next = await Promise.race<"ended" | "data" | "open">([
      reader.read().then(
        (r) => (r.done ? "ended" : "data"),
        () => "ended",
      ),
      new Promise<"open">((resolve) => setTimeout(() => resolve("open"), Math.max(0, deadline - Date.now()))),
    ]);
    if (next !== "data") return next;
  }
  return "open";
}

/** Reads a stream until `marker` shows up; resolves with what was read. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, marker: string): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  while (!text.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

/**
 * Writes raw bytes on a new connection (and `next` once `after` shows up in the answer); resolves with
 * everything read until the connection closes, `until` shows up, or 5 s pass.
 */
function exchange(port: number, request: string, options: { next?: string; after?: string; until?: string } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    let sent = false;
    socket.setEncoding("latin1");
    socket.setTimeout(5000, () => socket.destroy());
    socket.on("data", (d: string) => {
      text += d;
      if (options.next !== undefined && !sent && text.includes(options.after ?? "\r\n\r\n")) {
        sent = true;
        socket.write(options.next);
      }
      if (options.until !== undefined && text.includes(options.until)) socket.destroy();
    });
    // A late write may meet a connection the sidecar already closed (EPIPE, ECONNRESET): what was read counts.
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(text));
    socket.write(request);
  });
}

const wsHeaders = "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

describe("Dagu 2.x upstream", () => {
  test("detection picked the Dagu 2 table (/api/v1); /api/v2 is refused", async () => {
    const ok = await fetch(`${sidecar.url}/api/v1/dags`, { headers: { authorization: `Bearer ${tokens.vic}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { path: "/api/v1/dags" });
    const wrong = await fetch(`${sidecar.url}/api/v2/dags`, { headers: { authorization: `Bearer ${tokens.vic}` } });
    assert.equal(wrong.status, 404);
    await wrong.arrayBuffer();
    const me = await fetch(`${sidecar.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${tokens.vic}` } });
    assert.equal(((await me.json()) as { user: { role: string } }).user.role, "viewer");
    assert.ok(sidecar.output().includes('"daguApi":"v1"'));
  });

  test("Dagu 2's OIDC routes and any path with an `mcp` segment but /mcp itself (outside /api/v1, unauthenticated with auth off) are refused; /mcp needs a credential", async () => {
    fake.clear();
    for (const path of ["/mcp/tools", "/MCP", "/%6dcp", "/x/mcp", "/oidc-login", "/oidc-callback?code=x"]) {
      const r = await fetch(`${sidecar.url}${path}`, { headers: { authorization: `Bearer ${tokens.admin}` } });
      // An escaped unreserved character (`%6d`) is a malformed path (400) before it is anything else.
      assert.equal(r.status, path.includes("%") ? 400 : 404, path);
      await r.arrayBuffer();
    }
    const mcpPost = await fetch(`${sidecar.url}/mcp`, { method: "POST", body: "{}" });
    assert.equal(mcpPost.status, 401);
    await mcpPost.arrayBuffer();
    assert.deepEqual(fake.requests, []);
  });

  test("SSE: the first event arrives while the stream is still open, and the rest after", async () => {
    fake.clear();
    const response = await fetch(`${sidecar.url}/api/v1/events/stream`, { headers: { authorization: `Bearer ${tokens.vic}` } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const reader = response.body!.getReader();
    const first = await readUntil(reader, "data: first");
    assert.match(first, /event: hello\ndata: first/);
    assert.ok(!first.includes("bye"), "the last event has not been sent yet: nothing was buffered");
    fake.releaseStreams();
    const rest = await readUntil(reader, "data: last");
    assert.match(rest, /event: bye/);
    assert.equal((await reader.read()).done, true);
  });

  test("SSE with ?token= (as Dagu's UI sends it): accepted, and the token is not passed to Dagu", async () => {
    fake.clear();
    const response = await fetch(`${sidecar.url}/api/v1/events/stream?token=${tokens.vic}&x=1`);
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    await readUntil(reader, "data: first");
    await reader.cancel();
    const seen = fake.requests.find((r) => r.url.startsWith("/api/v1/events/stream"))!;
    assert.equal(seen.url, "/api/v1/events/stream?x=1");
    assert.equal(seen.headers.authorization, undefined);
  });

  test("SSE without a credential is 401; ?token= on a non-streaming route is 401", async () => {
    fake.clear();
    const anonymous = await fetch(`${sidecar.url}/api/v1/events/stream`);
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
    const notStreaming = await fetch(`${sidecar.url}/api/v1/dags?token=${tokens.admin}`);
    assert.equal(notStreaming.status, 401);
    await notStreaming.arrayBuffer();
    assert.deepEqual(fake.requests, []);
  });

  test("WebSocket: upgraded after authentication (admin), refused for a viewer and without a token", async () => {
    const upgrade = (query: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(sidecar.port, "127.0.0.1");
        let data = "";
        socket.setEncoding("utf8");
        socket.on("data", (d: string) => {
          data += d;
          if (data.includes("\r\n\r\n") && (!data.startsWith("HTTP/1.1 101") || data.includes("ping-through"))) {
            socket.destroy();
            resolve(data);
          }
        });
        socket.on("error", reject);
        socket.write(
          `GET /api/v1/terminal/ws${query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Remote-User: admin\r\n\r\n`,
        );
        socket.once("data", () => socket.write("ping-through"));
      });
    fake.clear();
    const ok = await upgrade(`?token=${tokens.admin}`);
    assert.match(ok, /^HTTP\/1\.1 101/);
    assert.ok(ok.includes("ping-through"), "bytes flow both ways");
    const seen = fake.requests.find((r) => r.url.startsWith("/api/v1/terminal/ws"))!;
    assert.equal(seen.url, "/api/v1/terminal/ws");
    assert.equal(seen.headers["x-remote-user"], undefined);
    assert.equal(seen.headers.upgrade, "websocket");
    fake.clear();
    assert.match(await upgrade(`?token=${tokens.vic}`), /^HTTP\/1\.1 403/);
    assert.match(await upgrade(""), /^HTTP\/1\.1 401/);
    assert.deepEqual(fake.requests, []);
  });

  test("WebSocket: an open terminal session ends when its user is disabled", async () => {
    const socket = connect(sidecar.port, "127.0.0.1");
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (data += d));
    socket.on("error", () => undefined);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(`GET /api/v1/terminal/ws?token=${tokens.rita} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n${wsHeaders}\r\n`);
    await eventually("the upgrade", async () => (data.startsWith("HTTP/1.1 101") ? true : undefined), 5_000, 20);
    socket.write("still-here");
    await eventually("bytes echoed through the open session", async () => (data.includes("still-here") ? true : undefined), 5_000, 20);
    const changed = await writeCredentials((c) => void (c.users.find((u) => u.username === "rita")!.disabled = true));
    try {
      await eventually("the terminal closed", () => Promise.race([closed.then(() => true), new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]), 10_000, 0);
      const metrics = await (await fetch(`${sidecar.metricsUrl()}/metrics`)).text();
      assert.match(metrics, /dagu_auth_streams_ended_total\{reason="jwt_[a-z_]+"\} 1/, "the sidecar ended it, for its credential");
    } finally {
      socket.destroy();
      await changed.restore();
    }
  });

  test("WebSocket: any other Upgrade (h2c) is refused with 400 and reaches nothing; `WebSocket` in any case works", async () => {
    fake.clear();
    const h2c = await exchange(
      sidecar.port,
      `GET /api/v1/terminal/ws?token=${tokens.admin} HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
    );
    assert.match(h2c, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.match(h2c, /Connection: close\r\n/);
    assert.ok(h2c.endsWith('{"code":"bad_request","message":"only WebSocket upgrades are accepted (Upgrade: websocket)"}'), h2c);
    assert.equal(fake.requests.length, 0, "nothing may reach Dagu");
    // RFC 6455: the Upgrade value is case-insensitive.
    const mixed = await exchange(sidecar.port, `GET /api/v1/terminal/ws?token=${tokens.admin} HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n${wsHeaders}\r\n`, { next: "echo-me", until: "echo-me" });
    assert.match(mixed, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    assert.ok(mixed.endsWith("\r\n\r\necho-me"), "bytes flow both ways after the 101");
    assert.deepEqual(fake.requests.map((r) => r.headers.upgrade), ["WebSocket"]);
  });

  test("SIGTERM lets an open stream finish, then the process exits 0", async () => {
    const response = await fetch(`${sidecar.url}/api/v1/events/stream`, { headers: { authorization: `Bearer ${tokens.vic}` } });
    const reader = response.body!.getReader();
    await readUntil(reader, "data: first");
    sidecar.process.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(sidecar.process.exitCode, null, "still serving the open stream");
    const refused = await new Promise<string>((resolve) => {
      const socket = connect(sidecar.port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve("accepted");
      });
      socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    assert.equal(refused, "ECONNREFUSED", "no new connections after SIGTERM");
    fake.releaseStreams();
    assert.match(await readUntil(reader, "data: last"), /event: bye/);
    assert.equal(await sidecar.stop(), 0);
  });
});

describe("an upstream that refuses the WebSocket upgrade", () => {
  // A raw stand-in: every request head it sees is recorded and answered 404 with keep-alive, as a Dagu
  // without the terminal route would. The sidecar must relay the 404 and close, never join the sockets.
  let upstream: NetServer;
  let sc: SidecarInstance;
  let bytes = "";
  const requestLines: string[] = [];
  before(async () => {
    upstream = createNetServer((socket) => {
      let pending = "";
      socket.setEncoding("latin1");
      socket.on("error", () => undefined);
      socket.on("data", (d: string) => {
        bytes += d;
        pending += d;
        for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
          requestLines.push(pending.slice(0, end).split("\r\n")[0]!);
          pending = pending.slice(end + 4);
          socket.write("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: keep-alive\r\n\r\nnot found");
        }
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    sc = await startSidecar({ upstream: url, args: ["--credentials-file", join(dir, "credentials.json"), "--dagu-api", "v1"] });
  });
  after(async () => {
    await sc?.stop();
    await new Promise<void>((resolve) => upstream?.close(() => resolve()) ?? resolve());
  });
  const clear = () => {
    bytes = "";
    requestLines.splice(0);
  };
  const upgrade = () => `GET /api/v1/terminal/ws?token=${tokens.admin} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n${wsHeaders}\r\n`;
  const smuggled = "POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  const assertOnlyTheUpgradeReached = async () => {
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(requestLines, ["GET /api/v1/terminal/ws HTTP/1.1"]);
    assert.ok(!bytes.includes("/api/v1/users"), bytes);
  };

  test("Dagu's 404 reaches the client with Connection: close; a request written after it never reaches Dagu", async () => {
    clear();
    const text = await exchange(sc.port, upgrade(), { after: "not found", next: smuggled });
    assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.match(text, /\r\nConnection: close\r\n/);
    assert.ok(!/keep-alive/i.test(text), text);
    assert.ok(text.endsWith("\r\n\r\nnot found"), "the body, then the close: no answer to the second request");
    await assertOnlyTheUpgradeReached();
    await eventually(
      "the audit line records Dagu's status",
      async () => sc.lines().some((l) => (l.audit as { operation?: string; status?: number } | undefined)?.operation === "terminalWebSocket" && (l.audit as { status: number }).status === 404) || undefined,
      5000,
      20,
    );
  });

  test("bytes sent right behind the upgrade request, before Dagu answers, never reach Dagu", async () => {
    clear();
    const text = await exchange(sc.port, upgrade() + smuggled);
    assert.match(text, /^HTTP\/1\.1 404 Not Found\r\n/);
    assert.equal(text.match(/HTTP\/1\.1 /g)?.length, 1);
    await assertOnlyTheUpgradeReached();
  });
});

describe("the real Dagu v2.15.1: SSE and large responses", () => {
  let dagu: DaguInstance;
  let sc: SidecarInstance;
  let vic: string;
  let admin: string;
  const loginAs = async (username: string, password: string) => {
    const r = await fetch(`${sc.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) });
    return ((await r.json()) as { token: string }).token;
  };
  before(async () => {
    // A step that writes ~2 MB of log (300,000 lines), read back through the sidecar.
    dagu = await startDagu({ dags: { big: "steps:\n  - name: spew\n    command: seq 1 300000\n" } });
    sc = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", join(dir, "credentials.json")] });
    vic = await loginAs("vic", "viewer-password-1");
    admin = await loginAs("admin", "admin-password-1");
  });
  after(async () => {
    await sc?.stop();
    await dagu?.stop();
  });

  test("the multiplexed stream opens with ?token= (as Dagu's UI sends it), and its topics change with a Bearer token", async () => {
    assert.ok(sc.output().includes('"daguApi":"v1"'), "detected /api/v1 on the real Dagu");
    const controller = new AbortController();
    const stream = await fetch(`${sc.url}/api/v1/events/stream?topic=queues:&token=${vic}`, { signal: controller.signal });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = stream.body!.getReader();
    const first = await readUntil(reader, "\n\n");
    assert.match(first, /event: control\n/);
    const control = JSON.parse(/data: (.*)\n/.exec(first)![1]!) as { sessionID: string; subscribed: string[] };
    assert.deepEqual(control.subscribed, ["queues:"]);
    const mutate = (token?: string) =>
      fetch(`${sc.url}/api/v1/events/stream/topics`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ sessionID: control.sessionID, add: ["dagslist:page=1"], remove: [] }),
      });
    const anonymous = await mutate();
    assert.equal(anonymous.status, 401);
    await anonymous.arrayBuffer();
    const changed = await mutate(vic);
    assert.equal(changed.status, 200, await changed.clone().text());
    assert.deepEqual(((await changed.json()) as { subscribed: string[] }).subscribed.sort(), ["dagslist:page=1", "queues:"]);
    controller.abort();
    await reader.cancel().catch(() => undefined);
    const refused = await fetch(`${sc.url}/api/v1/events/stream?topic=queues:`);
    assert.equal(refused.status, 401, "no stream without a credential");
    await refused.arrayBuffer();
  });

  test("a revoked credential ends its open stream (a disabled user's JWT, a removed API key); other streams go on", async () => {
    const open = async (auth: { bearer?: string; token?: string }) => {
      const controller = new AbortController();
      const r = await fetch(`${sc.url}/api/v1/events/stream?topic=queues:${auth.token ? `&token=${auth.token}` : ""}`, {
        signal: controller.signal,
        headers: auth.bearer ? { authorization: `Bearer ${auth.bearer}` } : {},
      });
      assert.equal(r.status, 200);
      const reader = r.body!.getReader();
      const first = await readUntil(reader, "\n\n");
      const control = JSON.parse(/data: (.*)\n/.exec(first)![1]!) as { sessionID: string };
      return { controller, reader, session: control.sessionID };
    };
    const rita = await open({ token: tokens.rita });
    const key = await open({ bearer: built.apiKeys.streamer });
    const admin = await open({ bearer: tokens.admin });
    const changed = await writeCredentials((c) => {
      c.users.find((u) => u.username === "rita")!.disabled = true;
      c.apiKeys = c.apiKeys.filter((k) => k.name !== "streamer");
    });
    try {
      // The file is polled about every second; the open streams are checked as soon as it is in force.
      assert.equal(await endsWithin(rita.reader, 10_000), "ended", "the disabled user's stream ended");
      assert.equal(await endsWithin(key.reader, 3_000), "ended", "the removed key's stream ended");
      // The admin's stream is still Dagu's live session: its topics can still be changed.
      const topics = await fetch(`${sc.url}/api/v1/events/stream/topics`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${tokens.admin}` },
        body: JSON.stringify({ sessionID: admin.session, add: ["dagslist:page=1"], remove: [] }),
      });
      assert.equal(topics.status, 200, await topics.clone().text());
      await topics.arrayBuffer();
      const reopen = await fetch(`${sc.url}/api/v1/events/stream?topic=queues:&token=${tokens.rita}`);
      assert.equal(reopen.status, 401, "and it cannot be opened again");
      await reopen.arrayBuffer();
      const metrics = await (await fetch(`${sc.metricsUrl()}/metrics`)).text();
      assert.match(metrics, /dagu_auth_streams_ended_total\{reason="jwt_[a-z_]+"\} 1/);
      assert.match(metrics, /dagu_auth_streams_ended_total\{reason="api_key_unknown"\} 1/);
    } finally {
      admin.controller.abort();
      for (const s of [rita, key, admin]) await s.reader.cancel().catch(() => undefined);
      await changed.restore();
    }
  });

  test("a multi-megabyte step log flows through unchanged", async () => {
    const start = await fetch(`${sc.url}/api/v1/dags/big/start`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ dagRunId: "big-1" }) });
    assert.equal(start.status, 200, `${await start.text()}\n${await dagu.log()}`);
    let status = 0;
    for (let i = 0; i < 150 && status !== 4; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const d = await fetch(`${dagu.url}/api/v1/dag-runs/big/big-1`);
      status = d.status === 200 ? ((await d.json()) as { dagRunDetails: { status: number } }).dagRunDetails.status : 0;
    }
    assert.equal(status, 4, "the run succeeded");
    const direct = await (await fetch(`${dagu.url}/api/v1/dag-runs/big/big-1/steps/spew/log?stream=stdout&limit=1000000`)).text();
    const proxied = await fetch(`${sc.url}/api/v1/dag-runs/big/big-1/steps/spew/log?stream=stdout&limit=1000000`, { headers: { authorization: `Bearer ${vic}` } });
    const body = await proxied.text();
    assert.equal(proxied.status, 200);
    assert.ok(body.length > 1_000_000, `${body.length} bytes`);
    assert.equal(body, direct);
  });
});
