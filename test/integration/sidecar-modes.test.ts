// The other ways to run the sidecar in front of a real Dagu: basic mode from a credentials file, Dagu's
// own auth: YAML (--config) with --state-dir, DAGU_AUTH_* variables alone, and the CLI's errors.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { freePort } from "../../dev/control-plane.ts";
import { eventually } from "../harness/per-test.ts";
import { CLI, startRecorder, startSidecar } from "../harness/sidecar.ts";
import { buildCredentials } from "../../dev/known-credentials.ts";

const API = "/api/v1";
let dagu: DaguInstance;
let dir: string;

before(async () => {
  dagu = await startDagu();
  dir = await mkdtemp(join(tmpdir(), "sidecar-modes-"));
});

after(async () => {
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

describe("basic mode (credentials file)", () => {
  test("the basic user is admin; a wrong password gets a Basic challenge; the UI runs in basic mode", async () => {
    const built = await buildCredentials({ mode: "basic", basic: { username: "ops", password: "basic-password-1" } });
    const file = join(dir, "basic.json");
    await writeFile(file, JSON.stringify(built.credentials));
    const sc = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", file] });
    try {
      const ok = await fetch(`${sc.url}${API}/dags`, { headers: { authorization: basic("ops", "basic-password-1") } });
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
      // Second time from the verify cache: no argon2 (measured: well under a millisecond server-side).
      const again = await fetch(`${sc.url}${API}/users`, { headers: { authorization: basic("ops", "basic-password-1") } });
      assert.equal(again.status, 200);
      await again.arrayBuffer();
      const wrong = await fetch(`${sc.url}${API}/dags`, { headers: { authorization: basic("ops", "nope") } });
      assert.equal(wrong.status, 401);
      assert.match(wrong.headers.get("www-authenticate") ?? "", /^Basic realm="dagu"/);
      await wrong.arrayBuffer();
      const anonymous = await fetch(`${sc.url}${API}/dags`);
      assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Basic/);
      await anonymous.arrayBuffer();
      const me = (await (await fetch(`${sc.url}${API}/auth/me`, { headers: { authorization: basic("ops", "basic-password-1") } })).json()) as { user: { role: string; username: string } };
      assert.deepEqual([me.user.username, me.user.role], ["ops", "admin"]);
      const login = await fetch(`${sc.url}${API}/auth/login`, { method: "POST", body: JSON.stringify({ username: "ops", password: "basic-password-1" }) });
      assert.equal(login.status, 401, "no JWT login in basic mode");
      await login.arrayBuffer();
      assert.match(await (await fetch(`${sc.url}/`)).text(), /authMode: "basic",/);
      // A browser replays remembered Basic credentials cross-site: writes from another origin are refused.
      const auth = { authorization: basic("ops", "basic-password-1"), "content-type": "application/json" };
      const csrf = await fetch(`${sc.url}${API}/dags`, { method: "POST", headers: { ...auth, origin: "https://evil.example" }, body: JSON.stringify({ name: "csrf" }) });
      assert.equal(csrf.status, 403);
      await csrf.arrayBuffer();
      const fetchMeta = await fetch(`${sc.url}${API}/dags/hello/stop-all`, { method: "POST", headers: { ...auth, "sec-fetch-site": "cross-site" } });
      assert.equal(fetchMeta.status, 403);
      await fetchMeta.arrayBuffer();
      // As a browser sends it: Dagu v2.15.1 itself refuses an Origin other than the Host it sees (the
      // sidecar's upstream address) unless Fetch Metadata says same-origin (docs/sidecar.md).
      const sameOrigin = await fetch(`${sc.url}${API}/dags`, { method: "POST", headers: { ...auth, origin: sc.url, "sec-fetch-site": "same-origin" }, body: JSON.stringify({ name: "same-origin-dag" }) });
      assert.equal(sameOrigin.status, 201, await sameOrigin.text());
      // Reads are not refused by the sidecar (the browser keeps their answers from the other site); Dagu
      // v2.15.1 then refuses the cross-origin request itself.
      const readCrossSite = await fetch(`${sc.url}${API}/dags`, { headers: { ...auth, origin: "https://evil.example" } });
      const readBody = await readCrossSite.text();
      assert.doesNotMatch(readBody, /cross-site request refused/);
      assert.deepEqual([readCrossSite.status, readBody.trim()], [403, "cross-origin request denied"]);
    } finally {
      await sc.stop();
    }
  });
});

describe("basic mode has no API keys or webhooks (Dagu's page: they require builtin)", () => {
  test("a basic-mode credentials file carrying an API key is refused, naming the field; nothing is served", async () => {
    const built = await buildCredentials({ mode: "builtin", apiKeys: [{ name: "ci", role: "viewer" }] });
    const withKey = await buildCredentials({ mode: "basic", basic: { username: "ops", password: "basic-password-1" } });
    const file = join(dir, "basic-with-key.json");
    await writeFile(file, JSON.stringify({ ...withKey.credentials, apiKeys: built.credentials.apiKeys }));
    const sc = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", file], wait: "live" });
    try {
      const ready = await fetch(`${sc.url}/readyz`);
      assert.equal(ready.status, 503);
      await ready.arrayBuffer();
      const key = await fetch(`${sc.url}${API}/dags`, { headers: { authorization: `Bearer ${built.apiKeys.ci}` } });
      assert.equal(key.status, 503, "fails closed");
      await key.arrayBuffer();
      assert.match(sc.output(), /apiKeys must be empty in basic mode: API keys need builtin mode/);
    } finally {
      await sc.stop();
    }
  });
});

describe("Dagu's own auth: configuration", () => {
  test("--config auth.yaml: the initial admin logs in; a password change and the token survive a restart", async () => {
    const config = join(dir, "config.yaml");
    await writeFile(
      config,
      ["auth:", "  mode: builtin", "  builtin:", "    token:", "      ttl: 2h", "    initial_admin:", "      username: root", "      password: root-password-1", ""].join("\n"),
    );
    const stateDir = join(dir, "state-config");
    const args = ["--config", config, "--state-dir", stateDir];
    let sc = await startSidecar({ upstream: dagu.url, args });
    const loginAs = async (password: string) => fetch(`${sc.url}${API}/auth/login`, { method: "POST", body: JSON.stringify({ username: "root", password }) });
    try {
      const first = await loginAs("root-password-1");
      assert.equal(first.status, 200);
      const { token, expiresAt } = (await first.json()) as { token: string; expiresAt: string };
      assert.ok(Math.abs(Date.parse(expiresAt) - Date.now() - 2 * 3600_000) < 60_000, "ttl from the config");
      const changed = await fetch(`${sc.url}${API}/auth/change-password`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ currentPassword: "root-password-1", newPassword: "root-password-2" }),
      });
      assert.equal(changed.status, 200);
      await changed.arrayBuffer();
      const fresh = ((await (await loginAs("root-password-2")).json()) as { token: string }).token;
      const port = sc.port;
      await sc.stop();

      // The state file is private and holds no plaintext.
      const stateFile = join(stateDir, "sidecar-state.json");
      assert.equal((await stat(stateFile)).mode & 0o777, 0o600);
      const state = await readFile(stateFile, "utf8");
      assert.ok(!state.includes("root-password"));

      sc = await startSidecar({ upstream: dagu.url, port, args });
      assert.equal((await loginAs("root-password-1")).status, 401, "the config's password lost to the newer change");
      assert.equal((await loginAs("root-password-2")).status, 200);
      const me = await fetch(`${sc.url}${API}/auth/me`, { headers: { authorization: `Bearer ${fresh}` } });
      assert.equal(me.status, 200, "the generated token secret was kept in --state-dir");
      await me.arrayBuffer();
    } finally {
      await sc.stop();
    }
  });

  test("--config is followed: a new password is in force within about a second; a bad edit keeps the last good one and turns readiness off", async () => {
    const config = join(dir, "live.yaml");
    const yaml = (password: string, ttl = "2h") => ["auth:", "  mode: builtin", "  builtin:", "    token:", `      ttl: ${ttl}`, "    initial_admin:", "      username: root", `      password: ${password}`, ""].join("\n");
    await writeFile(config, yaml("live-password-1"));
    const sc = await startSidecar({ upstream: dagu.url, args: ["--config", config] });
    const loginAs = async (password: string) => {
      const r = await fetch(`${sc.url}${API}/auth/login`, { method: "POST", body: JSON.stringify({ username: "root", password }) });
      return { status: r.status, token: r.ok ? ((await r.json()) as { token: string }).token : (await r.arrayBuffer(), "") };
    };
    const meStatus = async (token: string) => {
      const r = await fetch(`${sc.url}${API}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
      await r.arrayBuffer();
      return r.status;
    };
    try {
      const { token } = await loginAs("live-password-1");
      // An edit that keeps the password keeps the tokens (no state dir: the process remembers).
      await writeFile(config, yaml("live-password-1", "3h"));
      await eventually("the new ttl is in force", async () => {
        const r = await fetch(`${sc.url}${API}/auth/login`, { method: "POST", body: JSON.stringify({ username: "root", password: "live-password-1" }) });
        const { expiresAt } = (await r.json()) as { expiresAt: string };
        return Math.abs(Date.parse(expiresAt) - Date.now() - 3 * 3600_000) < 60_000 || undefined;
      }, 10_000, 100);
      assert.equal(await meStatus(token), 200, "the same password: earlier tokens stay valid");

      await writeFile(config, yaml("live-password-2"));
      await eventually("the new password works", async () => ((await loginAs("live-password-2")).status === 200) || undefined, 10_000, 100);
      assert.equal((await loginAs("live-password-1")).status, 401);
      assert.equal(await meStatus(token), 401, "tokens from before the change are refused");

      await writeFile(config, "auth:\n  mode: [unclosed\n  password: leaked-password-3\n");
      await eventually("readiness off", async () => {
        const r = await fetch(`${sc.url}/readyz`);
        const body = await r.text();
        return r.status === 503 ? body : undefined;
      }, 10_000, 100);
      const { token: current } = await loginAs("live-password-2");
      assert.ok(current, "the last good configuration stays in force");
      assert.ok(!sc.output().includes("leaked-password-3"), "the parser's quote of the bad line is not logged");
      // A self-service change while the file is broken: in force at once, and readiness stays off.
      const changed = await fetch(`${sc.url}${API}/auth/change-password`, {
        method: "POST",
        headers: { authorization: `Bearer ${current}`, "content-type": "application/json" },
        body: JSON.stringify({ currentPassword: "live-password-2", newPassword: "self-service-4" }),
      });
      assert.equal(changed.status, 200);
      await changed.arrayBuffer();
      assert.equal((await loginAs("self-service-4")).status, 200);
      assert.equal((await fetch(`${sc.url}/readyz`)).status, 503, "still not ready: the file is still broken");
      await writeFile(config, yaml("live-password-2"));
      await eventually("ready again", async () => (await fetch(`${sc.url}/readyz`)).status === 200 || undefined, 10_000, 100);
    } finally {
      await sc.stop();
    }
  });

  test("DAGU_AUTH_* alone: basic mode from the environment", async () => {
    const sc = await startSidecar({
      upstream: dagu.url,
      env: { PATH: process.env.PATH ?? "", DAGU_AUTH_MODE: "basic", DAGU_AUTH_BASIC_USERNAME: "envuser", DAGU_AUTH_BASIC_PASSWORD: "env-password-1" },
    });
    try {
      const r = await fetch(`${sc.url}${API}/dags`, { headers: { authorization: basic("envuser", "env-password-1") } });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
    } finally {
      await sc.stop();
    }
  });
});

describe("metrics and trusted proxies", () => {
  test("/metrics is served on --metrics-listen only, never on the main port (there it is Dagu's UI path)", async () => {
    const built = await buildCredentials({ users: [{ username: "ann", password: "ann-password-1", role: "viewer" }] });
    const file = join(dir, "metrics.json");
    await writeFile(file, JSON.stringify(built.credentials));
    const metricsPort = await freePort();
    const sc = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", file, "--metrics-listen", `127.0.0.1:${metricsPort}`] });
    try {
      const login = await fetch(`${sc.url}${API}/auth/login`, { method: "POST", body: JSON.stringify({ username: "ann", password: "ann-password-1" }) });
      const token = ((await login.json()) as { token: string }).token;
      await (await fetch(`${sc.url}${API}/dags`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer();
      await (await fetch(`${sc.url}${API}/users`, { headers: { authorization: `Bearer ${token}` } })).arrayBuffer();
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      assert.match(metrics, /dagu_auth_requests_total\{decision="allow",role="viewer",status="200"\} 1/);
      assert.match(metrics, /dagu_auth_requests_total\{decision="deny",role="viewer",status="403"\} 1/);
      assert.match(metrics, /dagu_auth_authentication_seconds_count\{method="jwt",result="ok"\} 2/);
      assert.match(metrics, /dagu_auth_upstream_seconds_count\{status_class="2xx"\} 1/);
      // Only the forwarded API request is timed (the refused one never reached the dispatch).
      assert.match(metrics, /dagu_auth_decision_seconds_count 1\n/);
      assert.match(metrics, /dagu_auth_credential_reloads_total\{result="loaded"\} 1/);
      assert.match(metrics, /dagu_auth_credentials_age_seconds \d/);
      assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
      const onMain = await fetch(`${sc.url}/metrics`);
      assert.match(await onMain.text(), /function getConfig/, "the main port passes /metrics to Dagu's UI");
    } finally {
      await sc.stop();
    }
  });

  test("--metrics-listen off: no metrics anywhere, and still none on the main port", async () => {
    const built = await buildCredentials({ users: [{ username: "ann", password: "ann-password-1", role: "viewer" }] });
    const file = join(dir, "metrics-off.json");
    await writeFile(file, JSON.stringify(built.credentials));
    const sc = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", file, "--metrics-listen", "off"] });
    try {
      const onMain = await fetch(`${sc.url}/metrics`);
      const text = await onMain.text();
      assert.doesNotMatch(text, /dagu_auth_/, "no metric on the port users reach");
      assert.match(text, /function getConfig/, "the path is Dagu's UI");
      assert.equal((await fetch(`${sc.url}/healthz`)).status, 200, "probes stay on the main port");
      assert.ok(sc.output().includes('"metrics":"off"'));
    } finally {
      await sc.stop();
    }
  });

  test("X-Forwarded-For is believed from a trusted proxy only", async () => {
    const recorder = await startRecorder(dagu.url);
    const built = await buildCredentials({ users: [{ username: "ann", password: "ann-password-1", role: "viewer" }], trustedProxies: ["127.0.0.1/32"] });
    const file = join(dir, "trusted.json");
    await writeFile(file, JSON.stringify(built.credentials));
    const sc = await startSidecar({ upstream: recorder.url, args: ["--credentials-file", file, "--dagu-api", "v1"] });
    try {
      const login = await fetch(`${sc.url}${API}/auth/login`, { method: "POST", body: JSON.stringify({ username: "ann", password: "ann-password-1" }) });
      const token = ((await login.json()) as { token: string }).token;
      recorder.clear();
      const r = await fetch(`${sc.url}${API}/dags`, { headers: { authorization: `Bearer ${token}`, "x-forwarded-for": "198.51.100.7, 203.0.113.9", "x-forwarded-proto": "https" } });
      await r.arrayBuffer();
      assert.equal(recorder.requests[0]!.headers["x-forwarded-for"], "203.0.113.9", "the hop the trusted proxy added");
      assert.equal(recorder.requests[0]!.headers["x-forwarded-proto"], "https", "the trusted proxy terminated TLS");
      // The audit line arrives through the child's stdout pipe, a moment after the response.
      await eventually("the audit line names the forwarded client", async () => sc.lines().some((l) => (l.audit as { client?: string } | undefined)?.client === "203.0.113.9") || undefined, 5000, 20);
    } finally {
      await sc.stop();
      await recorder.stop();
    }
  });
});

describe("CLI errors", () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "" }) =>
    new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      let stdout = "";
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.on("exit", (code) => resolve({ code, stderr, stdout }));
    });

  test("usage errors exit 2 with a message naming the option", async () => {
    const cases: [string[], RegExp][] = [
      [[], /usage: dagu-auth <command>/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["sidecar"], /--upstream is required/],
      [["sidecar", "--upstream", "ftp://x"], /--upstream must be an http\(s\) URL/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--credentials-file", "a", "--config", "b"], /--credentials-file or --config, not both/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--listen", "nohost"], /--listen: must be HOST:PORT/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--dagu-api", "v3"], /--dagu-api must be v1 \(Dagu 2\.x\) or v2 \(Dagu 1\.x\)/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--tls-cert", "c"], /--tls-cert and --tls-key go together/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--bogus"], /Unknown option '--bogus'/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--listen", "0.0.0.0:8443", "--metrics-listen", "127.0.0.1:8443"], /--metrics-listen: must be another address than --listen/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--metrics-listen", "public"], /--metrics-listen: must be HOST:PORT \(e\.g\. 127\.0\.0\.1:9090\) or off/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--headers-timeout", "0"], /--headers-timeout must be between 1 and 3600/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--headers-timeout", "90", "--request-timeout", "30"], /--headers-timeout: must not be longer than --request-timeout/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--max-connections", "many"], /--max-connections must be a whole number of connections/],
      [["sidecar", "--upstream", "http://127.0.0.1:1", "--max-unauthenticated-body-bytes", "10"], /--max-unauthenticated-body-bytes must be between 1024/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(" "));
      assert.match(r.stderr + r.stdout, message, args.join(" "));
    }
  });

  test("a configuration that cannot be enforced stops the start with exit 1", async () => {
    const r = await run(["sidecar", "--upstream", dagu.url, "--listen", "127.0.0.1:0"], { PATH: process.env.PATH ?? "", DAGU_AUTH_MODE: "none" });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /auth\.mode none leaves nothing to enforce/);
  });

  test("a metrics address that is taken stops the start with exit 1, naming the option", async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const port = (blocker.address() as AddressInfo).port;
      const r = await run(["sidecar", "--upstream", dagu.url, "--listen", "127.0.0.1:0", "--metrics-listen", `127.0.0.1:${port}`], {
        PATH: process.env.PATH ?? "",
        DAGU_AUTH_MODE: "basic",
        DAGU_AUTH_BASIC_USERNAME: "ann",
        DAGU_AUTH_BASIC_PASSWORD: "ann-password-1",
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port} .*choose another --metrics-listen HOST:PORT, or off`));
    } finally {
      blocker.close();
    }
  });
});
