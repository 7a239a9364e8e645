// readBody and discardBody on a real loopback HTTP server: a refused upload is answered, not reset.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { DISCARD_BUDGET, discardBody, HttpError, readBody, sendError, sendJson } from "../../src/sidecar/answers/http-io.ts";

const LIMIT = 64 * 1024;
let server: Server;
let port: number;
const discarded: boolean[] = [];
let destroyedWait: { ended: boolean; ms: number } | undefined;

/** /read echoes the body's size or refuses it past LIMIT; /refuse refuses without reading (like a 401). */
async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    if (req.url === "/destroyed") {
      // As after an upstream failure that destroyed the request stream: no event will ever come.
      req.destroy();
      const t0 = performance.now();
      destroyedWait = { ended: await discardBody(req), ms: performance.now() - t0 };
      return;
    }
    if (req.url?.startsWith("/refuse")) throw new HttpError(401, "unauthorized", "no");
    const body = await readBody(req, LIMIT);
    sendJson(res, 200, { size: body.length });
  } catch (error) {
    const known = error as HttpError;
    const budget = req.url === "/refuse-tight" ? { bytes: 1024, ms: 200 } : undefined;
    const ended = await discardBody(req, budget);
    discarded.push(ended);
    if (!ended) res.setHeader("Connection", "close");
    sendError(res, known.status, known.code, known.message);
  }
}

before(async () => {
  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** Writes the whole request at once and reads the answer; rejects on a reset or a write error. */
function exchange(request: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("latin1");
      resolve({ status: Number(text.split(" ")[1]), text });
    });
    socket.write(request);
  });
}

/** Writes `head` and waits until the server closes the connection; the text it answered. */
function untilClosed(head: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.write(head);
  });
}

function chunked(path: string, size: number): Buffer {
  const piece = Buffer.alloc(16 * 1024, "x");
  const parts: Buffer[] = [Buffer.from(`POST ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n`)];
  for (let sent = 0; sent < size; sent += piece.length) parts.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n"));
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}

function sized(path: string, size: number): Buffer {
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: ${size}\r\n\r\n`), Buffer.alloc(size, "y")]);
}

describe("request bodies", () => {
  test("readBody returns a body within the limit", async () => {
    const r = await exchange(sized("/read", 1000));
    assert.equal(r.status, 200);
    assert.match(r.text, /\{"size":1000\}$/);
  });

  test("a chunked upload past the limit gets its 413 whole, never a reset (20 times)", async () => {
    discarded.length = 0;
    for (let i = 0; i < 20; i++) {
      const r = await exchange(chunked("/read", 2 * 1024 * 1024));
      assert.equal(r.status, 413);
      assert.match(r.text, /request body too large \(max 65536 bytes\)/);
    }
    assert.deepEqual(discarded, Array(20).fill(true), "the rest of each body was read before the answer");
  });

  test("a refusal before reading (401) is answered whole while the client still uploads", async () => {
    discarded.length = 0;
    for (let i = 0; i < 10; i++) {
      const r = await exchange(sized("/refuse", 3 * 1024 * 1024));
      assert.equal(r.status, 401);
    }
    assert.deepEqual(discarded, Array(10).fill(true));
  });

  test("a declared length past the budget is not read: the answer closes the connection", async () => {
    discarded.length = 0;
    // Headers only: a server that waited for these 100 MiB would never answer.
    const text = await untilClosed(`POST /read HTTP/1.1\r\nHost: t\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /connection: close/i);
    assert.deepEqual(discarded, [false]);
  });

  test("a request already destroyed is not waited for", async () => {
    await untilClosed("POST /destroyed HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(destroyedWait?.ended, false);
    // The budget's time is 2 s: a wait anywhere near it means discardBody listened for events that never come.
    assert.ok(destroyedWait.ms < DISCARD_BUDGET.ms / 2, `waited ${destroyedWait.ms.toFixed(0)} ms for a request that was gone`);
  });

  test("a body that stops arriving is waited for no longer than the budget's time", async () => {
    discarded.length = 0;
    const t0 = performance.now();
    const text = await untilClosed("POST /refuse-tight HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\nonly-this");
    const waited = performance.now() - t0;
    assert.match(text, /^HTTP\/1\.1 401 /);
    assert.deepEqual(discarded, [false]);
    assert.ok(waited >= 150, `answered after ${waited.toFixed(0)} ms, before the 200 ms budget ran out`);
  });
});
