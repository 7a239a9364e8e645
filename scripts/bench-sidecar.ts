// npm run bench:sidecar: what the sidecar costs on the request path, all on 127.0.0.1 in one run.
// A small fast upstream (fixed JSON, scripts/bench-sidecar-upstream.ts) is measured directly, through a
// naive Node keep-alive proxy (the baseline), through the sidecar with a JWT, an API key and Basic, and
// through nginx (1 worker) without auth and with auth_basic on a bcrypt-10 htpasswd. Closed loop with wrk
// (installed from Debian when missing; an undici generator otherwise), plus an open-loop undici generator
// at 1,000 req/s for the p99 the sidecar adds. Prints one line per figure and, last, one JSON object;
// docs/benchmarks.md ("Sidecar") says how to read them.
//
// Environment: BENCH_SECONDS (8), BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS (3), BENCH_CONNECTIONS (32),
// BENCH_OPEN_RATE (1000), BENCH_NO_INSTALL=1 (never run apt-get), BENCH_GENERATOR=undici (the undici
// closed-loop generator even when wrk is there), BENCH_WAIT_QUIET=N (before each set of
// measurements, wait up to N seconds for other work on the machine to drop below a quarter of a core),
// BENCH_CPU_PROFILE=DIR (the sidecars write V8 CPU profiles there when they stop; open them in DevTools),
// BENCH_SIDECAR_NODE_FLAGS (more node flags for the sidecars, e.g. "--trace-gc"; their output goes to
// the sidecar log files, kept with BENCH_KEEP_LOGS=1).
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { accessSync, constants as fsConstants, openSync, closeSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { buildCredentials } from "../dev/known-credentials.ts";
import { repoRoot } from "../dev/components.ts";
import { freePort } from "../dev/control-plane.ts";
import { UPSTREAM_BODY, type LoadOptions, type LoadResult } from "./bench-sidecar-upstream.ts";

const envNumber = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? "");
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
const SECONDS = envNumber("BENCH_SECONDS", 8);
const WARMUP_SECONDS = envNumber("BENCH_WARMUP_SECONDS", 2);
const ROUNDS = Math.round(envNumber("BENCH_ROUNDS", 3));
const CONNECTIONS = Math.round(envNumber("BENCH_CONNECTIONS", 32));
/** bcrypt-10 on one nginx worker serializes every request: more connections only add queueing. */
const NGINX_BCRYPT_CONNECTIONS = 4;
const OPEN_RATE = envNumber("BENCH_OPEN_RATE", 1000);
const CPU_PROFILE_DIR = process.env.BENCH_CPU_PROFILE;
const WAIT_QUIET_SECONDS = process.env.BENCH_WAIT_QUIET ? envNumber("BENCH_WAIT_QUIET", 0) : 0;
const PATH = "/api/v1/dags"; // a viewer route of the Dagu v2.15.1 table (routes.ts: listDAGs)
const HELPER = join(repoRoot, "scripts", "bench-sidecar-upstream.ts");
const CLI = join(repoRoot, "src", "cli.ts");

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round2 = (n: number) => Math.round(n * 100) / 100;
const round3 = (n: number) => Math.round(n * 1000) / 1000;
const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const rate = (n: number) => `${Math.round(n).toLocaleString("en-US")} req/s`;
const ms = (n: number) => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;

// ------------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped at the end, on error and on SIGINT/SIGTERM.

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
}
const children = new Set<Child>();

function track(name: string, child: ChildProcess): Child {
  const entry: Child = { name, process: child, exited: new Promise((resolve) => child.once("exit", () => resolve())) };
  children.add(entry);
  void entry.exited.then(() => children.delete(entry));
  return entry;
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

async function stopChild(entry: Child, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (running(entry.process)) entry.process.kill(signal);
  const killed = await Promise.race([entry.exited.then(() => true), sleep(5_000).then(() => false)]);
  if (!killed && running(entry.process)) {
    entry.process.kill("SIGKILL");
    await entry.exited;
  }
  children.delete(entry);
}

async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** Temporary directories (credentials, logs, nginx's prefix), removed at the end whatever happens. */
const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

async function cleanup(): Promise<void> {
  await stopAll();
  const dirs = tempDirs.splice(0);
  if (process.env.BENCH_KEEP_LOGS === "1") say(`kept: ${dirs.join(", ")}`);
  else await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
}

let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    say(`${signal}: stopping every child process`);
    void cleanup().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  });
}

