// npm run bench:operator: how the operator behaves at a real scale (1,000 users, 200 API keys,
// 200 webhooks on one DaguAuth), on a control plane of its own. Prints one line per figure and,
// last, one JSON object with all of them; docs/benchmarks.md says how to read them.
// `npm run bench:operator -- --unrelated-secrets 5000 [--unrelated-secret-kib 100]` also starts the
// operator once more after that many Secrets that are none of its business (Helm release Secrets, say)
// were added to the cluster, and compares its start time and peak RSS with the start before them.
import { fork, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import { KubeClient, METADATA_ONLY, resourcePath } from "../src/common/kube/client.ts";
import { Informer } from "../src/common/kube/informer.ts";
import { CredentialsShard, joinShards, parseCredentials, parseCredentialsEntry, type Credentials } from "../src/api/index.ts";
import { ensureComponents, repoRoot } from "../dev/components.ts";
import { startControlPlane, stopControlPlane } from "../dev/control-plane.ts";
import { adminKubeConfig, KUBECONFIG_ENV, run, toKubeConfig } from "../dev/kube.ts";
import { OPERATOR_NAMESPACE, operatorKubeConfig } from "../dev/operator-account.ts";
import type { ChildReport } from "./bench-operator-child.ts";

const USERS = 1000, API_KEYS = 200, WEBHOOKS = 200, IN_FLIGHT = 16, PASSWORD_CHANGES = 20;
const NS = "bench", AUTH = "dagu", GROUP = "auth.dagu.dev", VERSION = "v1alpha1";
const PLURALS = ["daguauths", "daguusers", "daguapikeys", "daguwebhooks"] as const;
const QUIET_MS = 2000;
const UNRELATED_NS = "unrelated";

const args = parseArgs({ options: { "unrelated-secrets": { type: "string", default: "0" }, "unrelated-secret-kib": { type: "string", default: "100" } } }).values;
const UNRELATED = Number(args["unrelated-secrets"]);
const UNRELATED_KIB = Number(args["unrelated-secret-kib"]);
if (!Number.isInteger(UNRELATED) || UNRELATED < 0 || !Number.isInteger(UNRELATED_KIB) || UNRELATED_KIB < 1 || UNRELATED_KIB > 900) {
  throw new Error("--unrelated-secrets takes a count (0 or more), --unrelated-secret-kib a size from 1 to 900 (KiB)");
}

const say = (line: string) => process.stdout.write(`[bench] ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (fromMs: number, toMs = Date.now()) => (toMs - fromMs) / 1000;
const pad = (i: number, n: number) => String(i).padStart(n, "0");
const userName = (i: number) => `u${pad(i, 4)}`;
const percentile = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!;

/** 1. The floor: every password hashed once, all cores busy, nothing else in the process. */
async function argon2Limit(): Promise<{ seconds: number; hashMsMedian: number }> {
  const cores = availableParallelism();
  const module = pathToFileURL(join(repoRoot, "src/common/password-hash.ts")).href;
  const code = `
    import { hashPassword } from ${JSON.stringify(module)};
    const single = [];
    for (let i = 0; i < 21; i++) { const t = performance.now(); await hashPassword("single-password-" + i); single.push(performance.now() - t); }
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: ${cores} }, async () => { while (next < ${USERS}) await hashPassword("baseline-password-" + next++); }));
    const seconds = (performance.now() - t0) / 1000;
    single.sort((a, b) => a - b);
    console.log(JSON.stringify({ seconds, hashMsMedian: single[10] }));`;
  // libuv's pool (default 4 threads) must not be what limits a machine with more cores.
  const r = await run(process.execPath, ["--input-type=module", "-e", code], undefined, { ...process.env, UV_THREADPOOL_SIZE: String(Math.max(4, cores)) });
  if (r.code !== 0) throw new Error(`argon2 baseline failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number; hashMsMedian: number };
}

