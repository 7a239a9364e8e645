// Issue 15.5: memory and sockets before authentication, on the real sidecar in front of a real Dagu.
// Distinct clients are distinct loopback source addresses (127.0.x.y). The sidecar runs with short
// timeouts so the test is quick: --headers-timeout 3 (the head, and a body read before the caller is
// known), --request-timeout 8 (any whole request), a per-client cap of 300 connections and a budget of
// 64 KiB of unauthenticated body bytes (8 KiB per client).
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, test } from "node:test";
import { eventually } from "../harness/per-test.ts";
import { rawConnect, rawExchange } from "../harness/raw-http.ts";
import type { SidecarInstance } from "../harness/sidecar.ts";
import { startSidecarStack, type SidecarStack } from "../harness/stack.ts";

const HEADERS_TIMEOUT_S = 3;
const REQUEST_TIMEOUT_S = 8;
const PER_CLIENT = 300;
const BUDGET = 64 * 1024;

let stack: SidecarStack;
let sidecar: SidecarInstance;
let prefix: string;
let token: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  stack = await startSidecarStack({
    credentials: { users: [{ username: "ann", password: "ann-password-1", role: "admin" }] },
    sidecarArgs: [
      "--headers-timeout", String(HEADERS_TIMEOUT_S),
      "--request-timeout", String(REQUEST_TIMEOUT_S),
      "--max-connections-per-client", String(PER_CLIENT),
      "--max-unauthenticated-body-bytes", String(BUDGET),
    ],
  });
  ({ sidecar, prefix } = stack);
  token = (await login()).token!;
});

after(() => stack?.stop());