/** Runs a command to its end (tracked, so an interrupt ends it too); output captured. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    track(command, child);
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", (error) => resolve({ code: -1, stdout, stderr: `${stderr}${error.message}` }));
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** A Node child (the upstream, the naive proxy) that prints `{"port": N}` first. */
async function startNodeServer(name: string, args: string[]): Promise<{ url: string; child: Child }> {
  const child = track(name, spawn(process.execPath, [HELPER, ...args], { stdio: ["ignore", "pipe", "inherit"] }));
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    const onData = (d: string) => {
      buffered += d;
      const newline = buffered.indexOf("\n");
      if (newline < 0) return;
      child.process.stdout!.off("data", onData);
      child.process.stdout!.resume(); // nothing more is expected; never let the pipe fill
      try {
        resolve((JSON.parse(buffered.slice(0, newline)) as { port: number }).port);
      } catch (error) {
        reject(new Error(`${name} printed ${JSON.stringify(buffered)} instead of its port: ${(error as Error).message}`));
      }
    };
    child.process.stdout!.setEncoding("utf8").on("data", onData);
    child.process.once("exit", (code) => reject(new Error(`${name} exited with ${code} before listening`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

// ------------------------------------------------------------------------------------------------
// Tools: wrk, nginx, htpasswd from Debian, installed when missing.

function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/bin", "/sbin", "/bin"].filter(Boolean);
  for (const dir of dirs) {
    try {
      accessSync(join(dir, name), fsConstants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return undefined;
}

interface Tools {
  wrk?: string;
  nginx?: string;
  htpasswd?: string;
}

async function ensureTools(): Promise<Tools> {
  const wanted = [
    { tool: "wrk", pkg: "wrk" },
    { tool: "nginx", pkg: "nginx-light" },
    { tool: "htpasswd", pkg: "apache2-utils" },
  ] as const;
  const missing = wanted.filter((w) => !which(w.tool) && !(w.tool === "wrk" && process.env.BENCH_GENERATOR === "undici"));
  if (missing.length > 0 && process.env.BENCH_NO_INSTALL !== "1") {
    const pkgs = missing.map((m) => m.pkg);
    say(`installing ${pkgs.join(", ")} with apt-get (missing: ${missing.map((m) => m.tool).join(", ")})`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const install = (names: string[]) => run("apt-get", ["install", "-y", "--no-install-recommends", ...names], env);
    let result = await install(pkgs);
    if (result.code !== 0) {
      // The package lists may be missing or stale: refresh once, then one package at a time.
      await run("apt-get", ["update"], env);
      for (const pkg of pkgs) {
        result = await install([pkg]);
        if (result.code !== 0) say(`apt-get install ${pkg} failed (${result.code}): ${result.stderr.trim().split("\n").pop() ?? ""}`);
      }
    }
  }
  return { wrk: process.env.BENCH_GENERATOR === "undici" ? undefined : which("wrk"), nginx: which("nginx"), htpasswd: which("htpasswd") };
}

// ------------------------------------------------------------------------------------------------
// CPU accounting from /proc (Linux): how many cores a process, and the whole machine, used.

const TICKS_PER_SECOND = 100; // USER_HZ
function processTicks(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return undefined;
  }
}
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total }; // minus idle and iowait
}
/** The pids of a process's children (nginx's worker under its master). */
function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Cores busy on the machine over `ms` while this benchmark sends nothing: other work skewing the figures. */
async function backgroundCores(ms = 1000): Promise<number> {
  const a = machineTicks();
  await sleep(ms);
  const b = machineTicks();
  return round2(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * availableParallelism());
}
const background: number[] = [];
const QUIET_CORES = 0.25;
async function sampleBackground(when: string): Promise<void> {
  let cores = await backgroundCores();
  // BENCH_WAIT_QUIET=N: wait up to N seconds for the other work to calm down before measuring.
  const deadline = Date.now() + WAIT_QUIET_SECONDS * 1000;
  if (cores > QUIET_CORES && WAIT_QUIET_SECONDS > 0) say(`${when}: ${cores.toFixed(2)} cores busy with other work; waiting up to ${WAIT_QUIET_SECONDS} s for a quieter machine`);
  while (cores > QUIET_CORES && Date.now() < deadline) cores = await backgroundCores();
  background.push(cores);
  say(`${when}: ${cores.toFixed(2)} cores busy with other work before it${cores > QUIET_CORES ? " (figures skewed)" : ""}`);
}

interface CpuUse {
  /** Cores busy on the whole machine (load generator, proxy, upstream and anything else running). */
  machine: number;
  /** Cores used by the process under test (the proxy, the sidecar, nginx's worker). */
  front?: number;
  /** Cores used by the upstream. */
  upstream?: number;
}

async function withCpu<T>(pids: { front?: number[]; upstream?: number }, work: () => Promise<T>): Promise<{ result: T; cpu: CpuUse }> {
  const sum = (list: number[] | undefined) => {
    if (!list || list.length === 0) return undefined;
    let total = 0;
    for (const pid of list) {
      const t = processTicks(pid);
      if (t === undefined) return undefined;
      total += t;
    }
    return total;
  };
  const m0 = machineTicks();
  const f0 = sum(pids.front);
  const u0 = processTicks(pids.upstream);
  const t0 = performance.now();
  const result = await work();
  const seconds = (performance.now() - t0) / 1000;
  const m1 = machineTicks();
  const f1 = sum(pids.front);
  const u1 = processTicks(pids.upstream);
  const cores = availableParallelism();
  const cpu: CpuUse = { machine: round2(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * cores) };
  if (f0 !== undefined && f1 !== undefined) cpu.front = round2((f1 - f0) / TICKS_PER_SECOND / seconds);
  if (u0 !== undefined && u1 !== undefined) cpu.upstream = round2((u1 - u0) / TICKS_PER_SECOND / seconds);
  return { result, cpu };
}

// ------------------------------------------------------------------------------------------------
// Load generators

interface Measured {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpu?: CpuUse;
}

const toMs = (value: string, unit: string) => Number(value) * (unit === "us" ? 0.001 : unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : NaN);

function parseWrk(output: string, what: string): Measured & { socketErrors?: string } {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(output);
  const p = (q: string) => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(output);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  if (!rps) throw new Error(`wrk printed no Requests/sec for ${what}:\n${output}`);
  if (non2xx && Number(non2xx[1]) > 0) throw new Error(`${what}: ${non2xx[1]} answers were not 2xx (the credential or the route is wrong):\n${output}`);
  const socket = /Socket errors:.*$/m.exec(output);
  return { rps: Number(rps[1]), p50Ms: p("50"), p99Ms: p("99"), socketErrors: socket?.[0] };
}

async function runWrk(wrk: string, url: string, headers: string[], connections: number, seconds: number): Promise<string> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "10s", ...headers.flatMap((h) => ["-H", h]), url];
  const r = await run(wrk, args);
  if (r.code !== 0) throw new Error(`wrk ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function runLoadChild(options: LoadOptions): Promise<LoadResult> {
  const r = await run(process.execPath, [HELPER, "load", JSON.stringify(options)]);
  const last = r.stdout.trim().split("\n").pop() ?? "";
  if (r.code !== 0 || !last.startsWith("{")) throw new Error(`the undici load generator failed (${r.code}): ${r.stderr}${r.stdout}`);
  const result = JSON.parse(last) as LoadResult;
  if (result.errors > 0) throw new Error(`${options.url}: ${result.errors} failed requests (first: ${result.firstError})`);
  return result;
}

interface Target {
  key: string;
  label: string;
  url: string;
  /** Full header lines, e.g. "Authorization: Bearer ...". */
  headers: string[];
  connections: number;
  pids: { front?: () => number[]; upstream?: number };
}

const headerRecord = (lines: string[]) => Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));

/** Closed loop: warm-up, then the measured run (wrk -t1, or the undici generator without wrk). */
async function closedLoop(tools: Tools, target: Target): Promise<Measured> {
  const url = `${target.url}${PATH}`;
  const pids = { front: target.pids.front?.(), upstream: target.pids.upstream };
  if (tools.wrk) {
    await runWrk(tools.wrk, url, target.headers, target.connections, WARMUP_SECONDS);
    const { result: output, cpu } = await withCpu(pids, () => runWrk(tools.wrk!, url, target.headers, target.connections, SECONDS));
    const parsed = parseWrk(output, target.label);
    if (parsed.socketErrors) say(`  (${target.label}: wrk ${parsed.socketErrors})`);
    return { rps: parsed.rps, p50Ms: parsed.p50Ms, p99Ms: parsed.p99Ms, cpu };
  }
  const { result, cpu } = await withCpu(pids, () =>
    runLoadChild({ mode: "closed", url, headers: headerRecord(target.headers), connections: target.connections, warmupSeconds: WARMUP_SECONDS, seconds: SECONDS }),
  );
  return { rps: result.rps, p50Ms: result.p50Ms, p99Ms: result.p99Ms, cpu };
}

/** The answer must be the upstream's own body with 200: a 401 or 404 measured fast means nothing. */
async function expectUpstreamBody(label: string, url: string, headers: string[]): Promise<void> {
  const response = await fetch(`${url}${PATH}`, { headers: headerRecord(headers) });
  const body = await response.text();
  if (response.status !== 200 || body !== UPSTREAM_BODY) throw new Error(`${label}: GET ${PATH} answered ${response.status} ${body.slice(0, 200)}`);
}

/** A Prometheus histogram as scraped: cumulative counts by upper bound (seconds), +Inf last. */
type Histogram = { bound: number; count: number }[];

async function scrapeHistogram(url: string, name: string): Promise<Histogram> {
  const text = await (await fetch(url)).text();
  const rows: Histogram = [];
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, "gm"))) rows.push({ bound: m[1] === "+Inf" ? Infinity : Number(m[1]), count: Number(m[2]) });
  if (rows.length === 0) throw new Error(`${url} has no ${name} histogram`);
  return rows;
}

/** The upper bound (ms) of the bucket that holds quantile q of what was observed between two scrapes. */
function histogramQuantile(before: Histogram, after: Histogram, q: number): number {
  const delta = after.map((row, i) => ({ bound: row.bound, count: row.count - (before[i]?.count ?? 0) }));
  const total = delta[delta.length - 1]!.count;
  const hit = delta.find((row) => row.count >= q * total);
  return (hit?.bound ?? Infinity) * 1000;
}

// ------------------------------------------------------------------------------------------------
// The sidecar and nginx

async function startSidecar(name: string, upstream: string, credentialsFile: string, logFile: string, metricsPort?: number): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const metrics = metricsPort === undefined ? "off" : `127.0.0.1:${metricsPort}`;
  const fd = openSync(logFile, "a"); // the audit lines: written as in production, read by nobody
  // A /metrics listener only where asked (one port each: several sidecars run at once); metrics are
  // counted in the process either way, as in production.
  const child = track(
    name,
    spawn(process.execPath, [...(CPU_PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROFILE_DIR}`] : []), ...(process.env.BENCH_SIDECAR_NODE_FLAGS ?? "").split(" ").filter(Boolean), CLI, "sidecar", "--upstream", upstream, "--listen", `127.0.0.1:${port}`, "--metrics-listen", metrics, "--credentials-file", credentialsFile, "--dagu-api", "v1"], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", fd, fd],
    }),
  );
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (!running(child.process)) break;
    try {
      const response = await fetch(`${url}/readyz`);
      await response.arrayBuffer();
      if (response.ok) return { url, child };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  const log = await readFile(logFile, "utf8").catch(() => "");
  throw new Error(`sidecar ${name} did not become ready on ${url}:\n${log.slice(-2000)}`);
}

