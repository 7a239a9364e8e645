// npm run bench:login: can the owner of an account log in while others hammer it? (issue 15.2)
// The real sidecar (src/cli.ts, one child process per scenario, fresh throttle state each) with the
// default login settings (5 attempts, 15 min window, 15 min lockout). Every client is its own loopback
// source address (127.x.y.z), so the sidecar sees distinct peers. In each scenario attackers send wrong
// passwords as fast as the sidecar answers them for BENCH_SECONDS, while the victim logs in with the
// right password every 250 ms from an address that never failed. Printed per scenario: the victim's
// successes and latency (median, p95, and the median's ratio to the quiet baseline measured in the same
// run), and what the attackers got: password checks actually run (401), refusals without a hash (429),
// and their request rate. Last line: one JSON object with every figure.
//
// Scenarios: quiet (no attacker); 8 and 64 attackers on "admin", each from its own address; a botnet of
// 32 loops whose every attempt comes from a new address (4,096 in all); one shared address (an ingress
// without trusted proxies) from which 16 loops spray many usernames and hammer "admin" while another
// user behind the same address logs in.
//
// Environment: BENCH_SECONDS (8); BENCH_SIDECAR_CLI: another sidecar to measure the same way (e.g. an older
// commit's src/cli.ts from `git archive`, with node_modules linked beside it) for a baseline.
import { spawn, type ChildProcess } from "node:child_process";
import { Agent, createServer, request } from "node:http";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { buildCredentials } from "../dev/known-credentials.ts";
import { repoRoot } from "../dev/components.ts";
import { freePort } from "../dev/control-plane.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? "") > 0 ? Number(process.env.BENCH_SECONDS) : 8;
const CLI = process.env.BENCH_SIDECAR_CLI ?? join(repoRoot, "src", "cli.ts");
const PREFIX = "/api/v2"; // the sidecar runs with --dagu-api v2; logins never reach the upstream
const VICTIM_EVERY_MS = 250;
const PASSWORDS = { admin: "admin-password-for-bench", alice: "alice-password-for-bench" };

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (values: number[], q: number): number => {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

interface Sidecar {
  readonly port: number;
  stop(): Promise<void>;
}

/** Sidecars running now: stopped on SIGINT/SIGTERM and on exit, never left behind. */
const running = new Set<ChildProcess>();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    for (const child of running) child.kill("SIGKILL");
    process.exit(130);
  });
}
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

async function startSidecar(upstream: string, credentialsFile: string): Promise<Sidecar> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    // An older build (BENCH_SIDECAR_CLI) may not know `--metrics-listen off`.
    [CLI, "sidecar", "--upstream", upstream, "--listen", `127.0.0.1:${port}`, ...(process.env.BENCH_SIDECAR_CLI ? [] : ["--metrics-listen", "off"]), "--credentials-file", credentialsFile, "--dagu-api", "v2", "--log-level", "error"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => (running.delete(child), resolve())));
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      await r.arrayBuffer();
      if (r.ok) return { port, stop: async () => void (child.kill("SIGTERM"), await exited) };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error("the sidecar did not become ready");
}

/** One login; agent undefined: a new connection (a client seen once). */
function login(port: number, from: string, agent: Agent | undefined, username: string, password: string): Promise<{ status: number; ms: number; message: string }> {
  const body = JSON.stringify({ username, password });
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: `${PREFIX}/auth/login`, localAddress: agent ? undefined : from, agent: agent ?? false, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (d: string) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, message: res.statusCode === 200 ? "" : text }));
      },
    );
    req.on("error", (error) => resolve({ status: 0, ms: performance.now() - t0, message: error.message }));
    // A request that hangs (e.g. no ephemeral port left for a new connection) ends as "other".
    req.setTimeout(30_000, () => req.destroy(new Error("timed out")));
    req.end(body);
  });
}

interface Attack {
  /** Loops running at once; each gives the address and the username of its next attempt. */
  readonly loops: number;
  next(loop: number, attempt: number): { from: string; username: string; keepAlive: boolean };
}

interface Figures {
  /** The victim's answers by status (200 logged in; "429 throttled", "429 busy": too many checks in progress). */
  victimStatuses: Record<string, number>;
  victimOk: number;
  victimTries: number;
  victimP50Ms: number;
  victimP95Ms: number;
  victimP50Ratio?: number;
  attackerHashed: number;
  attackerRefused: number;
  attackerOther: number;
  attackerRate: number;
}

async function scenario(upstream: string, credentialsFile: string, attack: Attack | undefined, victim: { from: string; username: keyof typeof PASSWORDS }): Promise<Figures> {
  const sidecar = await startSidecar(upstream, credentialsFile);
  try {
    return await measure(sidecar, attack, victim);
  } finally {
    await sidecar.stop();
  }
}

