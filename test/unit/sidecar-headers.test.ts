// Header hygiene: what a client may not send to Dagu, and whose address is the client's.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  clientAddress,
  clientProto,
  connectionTokens,
  filterResponseHeaders,
  forwardRequestHeaders,
  isStrippedRequestHeader,
  TrustedProxies,
} from "../../src/sidecar/proxy/headers.ts";
import { queryParam, withoutParam } from "../../src/sidecar/proxy/query.ts";

test("identity, forwarding and hop-by-hop headers are stripped in every spelling", () => {
  for (const name of [
    "X-Forwarded-For",
    "x-forwarded-host",
    "X_Forwarded_For",
    "x_forwarded_proto",
    "Forwarded",
    "X-Real-IP",
    "X_Real_IP",
    "X-Remote-User",
    "X_Remote_User",
    "X-Auth-Request-User",
    "X-Authenticated-User",
    "X-User",
    "X-User-Id",
    "X_User_Role",
    "X-Original-URL",
    "True-Client-IP",
    "Authorization",
    "Proxy-Authorization",
    "Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "Host",
    "Expect",
  ]) {
    assert.equal(isStrippedRequestHeader(name), true, name);
  }
  for (const name of ["Accept", "Content-Type", "Content-Length", "Cookie", "User-Agent", "Accept-Encoding", "X-Request-Id"]) {
    assert.equal(isStrippedRequestHeader(name), false, name);
  }
});

test("forwarded headers: the client's kept, the sidecar's own forwarding set, Connection-named dropped", () => {
  const raw = [
    "Host", "dagu.example.com",
    "Accept", "application/json",
    "X-Forwarded-For", "6.6.6.6",
    "X_Forwarded_For", "6.6.6.6",
    "Authorization", "Bearer secret",
    "Connection", "keep-alive, X-Custom-Hop",
    "X-Custom-Hop", "1",
    "Cookie", "a=b",
  ];
  const out = forwardRequestHeaders(raw, { clientAddress: "10.1.2.3", proto: "https", host: "dagu.example.com", connectionTokens: connectionTokens(raw) });
  assert.deepEqual(out, [
    "Accept", "application/json",
    "Cookie", "a=b",
    "X-Forwarded-For", "10.1.2.3",
    "X-Forwarded-Proto", "https",
    "X-Forwarded-Host", "dagu.example.com",
  ]);
});

test("an odd Host is not repeated in X-Forwarded-Host", () => {
  const out = forwardRequestHeaders([], { clientAddress: "1.1.1.1", proto: "http", host: "evil\u0000.com" });
  assert.ok(!out.includes("X-Forwarded-Host"));
});

test("the client address: the peer, unless the peer is a trusted proxy", () => {
  const none = new TrustedProxies([]);
  assert.equal(clientAddress("10.0.0.5", ["1.2.3.4"], none), "10.0.0.5");
  const trusted = new TrustedProxies(["10.0.0.0/8", "fd00::/8"]);
  assert.equal(clientAddress("10.0.0.5", ["1.2.3.4"], trusted), "1.2.3.4");
  assert.equal(clientAddress("::ffff:10.0.0.5", ["1.2.3.4, 10.0.0.7"], trusted), "1.2.3.4", "walks past trusted hops, v4-mapped peer");
  assert.equal(clientAddress("10.0.0.5", ["6.6.6.6, 1.2.3.4"], trusted), "1.2.3.4", "a spoofed left entry is ignored");
  assert.equal(clientAddress("10.0.0.5", ["not-an-ip"], trusted), "10.0.0.5", "garbage is never believed");
  assert.equal(clientAddress("10.0.0.5", [], trusted), "10.0.0.5");
  assert.equal(clientAddress("192.168.1.1", ["1.2.3.4"], trusted), "192.168.1.1", "untrusted peer");
  assert.equal(clientAddress("fd00::1", ["2001:db8::9"], trusted), "2001:db8::9");
});

test("the client's scheme: ours, unless a trusted proxy says it in one X-Forwarded-Proto", () => {
  const trusted = new TrustedProxies(["10.0.0.0/8"]);
  assert.equal(clientProto("10.0.0.5", ["X-Forwarded-Proto", "https"], trusted, "http"), "https", "the ingress terminated TLS");
  assert.equal(clientProto("::ffff:10.0.0.5", ["x-forwarded-proto", "HTTPS"], trusted, "http"), "https");
  assert.equal(clientProto("192.168.1.1", ["X-Forwarded-Proto", "https"], trusted, "http"), "http", "an untrusted claim is ignored");
  assert.equal(clientProto("10.0.0.5", ["X-Forwarded-Proto", "https", "X-Forwarded-Proto", "http"], trusted, "http"), "http", "two values: none believed");
  assert.equal(clientProto("10.0.0.5", ["X-Forwarded-Proto", "gopher"], trusted, "https"), "https");
  assert.equal(clientProto("10.0.0.5", ["X_Forwarded_Proto", "https"], trusted, "http"), "http", "the underscore spelling is never read");
  assert.equal(clientProto("10.0.0.5", [], trusted, "http"), "http");
});

test("response headers lose hop-by-hop ones", () => {
  const out = filterResponseHeaders({ "content-type": "text/plain", connection: "close, x-hop", "x-hop": "1", "transfer-encoding": "chunked", "set-cookie": ["a=1", "b=2"] });
  assert.deepEqual(out, { "content-type": "text/plain", "set-cookie": ["a=1", "b=2"] });
});

test("query helpers: ?token= is read and removed, other parameters keep their encoding", () => {
  assert.equal(queryParam("a=1&token=abc.def&b=%2F", "token"), "abc.def");
  assert.equal(queryParam("tok%65n=x", "token"), "x");
  assert.equal(withoutParam("a=1&token=abc&b=%2F", "token"), "a=1&b=%2F");
  assert.equal(withoutParam("token=abc", "token"), undefined);
  assert.equal(withoutParam(undefined, "token"), undefined);
});
