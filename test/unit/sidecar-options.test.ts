// `dagu-auth sidecar` options that bound what an unauthenticated client can cost, and where metrics go.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseSidecarArgs, UsageError } from "../../src/sidecar/options.ts";
import { DEFAULTS } from "../../src/sidecar/server.ts";
import { daguBasePath } from "../../src/sidecar/main.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const parse = (...extra: string[]) => parseSidecarArgs(["--upstream", "http://127.0.0.1:8080", ...extra], {});

test("defaults: metrics on loopback, never the main port; short timeouts; caps and a budget", () => {
  const a = parse();
  assert.deepEqual(a.metricsListen, { host: "127.0.0.1", port: 9090 });
  assert.deepEqual(a.listen, { host: "127.0.0.1", port: 8443 });
  assert.deepEqual(
    [a.headersTimeout, a.requestTimeout, a.maxConnections, a.maxConnectionsPerClient, a.maxUnauthenticatedBodyBytes],
    [DEFAULTS.headersTimeoutSeconds, DEFAULTS.requestTimeoutSeconds, DEFAULTS.maxConnections, DEFAULTS.maxConnectionsPerClient, DEFAULTS.maxUnauthenticatedBodyBytes],
  );
  assert.ok(DEFAULTS.headersTimeoutSeconds < 60 && DEFAULTS.requestTimeoutSeconds < 300, "shorter than Node's own 60 s and 300 s");
});

test("--metrics-listen: HOST:PORT or off, never where users connect", () => {
  assert.equal(parse("--metrics-listen", "off").metricsListen, "off");
  assert.deepEqual(parse("--metrics-listen", "0.0.0.0:9100").metricsListen, { host: "0.0.0.0", port: 9100 });
  assert.deepEqual(parse("--metrics-listen", "127.0.0.1:0").metricsListen, { host: "127.0.0.1", port: 0 }, "an ephemeral port (tests)");
  for (const [listen, metrics] of [
    ["127.0.0.1:8443", "127.0.0.1:8443"],
    ["0.0.0.0:8443", "127.0.0.1:8443"],
    ["10.0.0.5:8443", "[::]:8443"],
  ]) {
    assert.throws(() => parse("--listen", listen!, "--metrics-listen", metrics!), (e: Error) => e instanceof UsageError && /--metrics-listen: must be another address than --listen/.test(e.message), `${listen} / ${metrics}`);
  }
  assert.deepEqual(parse("--listen", "10.0.0.5:8443", "--metrics-listen", "127.0.0.1:8443").metricsListen, { host: "127.0.0.1", port: 8443 }, "same port, other address");
  assert.throws(() => parse("--metrics-listen", "public"), /--metrics-listen: must be HOST:PORT \(e\.g\. 127\.0\.0\.1:9090\) or off/);
});

test("limits are checked and named", () => {
  assert.throws(() => parse("--headers-timeout", "0"), /--headers-timeout: --headers-timeout must be between 1 and 3600/);
  assert.throws(() => parse("--headers-timeout", "30", "--request-timeout", "20"), /--headers-timeout: must not be longer than --request-timeout/);
  assert.throws(() => parse("--max-connections-per-client", "lots"), /--max-connections-per-client must be a whole number of connections/);
  assert.throws(() => parse("--max-unauthenticated-body-bytes", "100"), /--max-unauthenticated-body-bytes must be between 1024/);
  assert.equal(parse("--max-connections", "50000").maxConnections, 50_000);
});

test("--dagu-base-path: a clean absolute path below the root, refused with the flag named otherwise", () => {
  assert.equal(parse("--dagu-base-path", "/dagu").daguBasePath, "/dagu");
  assert.equal(parse("--dagu-base-path", "/tools/dagu-1.x").daguBasePath, "/tools/dagu-1.x");
  assert.equal(parse().daguBasePath, undefined);
  const refused: [string, RegExp][] = [
    ["dagu", /must start with "\/"/],
    ["/dagu/", /must not end with "\/"/],
    ["/", /must not end with "\/"/],
    ["", /must not be empty/],
    ["/a//b", /empty segments/],
    ["/a/../b", /\. or \.\. segments/],
    ["/a/./b", /\. or \.\. segments/],
    ["/x/api", /segment "api"/],
    ["/API/x", /segment "API"/],
    ["/mcp", /segment "mcp"/],
    ["/%61pi", /letters, digits/],
    ["/da gu", /letters, digits/],
    ["/${BASE}", /letters, digits/],
    [`/${"a".repeat(200)}`, /at most 128 characters/],
  ];
  for (const [value, message] of refused) {
    assert.throws(() => parse("--dagu-base-path", value), (e: Error) => e instanceof UsageError && e.message.startsWith("--dagu-base-path: ") && message.test(e.message), value);
  }
});

test("with --config, Dagu's own base path (DAGU_BASE_PATH over base_path in the file, cleaned as Dagu does); a disagreeing flag is refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "base-path-config-"));
  try {
    const config = join(dir, "dagu.yaml");
    const at = async (yaml: string, env: NodeJS.ProcessEnv = {}, ...flags: string[]) => {
      await writeFile(config, yaml);
      return daguBasePath(parse("--config", config, ...flags), env);
    };
    assert.equal(await at("auth:\n  mode: builtin\n"), "");
    assert.equal(await at("base_path: /dagu\n"), "/dagu");
    assert.equal(await at("basePath: tools/dagu/\n"), "/tools/dagu", "Dagu 1's key; a leading slash added, the trailing one dropped");
    assert.equal(await at("base_path: /\n"), "", "the root is no base path");
    assert.equal(await at("base_path: /dagu\n", { DAGU_BASE_PATH: "/other" }), "/other", "the variable outranks the file, as in Dagu");
    assert.equal(await at("base_path: /dagu\n", {}, "--dagu-base-path", "/dagu"), "/dagu");
    await assert.rejects(at("base_path: /dagu\n", {}, "--dagu-base-path", "/other"), /--dagu-base-path \/other disagrees with Dagu's base path \/dagu/);
    await assert.rejects(at("base_path: /x/api\n"), /Dagu's base path "\/x\/api" .* is not supported: it must not contain a segment "api"/);
    await assert.rejects(at("base_path: 7\n"), /base_path in --config .* must be a string/);
    // Without --config the flag alone counts (DAGU_BASE_PATH is Dagu's, not the sidecar's).
    assert.equal(await daguBasePath(parse(), { DAGU_BASE_PATH: "/dagu" }), "");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