/** A real login from 127.0.0.1; its status, token and duration. */
async function login(): Promise<{ status: number; token?: string; ms: number }> {
  const t0 = performance.now();
  const r = await fetch(`${sidecar.url}${prefix}/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "ann", password: "ann-password-1" }) });
  const json = (await r.json()) as { token?: string };
  return { status: r.status, token: json.token, ms: performance.now() - t0 };
}

/**
 * `count` slowloris clients: each opens a connection, sends a request head a line at a time (never
 * finishing it) and opens a new one as soon as the server closes it. Their lifetimes are recorded (they
 * read what the server says, so they see the close).
 */
function slowloris(count: number, addresses: string[]) {
  let stopped = false;
  let open = 0;
  const lifetimes: number[] = [];
  const sockets = new Set<Socket>();
  const one = async (address: string) => {
    while (!stopped) {
      const socket = await rawConnect(sidecar.port, address).catch(() => undefined);
      if (!socket) {
        await sleep(50);
        continue;
      }
      const t0 = Date.now();
      open++;
      sockets.add(socket);
      socket.resume();
      socket.write(`POST ${prefix}/auth/login HTTP/1.1\r\nHost: dagu.test\r\n`);
      const drip = setInterval(() => socket.writable && socket.write("X-Slow: 1\r\n"), 500);
      await new Promise((r) => socket.once("close", r));
      clearInterval(drip);
      open--;
      sockets.delete(socket);
      if (!stopped) lifetimes.push(Date.now() - t0);
    }
  };
  const runners = Array.from({ length: count }, (_, i) => one(addresses[i % addresses.length]!));
  return {
    open: () => open,
    lifetimes,
    stop: async () => {
      stopped = true;
      for (const socket of sockets) socket.destroy();
      await Promise.all(runners);
    },
  };
}

describe("slow clients cannot starve the sidecar", () => {
  test("1,000 slowloris connections held open: real logins still succeed, and each slow connection is closed after the head timeout", async (t) => {
    const baseline: number[] = [];
    for (let i = 0; i < 5; i++) baseline.push((await login()).ms);
    const attack = slowloris(1000, ["127.0.1.1", "127.0.1.2", "127.0.1.3", "127.0.1.4"]);
    try {
      await eventually("1,000 slow connections open", async () => attack.open() >= 1000 || undefined, 20_000, 50);
      const results: { status: number; ms: number; held: number }[] = [];
      const until = Date.now() + 2.5 * HEADERS_TIMEOUT_S * 1000;
      while (Date.now() < until) {
        const held = attack.open();
        const r = await login();
        results.push({ status: r.status, ms: r.ms, held });
        await sleep(100);
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      t.diagnostic(
        `logins under attack: ${results.length}, all 200: ${results.every((r) => r.status === 200)}, median ${median(results.map((r) => r.ms)).toFixed(0)} ms ` +
          `(baseline ${median(baseline).toFixed(0)} ms), slow connections held while logging in: median ${median(results.map((r) => r.held))}, min ${Math.min(...results.map((r) => r.held))}, ` +
          `closed by the sidecar: ${attack.lifetimes.length}, longest life ${Math.max(...attack.lifetimes)} ms`,
      );
      assert.deepEqual(results.filter((r) => r.status !== 200), [], "every real login succeeded");
      // They all time out about together and reconnect at once: a login may fall into that moment.
      assert.ok(median(results.map((r) => r.held)) >= 900, "the slow connections were really held while logging in");
      assert.ok(attack.lifetimes.length >= 1000, `the sidecar closed the slow connections (${attack.lifetimes.length})`);
      // The head timeout ends each one (Node checks once a second): never the old 30 s or Node's 60 s.
      assert.ok(Math.max(...attack.lifetimes) <= (HEADERS_TIMEOUT_S + 3) * 1000, `longest slow connection lived ${Math.max(...attack.lifetimes)} ms`);
    } finally {
      await attack.stop();
    }
  });

  test("slow clients that never read are closed too, not left half-open holding their slots", async () => {
    const openConnections = async () => Number(/^dagu_auth_connections_open (\d+)/m.exec(await (await fetch(`${sidecar.metricsUrl()}/metrics`)).text())?.[1]);
    const before = await openConnections();
    const silent: Socket[] = [];
    try {
      for (let i = 0; i < 100; i++) {
        const socket = await rawConnect(sidecar.port, "127.0.5.1");
        socket.pause(); // never reads: it would never see the server's FIN
        socket.write(`POST ${prefix}/auth/login HTTP/1.1\r\nHost: dagu.test\r\n`);
        silent.push(socket);
      }
      await eventually("the sidecar counts them", async () => (await openConnections()) >= before + 100 || undefined, 5_000, 100);
      await sleep((HEADERS_TIMEOUT_S + 2) * 1000);
      assert.ok((await openConnections()) <= before + 2, `open after the head timeout: ${await openConnections()} (before: ${before})`);
    } finally {
      for (const s of silent) s.destroy();
    }
  });

  test(`more than ${PER_CLIENT} connections from one address are closed on arrival; other clients are unaffected`, async () => {
    const held: Socket[] = [];
    try {
      for (let i = 0; i < PER_CLIENT; i++) held.push(await rawConnect(sidecar.port, "127.0.2.1"));
      await sleep(200); // the sidecar has counted them
      const extra = await Promise.all(Array.from({ length: 10 }, () => rawConnect(sidecar.port, "127.0.2.1")));
      const other = await rawConnect(sidecar.port, "127.0.2.2");
      const closedSoon = (s: Socket) => Promise.race([new Promise<boolean>((r) => (s.destroyed ? r(true) : s.once("close", () => r(true)))), sleep(1000).then(() => false)]);
      assert.deepEqual(await Promise.all(extra.map(closedSoon)), Array(10).fill(true), "closed at once, long before the head timeout");
      assert.equal(await closedSoon(other), false, "another address keeps its connection");
      assert.equal((await login()).status, 200);
      other.destroy();
      const metrics = await (await fetch(`${sidecar.metricsUrl()}/metrics`)).text();
      assert.match(metrics, /dagu_auth_connections_refused_total\{reason="per_client"\} ([1-9]\d*)/);
    } finally {
      for (const s of held) s.destroy();
    }
  });

  test("a login body that does not arrive is answered 408 after the head timeout, not after the request timeout", async () => {
    const t0 = Date.now();
    const r = await rawExchange({
      port: sidecar.port,
      head: `POST ${prefix}/auth/login HTTP/1.1\r\nHost: dagu.test\r\nContent-Type: application/json\r\nContent-Length: 60`,
      body: "",
      withholdMs: (REQUEST_TIMEOUT_S + 2) * 1000,
      localAddress: "127.0.4.1",
    });
    const took = Date.now() - t0;
    assert.equal(r.status, 408, r.body);
    assert.ok(took < (REQUEST_TIMEOUT_S - 1) * 1000, `answered after ${took} ms`);
    assert.ok(took >= HEADERS_TIMEOUT_S * 1000 - 100, `not before the timeout (${took} ms)`);
  });

  test("an authenticated upload that stalls ends at the request timeout (Node's default: 300 s)", async () => {
    const t0 = Date.now();
    const r = await rawExchange({
      port: sidecar.port,
      head: `POST ${prefix}/dags HTTP/1.1\r\nHost: dagu.test\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100`,
      body: "",
      withholdMs: (REQUEST_TIMEOUT_S + 4) * 1000,
      localAddress: "127.0.4.2",
    });
    const took = Date.now() - t0;
    assert.ok(r.status === 408 || Number.isNaN(r.status), `status ${r.status}`);
    assert.ok(took < (REQUEST_TIMEOUT_S + 3) * 1000, `closed after ${took} ms`);
  });

  test("bodies read before the caller is known share a budget: 8 KiB per client, 64 KiB in all; a login still fits", async () => {
    const stalled: Socket[] = [];
    // A signed webhook request must be read whole before its signature can be checked.
    const head = (length: number) =>
      `POST ${prefix}/webhooks/nowhere HTTP/1.1\r\nHost: dagu.test\r\nContent-Type: application/json\r\nX-Dagu-Signature: sha256=${"0".repeat(64)}\r\nContent-Length: ${length}\r\n\r\n`;
    const hold = async (address: string) => {
      const s = await rawConnect(sidecar.port, address);
      s.write(head(8000));
      stalled.push(s);
    };
    // The body is never sent: an answer at all means the request was refused without reading it.
    const answer = (address: string) => rawExchange({ port: sidecar.port, head: head(8000).trimEnd(), localAddress: address });
    try {
      await hold("127.0.3.1");
      await sleep(300);
      const second = await answer("127.0.3.1");
      assert.equal(second.status, 429, "the client's share (8 KiB) is taken");
      assert.equal(second.headers["retry-after"], "1");
      for (let i = 2; i <= 8; i++) await hold(`127.0.3.${i}`);
      await sleep(300);
      const full = await answer("127.0.3.9");
      assert.equal(full.status, 503, "the whole budget (64 KiB) is taken");
      assert.equal(full.headers["retry-after"], "1");
      assert.equal((await login()).status, 200, "a login's small body still fits");
    } finally {
      for (const s of stalled) s.destroy();
    }
    await sleep(300);
    const after = await rawExchange({ port: sidecar.port, head: head(10).trimEnd(), body: "0123456789", withholdMs: 300, localAddress: "127.0.3.9" });
    assert.equal(after.status, 401, "released: read and refused as an unknown webhook");
  });
});