interface Nginx {
  plain: string;
  bcrypt: string;
  basicHeader: string;
  child: Child;
  version: string;
}

async function startNginx(tools: Tools, upstream: string): Promise<Nginx> {
  const nginx = tools.nginx!;
  const htpasswd = tools.htpasswd!;
  // Its own directory, readable by nginx's unprivileged worker (the htpasswd has a throwaway password).
  const dir = await tempDir("dagu-auth-bench-nginx-");
  await chmod(dir, 0o755);
  const password = `nginx-${randomUUID()}`;
  const file = join(dir, "htpasswd");
  const made = await run(htpasswd, ["-c", "-b", "-B", "-C", "10", file, "bench", password]);
  if (made.code !== 0) throw new Error(`htpasswd failed: ${made.stderr}`);
  const line = (await readFile(file, "utf8")).trim();
  if (!/^bench:\$2[aby]\$10\$/.test(line)) throw new Error(`htpasswd did not write a bcrypt cost-10 hash: ${line.slice(0, 20)}...`);
  await chmod(file, 0o644);
  const [plainPort, bcryptPort] = [await freePort(), await freePort()];
  const target = new URL(upstream);
  const location = `proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";`;
  const conf = `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  upstream app {
    server ${target.host};
    keepalive 64;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  server {
    listen 127.0.0.1:${plainPort};
    location / { ${location} }
  }
  server {
    listen 127.0.0.1:${bcryptPort};
    location / {
      auth_basic "bench";
      auth_basic_user_file ${file};
      ${location}
    }
  }
}
`;
  await writeFile(join(dir, "nginx.conf"), conf);
  const version = (await run(nginx, ["-v"])).stderr.trim().replace(/^nginx version:\s*/, "");
  const args = ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")];
  const test = await run(nginx, [...args, "-t"]);
  if (test.code !== 0) throw new Error(`nginx -t refused the configuration: ${test.stderr}`);
  const child = track("nginx", spawn(nginx, args, { stdio: ["ignore", "ignore", "inherit"] }));
  const plain = `http://127.0.0.1:${plainPort}`;
  const bcrypt = `http://127.0.0.1:${bcryptPort}`;
  const basicHeader = `Authorization: Basic ${Buffer.from(`bench:${password}`).toString("base64")}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!running(child.process)) throw new Error(`nginx exited (${child.process.exitCode}): ${await readFile(join(dir, "error.log"), "utf8").catch(() => "")}`);
    try {
      await expectUpstreamBody("nginx", plain, []);
      break;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(50);
    }
  }
  const refused = await fetch(`${bcrypt}${PATH}`);
  await refused.arrayBuffer();
  if (refused.status !== 401) throw new Error(`nginx auth_basic let a request without credentials through (${refused.status})`);
  await expectUpstreamBody("nginx bcrypt-10", bcrypt, [basicHeader]);
  return { plain, bcrypt, basicHeader, child, version };
}

// ------------------------------------------------------------------------------------------------

interface Summary extends Measured {
  rounds: number[];
  /** CPU time of the process under test per request (µs): less sensitive to other work than req/s. */
  frontCpuUsPerRequest?: number;
}
const cpuPerRequest = (m: Measured) => (m.cpu?.front !== undefined && m.rps > 0 ? (m.cpu.front * 1e6) / m.rps : undefined);
const summarize = (runs: Measured[]): Summary => ({
  rps: Math.round(median(runs.map((r) => r.rps))),
  p50Ms: round3(median(runs.map((r) => r.p50Ms))),
  p99Ms: round3(median(runs.map((r) => r.p99Ms))),
  cpu: runs[0]?.cpu
    ? {
        machine: round2(median(runs.map((r) => r.cpu?.machine ?? NaN))),
        front: runs.every((r) => r.cpu?.front !== undefined) ? round2(median(runs.map((r) => r.cpu!.front!))) : undefined,
        upstream: runs.every((r) => r.cpu?.upstream !== undefined) ? round2(median(runs.map((r) => r.cpu!.upstream!))) : undefined,
      }
    : undefined,
  rounds: runs.map((r) => Math.round(r.rps)),
  frontCpuUsPerRequest: runs.every((r) => cpuPerRequest(r) !== undefined) ? Math.round(median(runs.map((r) => cpuPerRequest(r)!))) : undefined,
});
const cpuText = (m: Measured) => {
  const cpu = m.cpu;
  const perRequest = cpuPerRequest(m);
  return cpu ? `; CPU: machine ${cpu.machine.toFixed(2)} of ${availableParallelism()} cores${cpu.front !== undefined ? `, front ${cpu.front.toFixed(2)}` : ""}${cpu.upstream !== undefined ? `, upstream ${cpu.upstream.toFixed(2)}` : ""}${perRequest !== undefined ? `, front ${Math.round(perRequest)} µs/request` : ""}` : "";
};

async function main(): Promise<void> {
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) throw new Error(`Node ${process.versions.node}: run it with the project's Node 24 (npm run bench:sidecar, or npx node scripts/bench-sidecar.ts)`);
  const cores = availableParallelism();
  const loadAtStart = loadavg()[0]!;
  const startedAt = Date.now();
  say(`${cores} cores, load average ${loadAtStart.toFixed(2)} at start; load generator, proxies and upstream share them (other processes skew every figure)`);

  const tools = await ensureTools();
  const wrkVersion = tools.wrk ? ((await run(tools.wrk, ["-v"])).stdout.split("\n")[0] ?? "wrk").trim() : undefined;
  const generator = wrkVersion ? `${wrkVersion.split(" [")[0]} -t1` : "undici closed-loop generator (wrk unavailable)";
  say(`closed-loop generator: ${generator}; ${CONNECTIONS} connections; ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per measurement; ${ROUNDS} rounds, medians reported`);
  const nginxAvailable = Boolean(tools.nginx && tools.htpasswd);
  if (!nginxAvailable) say(`nginx figures unavailable: ${tools.nginx ? "" : "nginx "}${tools.htpasswd ? "" : "htpasswd "}missing and not installable`);

  const dir = await tempDir("dagu-auth-bench-sidecar-");
  try {
    // The upstream and the naive proxy
    const upstream = await startNodeServer("upstream", ["upstream"]);
    const proxy = await startNodeServer("naive proxy", ["proxy", upstream.url]);
    const relay = await startNodeServer("TCP relay", ["relay", upstream.url]);
    await expectUpstreamBody("upstream", upstream.url, []);
    await expectUpstreamBody("naive proxy", proxy.url, []);
    await expectUpstreamBody("TCP relay", relay.url, []);

    // Two sidecars: builtin (a viewer user for JWTs, a viewer API key) and basic. Each credentials file in
    // a directory of its own: the sidecar watches the file's directory, and the logs must not be in it.
    const userPassword = `viewer-${randomUUID()}`;
    const basicPassword = `basic-${randomUUID()}`;
    const builtinCreds = await buildCredentials({ users: [{ username: "viewer", password: userPassword, role: "viewer" }], apiKeys: [{ name: "bench", role: "viewer" }] });
    const basicCreds = await buildCredentials({ mode: "basic", basic: { username: "ops", password: basicPassword } });
    const files: Record<string, string> = {};
    for (const [name, creds] of [["builtin", builtinCreds], ["basic", basicCreds]] as const) {
      await mkdir(join(dir, name), { mode: 0o700 });
      files[name] = join(dir, name, "credentials.json");
      await writeFile(files[name], JSON.stringify(creds.credentials), { mode: 0o600 });
    }
    const metricsPort = await freePort();
    const sidecar = await startSidecar("sidecar (builtin)", upstream.url, files.builtin!, join(dir, "sidecar-builtin.log"), metricsPort);
    const decisionHistogram = () => scrapeHistogram(`http://127.0.0.1:${metricsPort}/metrics`, "dagu_auth_decision_seconds");
    const sidecarBasic = await startSidecar("sidecar (basic)", upstream.url, files.basic!, join(dir, "sidecar-basic.log"));

    // A JWT the way Dagu's UI gets one: one login.
    const login = await fetch(`${sidecar.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "viewer", password: userPassword }),
    });
    const loginBody = (await login.json()) as { token?: string };
    if (login.status !== 200 || !loginBody.token) throw new Error(`login failed: ${login.status} ${JSON.stringify(loginBody)}`);
    const jwtHeader = `Authorization: Bearer ${loginBody.token}`;
    const apiKeyHeader = `Authorization: Bearer ${builtinCreds.apiKeys.bench!}`;
    const basicHeader = `Authorization: Basic ${Buffer.from(`ops:${basicPassword}`).toString("base64")}`;
    await expectUpstreamBody("sidecar JWT", sidecar.url, [jwtHeader]);
    await expectUpstreamBody("sidecar API key", sidecar.url, [apiKeyHeader]);
    await expectUpstreamBody("sidecar Basic", sidecarBasic.url, [basicHeader]);
    const unauthenticated = await fetch(`${sidecar.url}${PATH}`);
    await unauthenticated.arrayBuffer();
    if (unauthenticated.status !== 401) throw new Error(`the sidecar let a request without credentials through (${unauthenticated.status})`);

    const upstreamPid = upstream.child.process.pid;
    const pidOf = (c: Child) => () => (c.process.pid === undefined ? [] : [c.process.pid]);
    const targets: Target[] = [
      { key: "direct", label: "upstream direct", url: upstream.url, headers: [], connections: CONNECTIONS, pids: { front: pidOf(upstream.child) } },
      { key: "naiveProxy", label: "naive Node proxy", url: proxy.url, headers: [], connections: CONNECTIONS, pids: { front: pidOf(proxy.child), upstream: upstreamPid } },
      { key: "sidecarJwt", label: "sidecar, JWT", url: sidecar.url, headers: [jwtHeader], connections: CONNECTIONS, pids: { front: pidOf(sidecar.child), upstream: upstreamPid } },
      { key: "sidecarApiKey", label: "sidecar, API key", url: sidecar.url, headers: [apiKeyHeader], connections: CONNECTIONS, pids: { front: pidOf(sidecar.child), upstream: upstreamPid } },
      { key: "sidecarBasic", label: "sidecar, Basic", url: sidecarBasic.url, headers: [basicHeader], connections: CONNECTIONS, pids: { front: pidOf(sidecarBasic.child), upstream: upstreamPid } },
    ];

    // 1-3. Closed loop, in rounds; each round starts one target later, so no target always goes first.
    const runs: Record<string, Measured[]> = Object.fromEntries(targets.map((t) => [t.key, []]));
    const ratios: Record<"jwt" | "apiKey" | "basic", number[]> = { jwt: [], apiKey: [], basic: [] };
    for (let r = 0; r < ROUNDS; r++) {
      await sampleBackground(`round ${r + 1}/${ROUNDS}`);
      const order = [...targets.slice(r % targets.length), ...targets.slice(0, r % targets.length)];
      const round: Record<string, Measured> = {};
      for (const target of order) {
        const m = await closedLoop(tools, target);
        round[target.key] = m;
        runs[target.key]!.push(m);
        say(`round ${r + 1}/${ROUNDS} ${target.label}: ${rate(m.rps)}, p50 ${ms(m.p50Ms)}, p99 ${ms(m.p99Ms)}${cpuText(m)}`);
      }
      const base = round.naiveProxy!.rps;
      ratios.jwt.push(round.sidecarJwt!.rps / base);
      ratios.apiKey.push(round.sidecarApiKey!.rps / base);
      ratios.basic.push(round.sidecarBasic!.rps / base);
    }
    const s = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summarize(v)])) as Record<string, Summary>;
    const jwtRatio = round3(median(ratios.jwt));
    const apiKeyRatio = round3(median(ratios.apiKey));
    const basicRatio = round3(median(ratios.basic));

    // 4. Open loop at a fixed rate: the p99 the sidecar adds (JWT) over the upstream alone.
    // The naive proxy runs too, for reference: what any Node hop adds at that rate on this machine.
    // A TCP relay runs too: one process hop with no HTTP, the floor any proxy on this machine pays. And the
    // sidecar's own histogram (dagu_auth_decision_seconds) says how much of its added tail is its own work.
    type OpenKey = "direct" | "relay" | "naiveProxy" | "sidecarJwt";
    const open: Record<OpenKey, LoadResult[]> = { direct: [], relay: [], naiveProxy: [], sidecarJwt: [] };
    const openTargets: { key: OpenKey; label: string; url: string; headers: string[] }[] = [
      { key: "direct", label: "upstream direct", url: upstream.url, headers: [] },
      { key: "relay", label: "TCP relay", url: relay.url, headers: [] },
      { key: "naiveProxy", label: "naive Node proxy", url: proxy.url, headers: [] },
      { key: "sidecarJwt", label: "sidecar, JWT", url: sidecar.url, headers: [jwtHeader] },
    ];
    const added: number[] = [];
    const addedScheduled: number[] = [];
    const addedNaive: number[] = [];
    const addedRelay: number[] = [];
    const decisionP99: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await sampleBackground(`open-loop round ${r + 1}/${ROUNDS}`);
      const order = [...openTargets.slice(r % openTargets.length), ...openTargets.slice(0, r % openTargets.length)];
      for (const t of order) {
        const before = t.key === "sidecarJwt" ? await decisionHistogram() : undefined;
        const result = await runLoadChild({ mode: "open", url: `${t.url}${PATH}`, headers: headerRecord(t.headers), rate: OPEN_RATE, warmupSeconds: WARMUP_SECONDS, seconds: SECONDS });
        open[t.key].push(result);
        const decision = before ? histogramQuantile(before, await decisionHistogram(), 0.99) : undefined;
        if (decision !== undefined) decisionP99.push(decision);
        say(
          `round ${r + 1}/${ROUNDS} open loop ${OPEN_RATE} req/s, ${t.label}: p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}, max ${ms(result.maxMs)} ` +
            `(from schedule: p99 ${ms(result.scheduledP99Ms!)}; generator lag p99 ${ms(result.lagP99Ms!)}; ${result.requests} requests` +
            `${decision === undefined ? "" : `; the sidecar's own arrival-to-dispatch p99 <= ${ms(decision)}`})`,
        );
      }
      added.push(open.sidecarJwt[r]!.p99Ms - open.direct[r]!.p99Ms);
      addedScheduled.push(open.sidecarJwt[r]!.scheduledP99Ms! - open.direct[r]!.scheduledP99Ms!);
      addedNaive.push(open.naiveProxy[r]!.p99Ms - open.direct[r]!.p99Ms);
      addedRelay.push(open.relay[r]!.p99Ms - open.direct[r]!.p99Ms);
    }
    const p99AddedMs = round3(median(added));
    const p99AddedFromScheduleMs = round3(median(addedScheduled));
    const p99AddedNaiveProxyMs = round3(median(addedNaive));
    const p99AddedRelayMs = round3(median(addedRelay));
    const p99OverRelayMs = round3(median(added.map((a, i) => a - addedRelay[i]!)));
    const decisionP99Ms = round3(median(decisionP99));
    const openSummary = (key: OpenKey) => ({
      p50Ms: round3(median(open[key].map((x) => x.p50Ms))),
      p99Ms: round3(median(open[key].map((x) => x.p99Ms))),
      scheduledP99Ms: round3(median(open[key].map((x) => x.scheduledP99Ms!))),
      lagP99Ms: round3(median(open[key].map((x) => x.lagP99Ms!))),
    });

    // 5. nginx, 1 worker: without auth, and auth_basic with bcrypt cost 10.
    let nginxPlain: Measured | null = null;
    let nginxBcrypt: Measured | null = null;
    let nginxVersion: string | null = null;
    if (nginxAvailable) {
      try {
        const ng = await startNginx(tools, upstream.url);
        await sampleBackground("nginx");
        nginxVersion = ng.version;
        const front = () => childPids(ng.child.process.pid);
        nginxPlain = await closedLoop(tools, { key: "nginx", label: "nginx", url: ng.plain, headers: [], connections: CONNECTIONS, pids: { front, upstream: upstreamPid } });
        say(`nginx ${ng.version}, 1 worker, no auth: ${rate(nginxPlain.rps)}, p50 ${ms(nginxPlain.p50Ms)}, p99 ${ms(nginxPlain.p99Ms)}${cpuText(nginxPlain)}`);
        nginxBcrypt = await closedLoop(tools, {
          key: "nginxBcrypt10",
          label: "nginx bcrypt-10",
          url: ng.bcrypt,
          headers: [ng.basicHeader],
          connections: NGINX_BCRYPT_CONNECTIONS,
          pids: { front, upstream: upstreamPid },
        });
        say(`nginx, 1 worker, auth_basic bcrypt cost 10 (${NGINX_BCRYPT_CONNECTIONS} connections): ${nginxBcrypt.rps.toFixed(1)} req/s, p50 ${ms(nginxBcrypt.p50Ms)}, p99 ${ms(nginxBcrypt.p99Ms)}${cpuText(nginxBcrypt)}`);
        await stopChild(ng.child);
      } catch (error) {
        say(`nginx figures unavailable: ${(error as Error).message}`);
        nginxPlain = nginxBcrypt = null;
      }
    }

    // The figures
    say("---");
    const perReq = (k: string) => (s[k]!.frontCpuUsPerRequest !== undefined ? `, ${s[k]!.frontCpuUsPerRequest} µs CPU/request in the proxy` : "");
    say(`upstream direct: ${rate(s.direct!.rps)}, p50 ${ms(s.direct!.p50Ms)}, p99 ${ms(s.direct!.p99Ms)} (rounds: ${s.direct!.rounds.join(", ")})`);
    say(`naive Node proxy (baseline): ${rate(s.naiveProxy!.rps)}, p50 ${ms(s.naiveProxy!.p50Ms)}, p99 ${ms(s.naiveProxy!.p99Ms)}${perReq("naiveProxy")} (rounds: ${s.naiveProxy!.rounds.join(", ")})`);
    say(`sidecar JWT: ${rate(s.sidecarJwt!.rps)}, p50 ${ms(s.sidecarJwt!.p50Ms)}, p99 ${ms(s.sidecarJwt!.p99Ms)}${perReq("sidecarJwt")}; jwtRatio ${jwtRatio} of the baseline (goal >= 0.8)`);
    say(`sidecar API key: ${rate(s.sidecarApiKey!.rps)}, p50 ${ms(s.sidecarApiKey!.p50Ms)}, p99 ${ms(s.sidecarApiKey!.p99Ms)}${perReq("sidecarApiKey")}; apiKeyRatio ${apiKeyRatio} (goal >= 0.8)`);
    say(`sidecar Basic: ${rate(s.sidecarBasic!.rps)}, p50 ${ms(s.sidecarBasic!.p50Ms)}, p99 ${ms(s.sidecarBasic!.p99Ms)}${perReq("sidecarBasic")}; basicRatio ${basicRatio} (goal >= 0.8)`);
    say(
      `p99 added by the sidecar (JWT) at ${OPEN_RATE} req/s open loop: ${p99AddedMs.toFixed(3)} ms (goal < 1 ms; median over rounds of sidecar p99 - direct p99: ` +
        `${added.map((a) => a.toFixed(1)).join(", ")} ms; counted from the schedule: ${p99AddedFromScheduleMs.toFixed(3)} ms)`,
    );
    say(`p99 added by the naive Node proxy at the same rate (reference): ${p99AddedNaiveProxyMs.toFixed(3)} ms (rounds: ${addedNaive.map((a) => a.toFixed(1)).join(", ")} ms)`);
    say(`p99 added by a TCP relay (one process hop, no HTTP: this machine's floor): ${p99AddedRelayMs.toFixed(3)} ms (rounds: ${addedRelay.map((a) => a.toFixed(1)).join(", ")} ms); the sidecar over the relay: ${p99OverRelayMs.toFixed(3)} ms`);
    say(`the sidecar's own arrival-to-dispatch time (dagu_auth_decision_seconds, bucket bound): p99 <= ${decisionP99Ms.toFixed(3)} ms (rounds: ${decisionP99.map((d) => d.toFixed(2)).join(", ")} ms)`);
    say(`open-loop medians: p50/p99 direct ${ms(openSummary("direct").p50Ms)}/${ms(openSummary("direct").p99Ms)}, TCP relay ${ms(openSummary("relay").p50Ms)}/${ms(openSummary("relay").p99Ms)}, naive proxy ${ms(openSummary("naiveProxy").p50Ms)}/${ms(openSummary("naiveProxy").p99Ms)}, sidecar JWT ${ms(openSummary("sidecarJwt").p50Ms)}/${ms(openSummary("sidecarJwt").p99Ms)}`);
    const basicVsNginxBcrypt10 = nginxBcrypt ? round2(s.sidecarBasic!.rps / nginxBcrypt.rps) : null;
    if (nginxBcrypt && nginxPlain) {
      say(`nginx without auth: ${rate(nginxPlain.rps)} (reference); nginx bcrypt-10: ${nginxBcrypt.rps.toFixed(1)} req/s`);
      say(`sidecar Basic / nginx bcrypt-10: ${basicVsNginxBcrypt10} x (goal >= 100)`);
    } else {
      say("nginx figures unavailable: basicVsNginxBcrypt10 is null");
    }
    const loadAtEnd = loadavg()[0]!;
    say(`other work on the machine before each set: ${background.map((c) => c.toFixed(2)).join(", ")} cores (median ${median(background).toFixed(2)})`);
    say(`load average ${loadAtEnd.toFixed(2)} at the end; ${Math.round((Date.now() - startedAt) / 1000)} s in all`);

    const byTarget = (pick: (m: Measured) => number, roundNginx: (n: number) => number, roundBcrypt: (n: number) => number) => ({
      ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, pick(v)])),
      nginx: nginxPlain ? roundNginx(pick(nginxPlain)) : null,
      nginxBcrypt10: nginxBcrypt ? roundBcrypt(pick(nginxBcrypt)) : null,
    });
    const json = {
      jwtRatio,
      apiKeyRatio,
      basicRatio,
      p99AddedMs,
      basicVsNginxBcrypt10,
      p99AddedFromScheduleMs,
      p99AddedNaiveProxyMs,
      p99AddedRelayMs,
      p99OverRelayMs,
      decisionP99Ms,
      // Per target: the Node targets' medians as measured, nginx's rounded like them.
      rps: byTarget((m) => m.rps, Math.round, round2),
      p50Ms: byTarget((m) => m.p50Ms, round3, round3),
      p99Ms: byTarget((m) => m.p99Ms, round3, round3),
      cpuUsPerRequest: {
        ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.frontCpuUsPerRequest ?? null])),
        nginx: nginxPlain && cpuPerRequest(nginxPlain) !== undefined ? Math.round(cpuPerRequest(nginxPlain)!) : null,
        nginxBcrypt10: nginxBcrypt && cpuPerRequest(nginxBcrypt) !== undefined ? Math.round(cpuPerRequest(nginxBcrypt)!) : null,
      },
      rpsRounds: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.rounds])),
      ratioRounds: { jwt: ratios.jwt.map(round3), apiKey: ratios.apiKey.map(round3), basic: ratios.basic.map(round3) },
      cpuCores: { ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.cpu ?? null])), nginx: nginxPlain?.cpu ?? null, nginxBcrypt10: nginxBcrypt?.cpu ?? null },
      openLoop: {
        rate: OPEN_RATE,
        direct: openSummary("direct"),
        relay: openSummary("relay"),
        naiveProxy: openSummary("naiveProxy"),
        sidecarJwt: openSummary("sidecarJwt"),
        p99AddedRoundsMs: added.map(round3),
        p99AddedNaiveProxyRoundsMs: addedNaive.map(round3),
        p99AddedRelayRoundsMs: addedRelay.map(round3),
        decisionP99RoundsMs: decisionP99.map(round3),
      },
      conditions: {
        cores,
        node: process.versions.node,
        generator,
        connections: CONNECTIONS,
        nginxBcryptConnections: NGINX_BCRYPT_CONNECTIONS,
        seconds: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        rounds: ROUNDS,
        nginx: nginxVersion,
        loadAverageStart: round2(loadAtStart),
        loadAverageEnd: round2(loadAtEnd),
        /** Cores busy with other work in the second before each set of measurements. */
        backgroundCores: background,
      },
    };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } finally {
    await cleanup();
  }
}

try {
  await main();
} catch (error) {
  await cleanup();
  if (!interrupted) {
    process.stderr.write(`bench:sidecar failed: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