// The operator runs in a child process (bench-operator-child.ts) so that its RSS is its own.
interface Operator { child: ChildProcess; last?: ChildReport; lastAt: number; activeAt: number; loopDelayMaxMs: number; exited: Promise<void> }
const operators = new Set<Operator>();
let peakRss = 0, peakFds = 0, peakHeapTotal = 0, peakExternal = 0;
const mib = (bytes: number) => bytes / 2 ** 20;
/** CPU seconds (user + system) a process has used so far, from /proc (Linux, like the harness). */
const cpuSeconds = async (pid: number) => {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ ticks
};

// BENCH_CPU_PROFILE=1: the operators' CPU profiles (.cpuprofile, for Chrome DevTools) go next to their logs.
// BENCH_OPERATOR_NODE_FLAGS: node flags for the operator processes instead of the chart's operator.nodeOptions.

/** The operator's runtime settings as the Helm chart deploys them (values.yaml), so the figures are the product's. */
async function chartRuntime(): Promise<{ nodeFlags: string[]; env: Record<string, string> }> {
  const values = parseYaml(await readFile(join(repoRoot, "charts/dagu-auth-operator/values.yaml"), "utf8")) as { operator?: { nodeOptions?: string | null; mallocArenaMax?: number | null } };
  const nodeOptions = process.env.BENCH_OPERATOR_NODE_FLAGS ?? values.operator?.nodeOptions ?? "";
  const arenas = values.operator?.mallocArenaMax;
  return { nodeFlags: nodeOptions.split(" ").filter(Boolean), env: arenas ? { MALLOC_ARENA_MAX: String(arenas) } : {} };
}

/**
 * The operator runs compiled to JavaScript, as the image runs it: loading TypeScript through Node's type
 * stripping costs ~30 MiB of RSS that a deployed operator does not have. Built into node_modules/.cache.
 */