async function measure(sidecar: Sidecar, attack: Attack | undefined, victim: { from: string; username: keyof typeof PASSWORDS }): Promise<Figures> {
  // One keep-alive connection per loop (and one for the victim): clients behind one address do not queue
  // behind each other in this process.
  const agents = new Map<string, Agent>();
  const agentFor = (who: string, from: string) => {
    let agent = agents.get(`${who}@${from}`);
    if (!agent) agents.set(`${who}@${from}`, (agent = new Agent({ keepAlive: true, localAddress: from, maxSockets: 1 })));
    return agent;
  };
  const counts = { hashed: 0, refused: 0, other: 0 };
  let stop = false;
  const loops = Array.from({ length: attack?.loops ?? 0 }, async (_, loop) => {
    for (let attempt = 0; !stop; attempt++) {
      const { from, username, keepAlive } = attack!.next(loop, attempt);
      const r = await login(sidecar.port, from, keepAlive ? agentFor(`attacker${loop}`, from) : undefined, username, `wrong-${loop}-${attempt}`);
      if (r.status === 401) counts.hashed++;
      else if (r.status === 429) counts.refused++;
      else counts.other++;
    }
  });
  // Give the attack a head start, so the victim logs in while it is already in full swing.
  const started = performance.now();
  if (attack) await sleep(Math.min(2_000, (SECONDS * 1000) / 4));
  const latencies: number[] = [];
  let ok = 0;
  let tries = 0;
  const statuses: Record<string, number> = {};
  const victimAgent = agentFor("victim", victim.from);
  while (performance.now() - started < SECONDS * 1000) {
    const r = await login(sidecar.port, victim.from, victimAgent, victim.username, PASSWORDS[victim.username]);
    tries++;
    // 429 says why: the throttle ("failed attempts") or the process-wide bound on password checks ("in progress").
    const key = r.status === 429 ? (r.message.includes("in progress") ? "429 busy" : "429 throttled") : String(r.status);
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (r.status === 200) ok++;
    latencies.push(r.ms);
    await sleep(VICTIM_EVERY_MS);
  }
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  for (const agent of agents.values()) agent.destroy();
  return {
    victimStatuses: statuses,
    victimOk: ok,
    victimTries: tries,
    victimP50Ms: Math.round(quantile(latencies, 0.5)),
    victimP95Ms: Math.round(quantile(latencies, 0.95)),
    attackerHashed: counts.hashed,
    attackerRefused: counts.refused,
    attackerOther: counts.other,
    attackerRate: Math.round((counts.hashed + counts.refused + counts.other) / elapsed),
  };
}

async function main(): Promise<void> {
  const upstream = createServer((_req, res) => res.end("{}"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(tmpdir(), "bench-login-"));
  const file = join(dir, "credentials.json");
  const built = await buildCredentials({
    users: [
      { username: "admin", password: PASSWORDS.admin, role: "admin" },
      { username: "alice", password: PASSWORDS.alice, role: "viewer" },
    ],
    login: { maxAttempts: 5, windowSeconds: 900, lockoutSeconds: 900 },
  });
  await writeFile(file, JSON.stringify(built.credentials));
  say(`${CLI}: ${SECONDS} s per scenario, victim every ${VICTIM_EVERY_MS} ms, load average at start ${loadavg()[0]!.toFixed(2)}`);

  const own = (n: number): Attack => ({ loops: n, next: (loop) => ({ from: `127.0.${100 + (loop >> 7)}.${(loop & 127) + 1}`, username: "admin", keepAlive: true }) });
  const botnet: Attack = {
    loops: 32,
    next: (loop, attempt) => {
      const n = (attempt * 32 + loop) % 4096;
      return { from: `127.1.${n >> 7}.${(n & 127) + 1}`, username: "admin", keepAlive: false };
    },
  };
  const shared: Attack = { loops: 16, next: (loop, attempt) => ({ from: "127.0.50.1", username: attempt % 4 === 0 ? "admin" : `user${loop}-${attempt}`, keepAlive: true }) };

  const results: Record<string, Figures> = {};
  const report = (name: string, f: Figures) => {
    results[name] = f;
    if (name !== "quiet") f.victimP50Ratio = Math.round((f.victimP50Ms / results.quiet!.victimP50Ms) * 100) / 100;
    say(
      `${name.padEnd(22)} victim ${f.victimOk}/${f.victimTries} logged in ${JSON.stringify(f.victimStatuses)}, p50 ${f.victimP50Ms} ms, p95 ${f.victimP95Ms} ms` +
        (f.victimP50Ratio !== undefined ? ` (p50 ${f.victimP50Ratio}x quiet)` : "") +
        (f.attackerRate > 0 ? `; attackers ${f.attackerRate} req/s: ${f.attackerHashed} checked (401), ${f.attackerRefused} refused unhashed (429), ${f.attackerOther} other` : ""),
    );
  };
  try {
    report("quiet", await scenario(upstreamUrl, file, undefined, { from: "127.0.200.1", username: "admin" }));
    report("8 attackers", await scenario(upstreamUrl, file, own(8), { from: "127.0.200.2", username: "admin" }));
    report("64 attackers", await scenario(upstreamUrl, file, own(64), { from: "127.0.200.3", username: "admin" }));
    report("botnet (4,096 addrs)", await scenario(upstreamUrl, file, botnet, { from: "127.0.200.4", username: "admin" }));
    report("shared address", await scenario(upstreamUrl, file, shared, { from: "127.0.50.1", username: "alice" }));
  } finally {
    upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify({ seconds: SECONDS, loadAverageAtStart: loadavg()[0], ...results })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:login failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