async function compileChild(): Promise<string> {
  // One directory per checkout: worktrees share node_modules, and another checkout's build must not be the one run.
  const out = join(repoRoot, "node_modules", ".cache", `dagu-auth-bench-${createHash("sha256").update(repoRoot).digest("hex").slice(0, 8)}`);
  await mkdir(out, { recursive: true });
  const config = join(out, "tsconfig.json");
  await writeFile(config, JSON.stringify({
    extends: join(repoRoot, "tsconfig.json"),
    compilerOptions: { noEmit: false, outDir: join(out, "dist"), rootDir: repoRoot, sourceMap: false },
    include: [join(repoRoot, "src"), join(repoRoot, "scripts/bench-operator-child.ts")],
  }));
  const r = await run(process.execPath, [join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", config]);
  if (r.code !== 0) throw new Error(`compiling the operator for the benchmark failed:\n${r.stdout}${r.stderr}`);
  return join(out, "dist", "scripts", "bench-operator-child.js");
}

function startOperator(name: string, logDir: string): Operator {
  const profile = process.env.BENCH_CPU_PROFILE === "1" ? ["--cpu-prof", `--cpu-prof-dir=${logDir}`] : [];
  const child = fork(childModule, [join(logDir, `${name}.log`), name, operatorKubeconfig, OPERATOR_NAMESPACE], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: ["--expose-gc", ...profile, ...runtime.nodeFlags],
    env: { ...process.env, ...runtime.env },
  });
  const op: Operator = { child, lastAt: Date.now(), activeAt: Date.now(), loopDelayMaxMs: 0, exited: new Promise((r) => child.once("exit", () => r())) };
  child.on("message", (report: ChildReport) => {
    // Active: a reconcile finished, more than 10 % of a core was used since the last report
    // (a reconcile in flight is counted only when it ends), or no report came for 500 ms (a stall).
    const now = Date.now();
    if (op.last?.reconciles !== report.reconciles || report.cpuMs - (op.last?.cpuMs ?? 0) > 20 || now - op.lastAt > 500) op.activeAt = now;
    op.lastAt = now;
    op.loopDelayMaxMs = Math.max(op.loopDelayMaxMs, report.loopDelayMaxMs);
    op.last = report;
    peakRss = Math.max(peakRss, report.maxRss);
    peakHeapTotal = Math.max(peakHeapTotal, report.heapTotal);
    peakExternal = Math.max(peakExternal, report.external);
    peakFds = Math.max(peakFds, report.openFds);
  });
  operators.add(op);
  return op;
}

async function stopOperator(op: Operator): Promise<void> {
  if (op.child.exitCode === null && op.child.connected) op.child.send("stop");
  await Promise.race([op.exited, sleep(30_000)]);
  if (op.child.exitCode === null) op.child.kill("SIGKILL");
  operators.delete(op);
}

async function until(what: string, op: Operator | undefined, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (op && op.child.exitCode !== null) throw new Error(`the operator exited (${op.child.exitCode}) while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/**
 * Idle: leading, queues empty, and reports received for `ms` after both the last activity and
 * the call (a stale report must not pass for quiet); resolves with when it last was active.
 */
const idle = async (op: Operator, ms: number) => {
  const since = Date.now();
  await until("the operator to be idle", op, () => !!op.last?.leader && op.last.queueDepth === 0 && op.lastAt - Math.max(op.activeAt, since) >= ms, 120_000, 50);
  return op.activeAt;
};

type Obj = { metadata: { name: string; generation?: number; resourceVersion?: string }; status?: { observedGeneration?: number; conditions?: { type: string; status: string; observedGeneration?: number }[] } };

const binDir = await ensureComponents(["etcd", "kube"]);
const [childModule, runtime] = await Promise.all([compileChild(), chartRuntime()]);
say(`operator: compiled (${childModule}), node ${runtime.nodeFlags.join(" ") || "(no flags)"}${Object.keys(runtime.env).length ? `, ${Object.entries(runtime.env).map(([k, v]) => `${k}=${v}`).join(" ")}` : ""}`);
const cp = await startControlPlane({ binDir, dir: await mkdtemp(join(tmpdir(), "dagu-auth-bench-")) });
const logDir = await mkdtemp(join(tmpdir(), "dagu-auth-bench-logs-")); // kept after the run
const operatorKubeconfig = join(logDir, "operator.kubeconfig");
process.env[KUBECONFIG_ENV] = cp.kubeconfig;
const cleanup = async () => {
  for (const op of operators) await stopOperator(op);
  await stopControlPlane(cp);
};
process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));

try {
  const cores = availableParallelism();
  const loadAtStart = loadavg()[0]!;
  say(`${cores} cores, load average ${loadAtStart.toFixed(2)} at start (other processes on this machine skew every figure)`);
  const crds = await run(join(binDir, "kubectl"), ["--kubeconfig", cp.kubeconfig, "apply", "--server-side", "-f", join(repoRoot, "crds")]);
  if (crds.code !== 0) throw new Error(`installing the CRDs failed: ${crds.stderr}`);
  await run(join(binDir, "kubectl"), ["--kubeconfig", cp.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", join(repoRoot, "crds")]);

  // The operator's own ServiceAccount, RBAC and TokenRequest token, as in the tests; the children read it.
  await writeFile(operatorKubeconfig, (await operatorKubeConfig()).exportConfig(), { mode: 0o600 });

  const limit = await argon2Limit();
  say(`argon2 limit: ${USERS} hashes in ${limit.seconds.toFixed(2)} s on ${cores} cores (one hash alone: ${limit.hashMsMedian.toFixed(1)} ms median)`);

  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  const list = async (plural: string) => ((await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: NS, plural })) as { items: Obj[] }).items;
  // Creates go through one keep-alive client (client-node opens a new TLS connection per call: ~2,400
  // handshakes would be CPU the API server spends on the benchmark, not on the operator).
  const access = toKubeConfig(kc);
  const client = new KubeClient(access);
  const createSecret = (name: string, password: string) =>
    client.request("POST", resourcePath({ group: "", version: "v1", plural: "secrets" }, { namespace: NS }), { body: { apiVersion: "v1", kind: "Secret", metadata: { name }, stringData: { password } } });
  const createCr = (plural: string, kind: string, name: string, spec: object) =>
    client.request("POST", resourcePath({ group: GROUP, version: VERSION, plural }, { namespace: NS }), { body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec } });
  const pool = async <T>(items: T[], fn: (item: T) => Promise<unknown>) => {
    let next = 0;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (next < items.length) await fn(items[next++]!); }));
  };

  // The credentials as the sidecar reads them: the document, or an index of shards past ~900 KiB.
  const decodeCredentials = async (secret: k8s.V1Secret): Promise<Credentials> => {
    const text = (s: k8s.V1Secret, key: string) => Buffer.from(s.data?.[key] ?? "", "base64").toString("utf8");
    const entry = parseCredentialsEntry(text(secret, "credentials.json"));
    if (!entry.success) throw new Error(`invalid credentials: ${entry.error.message}`);
    if (entry.data.kind === "document") return entry.data.credentials;
    const index = entry.data.index;
    const shards = await Promise.all(index.shards.map(async (ref) => CredentialsShard.parse(JSON.parse(text(await core.readNamespacedSecret({ name: ref.secretName, namespace: NS }), ref.key)))));
    const doc = parseCredentials(joinShards(index, shards));
    if (!doc.success) throw new Error(`invalid sharded credentials: ${doc.error.message}`);
    return doc.data;
  };
  const readCredentials = () => core.readNamespacedSecret({ name: `${AUTH}-credentials`, namespace: NS }).then(decodeCredentials, () => undefined);

  // Readiness is followed through watches (one informer per kind), not by listing everything every
  // 500 ms: repeated lists of 1,400 objects would load the API server the operator shares the cores with.
  const informers = PLURALS.map((plural) => new Informer({ kubeConfig: access, resource: { group: GROUP, version: VERSION, plural }, namespace: NS, resyncPeriodMs: 0 }).start());

  // 2. Convergence: the operator leads and waits; the clock starts with the first create.
  const first = startOperator("first", logDir);
  await until("the first operator to lead", first, () => first.last?.leader === true, 60_000, 100);
  const t0 = Date.now();
  const procs = { operator: first.child.pid!, apiserver: cp.pids.apiserver, etcd: cp.pids.etcd, bench: process.pid };
  const cpuAt0 = Object.fromEntries(await Promise.all(Object.entries(procs).map(async ([k, pid]) => [k, await cpuSeconds(pid)] as const)));
  await createSecret("admin-pw", "bench-admin-password");
  await pool([...Array(USERS).keys()], (i) => createSecret(`${userName(i)}-pw`, `bench-password-${i}-${Math.random().toString(36).slice(2)}`));
  await createCr("daguauths", "DaguAuth", AUTH, { mode: "builtin", builtin: { initialAdmin: { username: "admin", passwordSecretRef: { name: "admin-pw", key: "password" } } } });
  const crs = [
    ...[...Array(USERS).keys()].map((i) => () => createCr("daguusers", "DaguUser", userName(i), { authRef: { name: AUTH }, username: userName(i), role: "viewer", password: { secretRef: { name: `${userName(i)}-pw`, key: "password" } } })),
    ...[...Array(API_KEYS).keys()].map((i) => () => createCr("daguapikeys", "DaguApiKey", `k${pad(i, 3)}`, { authRef: { name: AUTH }, role: "operator", secretName: `k${pad(i, 3)}-api-key` })),
    ...[...Array(WEBHOOKS).keys()].map((i) => () => createCr("daguwebhooks", "DaguWebhook", `w${pad(i, 3)}`, { authRef: { name: AUTH }, dagName: `dag-${pad(i, 3)}`, secretName: `w${pad(i, 3)}-webhook` })),
  ];
  await pool(crs, (create) => create());
  const applySeconds = seconds(t0);
  say(`applied ${USERS + 1} Secrets and ${crs.length + 1} resources in ${applySeconds.toFixed(1)} s (${IN_FLIGHT} in flight)`);

  const total = 1 + USERS + API_KEYS + WEBHOOKS;
  let readyCount = 0, doc: Credentials | undefined, lastProgress = Date.now();
  // Checked every 100 ms against the informers' caches: that is the resolution of convergeSeconds.
  await until(`all ${total} resources Ready and complete credentials`, first, async () => {
    readyCount = 0;
    for (const informer of informers) {
      for (const o of informer.list() as Obj[]) {
        const ready = o.status?.conditions?.find((c) => c.type === "Ready");
        const generation = o.metadata.generation;
        if (ready?.status === "True" && ready.observedGeneration === generation && (o.status?.observedGeneration ?? generation) === generation) readyCount++;
      }
    }
    doc = readyCount === total ? await readCredentials() : doc;
    if (Date.now() - lastProgress > 5000) {
      lastProgress = Date.now();
      say(`  ${seconds(t0).toFixed(0)} s: ${readyCount}/${total} Ready, ${first.last?.hashes ?? 0} hashes, queue ${first.last?.queueDepth ?? "?"}`);
    }
    return readyCount === total && doc?.users.length === USERS + 1 && doc.apiKeys.length === API_KEYS && doc.webhooks.length === WEBHOOKS;
  }, 15 * 60_000, 100);
  const convergeSeconds = seconds(t0);
  await Promise.all(informers.map((i) => i.stop()));
  const convergeRatio = convergeSeconds / limit.seconds;
  const converged = first.last!;
  say(`converged in ${convergeSeconds.toFixed(1)} s: ratio ${convergeRatio.toFixed(2)} to the argon2 limit (goal <= 1.5); ${converged.hashes} hashes for ${USERS + 1} passwords, ${converged.retries} retries`);
  say(`  reconciles: ${Object.entries(converged.byKind).map(([k, v]) => `${k} ${v.count} (${v.seconds.toFixed(1)} s in all)`).join(", ")}`);
  // Who used the cores × convergeSeconds CPU seconds there were: the operator, the control plane, this script.
  const cpu = Object.fromEntries(await Promise.all(Object.entries(procs).map(async ([k, pid]) => [k, +((await cpuSeconds(pid)) - cpuAt0[k]!).toFixed(1)] as const)));
  say(`  CPU seconds while converging (of ${(cores * convergeSeconds).toFixed(0)}): ${Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(", ")}; operator peak RSS ${mib(converged.maxRss).toFixed(0)} MiB, longest event-loop stall ${first.loopDelayMaxMs.toFixed(0)} ms`);

  // 3. Restart: everything the operator writes or could write, by resourceVersion.
  const snapshot = async () => {
    const versions = new Map<string, string>();
    const add = (kind: string, items: { metadata?: { name?: string; resourceVersion?: string } }[]) => {
      for (const o of items) versions.set(`${kind}/${o.metadata?.name}`, o.metadata?.resourceVersion ?? "");
    };
    add("Secret", (await core.listNamespacedSecret({ namespace: NS })).items);
    add("ServiceAccount", (await core.listNamespacedServiceAccount({ namespace: NS })).items);
    add("Role", (await rbac.listNamespacedRole({ namespace: NS })).items);
    add("RoleBinding", (await rbac.listNamespacedRoleBinding({ namespace: NS })).items);
    for (const plural of PLURALS) add(plural, await list(plural));
    return versions;
  };
  await stopOperator(first);
  const before = await snapshot();
  const r0 = Date.now();
  const apiserverCpuAtRestart = await cpuSeconds(cp.pids.apiserver);
  const second = startOperator("second", logDir);
  await until("the restarted operator to reconcile", second, () => (second.last?.reconciles ?? 0) > 0, 120_000, 100);
  const restartSeconds = seconds(r0, await idle(second, QUIET_MS));
  const restartCpu = { operator: second.last!.cpuMs / 1000, apiserver: (await cpuSeconds(cp.pids.apiserver)) - apiserverCpuAtRestart };
  const after = await snapshot();
  const written = [...after].filter(([k, rv]) => before.get(k) !== rv).map(([k]) => k);
  const restartHashes = second.last!.hashes;
  const restartPeakRss = second.last!.maxRss; // the high-water mark of its start, before the password changes
  say(`restart: steady after ${restartSeconds.toFixed(1)} s (goal < 10), ${restartHashes} hashes (goal 0), ${written.length} of ${after.size} objects written (goal 0)${written.length ? `: ${written.slice(0, 5).join(", ")}` : ""}; peak RSS ${mib(restartPeakRss).toFixed(0)} MiB`);

  // 4. Password changes, observed through a watch on the credentials Secret.
  let latest: Credentials | undefined;
  let decoded = Promise.resolve();
  const watch = await new k8s.Watch(kc).watch(`/api/v1/namespaces/${NS}/secrets`, { fieldSelector: `metadata.name=${AUTH}-credentials` }, (_phase, obj: k8s.V1Secret) => {
    decoded = decoded.then(async () => void (latest = await decodeCredentials(obj))).catch(() => undefined); // in order
  }, () => undefined);
  const hashOf = (username: string) => latest?.users.find((u) => u.username === username)?.passwordHash;
  await until("the watch's first event", undefined, () => latest !== undefined, 10_000, 20);
  // Each change starts from an idle operator: the latency of one change, not of a queue of them.
  const latencies: number[] = [];
  let changeSettleMs = 0, changeWrites = 0;
  for (let i = 0; i < PASSWORD_CHANGES; i++) {
    const name = userName(i * Math.floor(USERS / PASSWORD_CHANGES));
    await idle(second, 1000);
    const versions = i === 0 ? await snapshot() : undefined;
    const old = hashOf(name);
    const start = performance.now(), startMs = Date.now();
    await core.replaceNamespacedSecret({ name: `${name}-pw`, namespace: NS, body: { metadata: { name: `${name}-pw` }, stringData: { password: `changed-password-${i}-${Date.now()}` } } });
    await until(`the new hash of ${name}`, second, () => hashOf(name) !== old, 30_000, 5);
    latencies.push(Math.round(performance.now() - start));
    if (versions) {
      // What one change costs beyond the credentials: the work and writes it fans out to.
      changeSettleMs = (await idle(second, 1000)) - startMs;
      changeWrites = [...(await snapshot())].filter(([k, rv]) => versions.get(k) !== rv).length;
    }
  }
  watch.abort();
  await idle(second, 1000); // the last change settled: the next operator starts from a steady state
  say(`  latencies in order (ms): ${latencies.join(" ")}`);
  latencies.sort((a, b) => a - b);
  const [p50, p95] = [percentile(latencies, 0.5), percentile(latencies, 0.95)];
  say(`password change to credentials: p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, max ${latencies.at(-1)!.toFixed(0)} ms over ${PASSWORD_CHANGES} changes`);
  say(`  one change: idle again after ${changeSettleMs} ms, ${changeWrites} objects written (the password Secret, the state, the credentials, statuses)`);
  await stopOperator(second);

  // 5. Optional: starts with and without many Secrets in the cluster that the operator must not read,
  //    three of each (medians: a start on this shared machine varies by seconds).
  let unrelated: Record<string, number> = {};
  const operatorNames = ["first", "second"];
  if (UNRELATED > 0) {
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const starts = async (label: string) => {
      const runs: { seconds: number; rss: number; operatorCpu: number; apiserverCpu: number; writes: number; hashes: number }[] = [];
      for (let k = 0; k < 3; k++) {
        const before = await snapshot();
        const t = Date.now();
        const apiserverCpu = await cpuSeconds(cp.pids.apiserver);
        const name = `${label}-${k}`;
        const op = startOperator(name, logDir);
        operatorNames.push(name);
        await until(`operator ${name} to reconcile`, op, () => (op.last?.reconciles ?? 0) > 0, 120_000, 100);
        const startSeconds = seconds(t, await idle(op, QUIET_MS));
        runs.push({ seconds: startSeconds, rss: op.last!.maxRss, operatorCpu: op.last!.cpuMs / 1000, apiserverCpu: (await cpuSeconds(cp.pids.apiserver)) - apiserverCpu, writes: [...(await snapshot())].filter(([key, rv]) => before.get(key) !== rv).length, hashes: op.last!.hashes });
        await stopOperator(op);
      }
      const m = { seconds: median(runs.map((r) => r.seconds)), rss: median(runs.map((r) => r.rss)), operatorCpu: median(runs.map((r) => r.operatorCpu)), apiserverCpu: median(runs.map((r) => r.apiserverCpu)) };
      say(`  ${label}: starts ${runs.map((r) => r.seconds.toFixed(1)).join(", ")} s; peak RSS ${runs.map((r) => mib(r.rss).toFixed(0)).join(", ")} MiB; CPU-s operator ${runs.map((r) => r.operatorCpu.toFixed(1)).join(", ")}, API server ${runs.map((r) => r.apiserverCpu.toFixed(1)).join(", ")}; ${runs.reduce((a, r) => a + r.hashes, 0)} hashes, ${runs.reduce((a, r) => a + r.writes, 0)} writes`);
      return { ...m, writes: runs.reduce((a, r) => a + r.writes, 0) };
    };
    const without = await starts("without");
    await core.createNamespace({ body: { metadata: { name: UNRELATED_NS } } });
    const u0 = Date.now();
    // Like Helm's release Secrets: large, opaque, unlabelled for us; random, so nothing compresses them away.
    const payload = () => randomBytes(UNRELATED_KIB * 1024).toString("base64");
    await pool([...Array(UNRELATED).keys()], (i) =>
      client.request("POST", resourcePath({ group: "", version: "v1", plural: "secrets" }, { namespace: UNRELATED_NS }), {
        body: { apiVersion: "v1", kind: "Secret", type: "helm.sh/release.v1", metadata: { name: `sh.helm.release.v1.app-${i}.v1`, labels: { owner: "helm", name: `app-${i}` } }, data: { release: payload() } },
      }),
    );
    say(`created ${UNRELATED} unrelated Secrets of ${UNRELATED_KIB} KiB in ${seconds(u0).toFixed(1)} s`);
    // The API server and kube-controller-manager (whose controllers watch Secrets in full) digest what was
    // just written for a while: the starts are measured once the API server is quiet again.
    const s0 = Date.now();
    for (let last = await cpuSeconds(cp.pids.apiserver); Date.now() - s0 < 180_000; ) {
      await sleep(2000);
      const now = await cpuSeconds(cp.pids.apiserver);
      if (now - last < 0.2) break; // under 10 % of a core
      last = now;
    }
    say(`  the API server was quiet again after ${seconds(s0).toFixed(0)} s`);
    const withThem = await starts("with");
    say(`with ${UNRELATED} unrelated Secrets of ${UNRELATED_KIB} KiB (medians of 3 starts): start ${withThem.seconds.toFixed(1)} s vs ${without.seconds.toFixed(1)} s without (ratio ${(withThem.seconds / without.seconds).toFixed(2)}), peak RSS ${mib(withThem.rss).toFixed(0)} vs ${mib(without.rss).toFixed(0)} MiB (ratio ${(withThem.rss / without.rss).toFixed(2)})`);
    // What a list of every Secret costs, as the operator's metadata watch lists them and as an informer of
    // bodies would (the operator before it selected by label): the second is what it no longer asks for.
    const listAll = async (accept?: string) => {
      const t = performance.now();
      let bytes = 0, items = 0, cont: string | undefined;
      do {
        const page = await client.request<{ items: unknown[] | null; metadata?: { continue?: string } }>("GET", "/api/v1/secrets", { query: { limit: 500, continue: cont }, timeoutMs: 300_000, ...(accept ? { accept } : {}) });
        bytes += JSON.stringify(page).length;
        items += page.items?.length ?? 0;
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return { items, mib: +mib(bytes).toFixed(1), seconds: +((performance.now() - t) / 1000).toFixed(2) };
    };
    const metadataList = await listAll(METADATA_ONLY.list);
    const bodyList = await listAll();
    say(`  listing every Secret (${metadataList.items}): metadata only ${metadataList.mib} MiB in ${metadataList.seconds} s (what the operator lists); bodies ${bodyList.mib} MiB in ${bodyList.seconds} s (what it no longer lists)`);
    unrelated = {
      unrelatedSecrets: UNRELATED, unrelatedSecretKiB: UNRELATED_KIB,
      startSecondsWithout: +without.seconds.toFixed(2), startSecondsWith: +withThem.seconds.toFixed(2), unrelatedStartRatio: +(withThem.seconds / without.seconds).toFixed(2),
      startPeakRssMiBWithout: Math.round(mib(without.rss)), startPeakRssMiBWith: Math.round(mib(withThem.rss)), unrelatedPeakRssRatio: +(withThem.rss / without.rss).toFixed(2),
      startOperatorCpuSecondsWithout: +without.operatorCpu.toFixed(1), startOperatorCpuSecondsWith: +withThem.operatorCpu.toFixed(1),
      startApiserverCpuSecondsWithout: +without.apiserverCpu.toFixed(1), startApiserverCpuSecondsWith: +withThem.apiserverCpu.toFixed(1),
      unrelatedStartWrites: without.writes + withThem.writes,
      unrelatedMetadataListMiB: metadataList.mib, unrelatedMetadataListSeconds: metadataList.seconds, unrelatedBodyListMiB: bodyList.mib, unrelatedBodyListSeconds: bodyList.seconds,
    };
  }

  // 6. Memory, and what the operator logged at warn and above (pino: 40 warn, 50 error, 60 fatal).
  const peakRssMiB = mib(peakRss);
  const eventLoopMaxDelayMs = Math.round(Math.max(first.loopDelayMaxMs, second.loopDelayMaxMs));
  say(`operator event loop: longest stall ${eventLoopMaxDelayMs} ms over the run`);
  say(`operator peak RSS: ${peakRssMiB.toFixed(0)} MiB over the run (V8 heap at most ${mib(peakHeapTotal).toFixed(0)} MiB, outside it at most ${mib(peakExternal).toFixed(0)} MiB; live heap at the end, after a full GC: ${mib(second.last!.heapUsed).toFixed(0)} MiB); at most ${peakFds} open file descriptors`);
  const problems = new Map<string, number>();
  for (const name of operatorNames) {
    for (const line of (await readFile(join(logDir, `${name}.log`), "utf8")).split("\n").filter(Boolean)) {
      // err is a message string, or an Error serialized by pino.
      const entry = JSON.parse(line) as { level: number; msg?: string; err?: string | { message?: string } };
      const err = typeof entry.err === "string" ? entry.err : entry.err?.message;
      const key = `${name} ${entry.level >= 50 ? "error" : "warn"}: ${entry.msg}${err ? ` (${err.slice(0, 120)})` : ""}`;
      if (entry.level >= 40) problems.set(key, (problems.get(key) ?? 0) + 1);
    }
  }
  say(`operator logs in ${logDir}: ${problems.size === 0 ? "no warnings or errors" : "warnings and errors:"}`);
  for (const [k, n] of [...problems].sort((a, b) => b[1] - a[1]).slice(0, 10)) say(`  ${n} x ${k}`);

  process.stdout.write(`${JSON.stringify({
    convergeRatio: +convergeRatio.toFixed(3), convergeSeconds: +convergeSeconds.toFixed(2), argon2LimitSeconds: +limit.seconds.toFixed(2), hashMsMedian: +limit.hashMsMedian.toFixed(1),
    applySeconds: +applySeconds.toFixed(2), users: doc!.users.length, apiKeys: doc!.apiKeys.length, webhooks: doc!.webhooks.length,
    convergeHashes: converged.hashes, convergeReconciles: converged.reconciles, convergeRetries: converged.retries, convergeCpuSeconds: cpu,
    restartHashes, restartWrites: written.length, restartSeconds: +restartSeconds.toFixed(2), restartPeakRssMiB: Math.round(mib(restartPeakRss)), restartOperatorCpuSeconds: +restartCpu.operator.toFixed(1), restartApiserverCpuSeconds: +restartCpu.apiserver.toFixed(1), ...unrelated,
    passwordChangeP50Ms: Math.round(p50), passwordChangeP95Ms: Math.round(p95), passwordChangeSettleMs: changeSettleMs, passwordChangeWrites: changeWrites, peakRssMiB: Math.round(peakRssMiB), peakOpenFds: peakFds, eventLoopMaxDelayMs,
    logWarnings: [...problems].reduce((a, [, n]) => a + n, 0), cores, loadAverageAtStart: +loadAtStart.toFixed(2),
  })}\n`);
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
// client-node opens an agent per request; their idle keep-alive sockets would hold the process ~30 s.
process.exit();
