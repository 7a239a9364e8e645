// node scripts/defence-removals.ts [id ...]: issue 12's "every test fails when its defence is removed",
// made repeatable (run it with Node 24: `npx node scripts/defence-removals.ts`). Each entry names a
// defence (exact pieces of text in src/, crds/ or the chart, and what replaces each, so the defence is
// taken out or weakened), the test that must catch it, and the name pattern that selects that test alone.
// For each entry the files are edited, the test runs once, the files are put back (also on Ctrl-C), and
// one line is printed: whether the test failed as it must, how many of its tests failed, and the first
// assertion message. The whole output of each run goes to $DEFENCE_LOG_DIR (default a temporary
// directory). Without ids every entry runs (slow: the fault runs take minutes each); `--list` prints the
// ids, `--check` only checks that every edit still applies. A file with uncommitted changes is refused
// (putting it back would lose them). Integration entries start a control plane unless
// DAGU_AUTH_TEST_KUBECONFIG names one (`npm run cluster:up`).
//
// The results are in docs/reliability.md ("Defence removed → test fails").
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../dev/components.ts";

interface Edit {
  readonly file: string;
  readonly find: string;
  readonly replace: string;
}

interface Removal {
  readonly id: string;
  /** What the defence is, for the report. */
  readonly defence: string;
  /** Each: exact text that must occur once in `file`, and its replacement. */
  readonly edits: readonly Edit[];
  /** The test file, and a --test-name-pattern selecting the one test (omit for the whole file). */
  readonly test: string;
  readonly pattern?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Why the test is known not to catch this removal (reported, not counted as a failure of the suite). */
  readonly knownGap?: string;
}

/** The DaguAuth reconcile's state save, and the step after the credentials writer (kills-state-first moves the one past the other). */
const SAVE_STATE = "  await store.save({ ...state, passwords: { ...own.passwords, ...childPasswords(materials) }, ...signingRecords(state, own) });\n";
const AFTER_CREDENTIALS = "  const { certManagerMissing } = await sidecar.apply(written.shardNames);\n";

const INTEGRATION = ["--test-global-setup=test/harness/global-setup.ts", "--test-concurrency=1", "--test-timeout=900000"];

const FAULTS = ["--test-concurrency=1", "--test-timeout=900000"];

const HOSTILE = "test/integration/sidecar-hostile-traffic.test.ts";
const ADVISORIES = "test/integration/sidecar-advisories.test.ts";

export const REMOVALS: readonly Removal[] = [
  // --- advisories (sidecar-advisories.test.ts) ---
  {
    id: "ghsa-6qr9",
    defence: "src/dagu/routes.ts DAGU_ROUTES: POST /dag-runs (executeDAGRunFromSpec, an inline spec) needs developer; lowered to operator",
    edits: [{ file: "src/dagu/routes.ts", find: `r("POST", "/dag-runs", "executeDAGRunFromSpec", "developer"),`, replace: `r("POST", "/dag-runs", "executeDAGRunFromSpec", "operator"),` }],
    test: ADVISORIES,
    pattern: "GHSA-6qr9",
  },
  {
    id: "cve-2026-31882",
    defence: "src/dagu/routes.ts DAGU_ROUTES: the event stream needs a credential; marked unauthenticated",
    edits: [{ file: "src/dagu/routes.ts", find: `{ origin: "router", streaming: "sse" }`, replace: `{ origin: "router", streaming: "sse", unauthenticated: true }` }],
    test: ADVISORIES,
    pattern: "CVE-2026-31882",
  },
  {
    id: "cve-2026-27598",
    // Two layers, each enough alone: `%2e` is refused as an escape of an unreserved character before any
    // decoding, and a segment that decodes to `.` or `..` is refused. With only one removed the test passes.
    defence: "src/sidecar/routes/route-matcher.ts matchRoute: the unreserved-escape rule (`%2e`) and the decoded dot-segment check, both removed",
    edits: [
      { file: "src/sidecar/routes/route-matcher.ts", find: "isDotSegment(segment) || isDotSegment(decoded) ||", replace: "isDotSegment(segment) ||" },
      { file: "src/sidecar/routes/route-matcher.ts", find: " || ENCODED_UNRESERVED.test(rawPath)) return BAD_PATH;", replace: ") return BAD_PATH;" },
    ],
    test: ADVISORIES,
    pattern: "CVE-2026-27598",
  },
  {
    id: "open-redirect",
    defence: "src/sidecar/routes/route-matcher.ts matchRoute: `//` anywhere in a path is bad_path; removed",
    edits: [{ file: "src/sidecar/routes/route-matcher.ts", find: `if (ENCODED_BACKSLASH.test(rawPath) || rawPath.includes("//")) return BAD_PATH;`, replace: "if (ENCODED_BACKSLASH.test(rawPath)) return BAD_PATH;" }],
    test: ADVISORIES,
    pattern: "open redirects",
  },
  {
    id: "underscore-headers",
    defence: "src/sidecar/proxy/headers.ts canonicalHeaderName: `_` read as `-`; removed (lower case only)",
    edits: [{ file: "src/sidecar/proxy/headers.ts", find: `return name.toLowerCase().replaceAll("_", "-");`, replace: "return name.toLowerCase();" }],
    test: ADVISORIES,
    pattern: "X_Forwarded_User",
  },
  {
    id: "skip-route-query",
    defence: "src/sidecar/routes/admission.ts admit: only the matched path decides that a route is public; weakened to oauth2-proxy's skip-route regex over the whole target",
    edits: [{ file: "src/sidecar/routes/admission.ts", find: "if (isUnauthenticated(route)) return", replace: String.raw`if (isUnauthenticated(route) || /\/health$/.test(target)) return` }],
    test: ADVISORIES,
    pattern: "skip-route regex",
  },
  {
    id: "path-normalization",
    defence: "src/sidecar/server.ts #forward: the path forwarded is the raw path admission matched; replaced by its decoded form (decodeURI)",
    edits: [{ file: "src/sidecar/server.ts", find: "target: forwardedQuery === undefined ? path :", replace: "target: forwardedQuery === undefined ? decodeURI(path) :" }],
    test: ADVISORIES,
    pattern: "Pomerium path normalization",
  },
  {
    id: "stale-claims",
    defence: "src/sidecar/auth/authenticators.ts Authenticator#bearer: a token's role comes from the credentials in force; taken from the token's claims instead",
    edits: [{ file: "src/sidecar/auth/authenticators.ts", find: "username: user.username, role: user.role, user }", replace: "username: user.username, role: result.claims.role as typeof user.role, user }" }],
    test: ADVISORIES,
    pattern: "stale claims",
  },
  {
    id: "malformed-uri",
    defence: "src/sidecar/routes/admission.ts admit (a malformed path is 400 wherever it points) and src/sidecar/routes/paths.ts isReservedPath (an undecodable segment is reserved): malformed paths outside the API let through as UI pages",
    edits: [
      { file: "src/sidecar/routes/admission.ts", find: `if ("error" in match && match.error === "bad_path")`, replace: `if ("error" in match && match.error === "bad_path" && path.startsWith(profile.prefix))` },
      { file: "src/sidecar/routes/paths.ts", find: "    } catch {\n      return true;\n    }", replace: "    } catch {\n      continue;\n    }" },
    ],
    test: ADVISORIES,
    pattern: "malformed-URI",
  },
  {
    id: "case-split-throttle",
    defence: "src/sidecar/auth/login-throttle.ts pairKey: the username folded to lower case; folding removed",
    edits: [{ file: "src/sidecar/auth/login-throttle.ts", find: String.raw`const pairKey = (username: string, address: string) => ` + "`p:${address}\\u0000${username.toLowerCase()}`;", replace: String.raw`const pairKey = (username: string, address: string) => ` + "`p:${address}\\u0000${username}`;" }],
    test: ADVISORIES,
    pattern: "case-split throttle",
  },
  // --- hostile traffic (sidecar-hostile-traffic.test.ts) and its unit tests ---
  {
    id: "smuggling-parser",
    // No sidecar code frames requests: Node's HTTP parser (llhttp, strict mode) is this defence.
    defence: "src/sidecar/server.ts SidecarServer.start: Node's strict HTTP parser; `insecureHTTPParser: true` turns its strictness off",
    edits: [{ file: "src/sidecar/server.ts", find: "      requireHostHeader: true,\n", replace: "      requireHostHeader: true,\n      insecureHTTPParser: true,\n" }],
    test: HOSTILE,
    pattern: "request smuggling",
  },
  {
    id: "framing-parser",
    // The trailer, the GET body and the pipelined requests after a refusal: kept apart by Node's framing.
    defence: "src/sidecar/server.ts SidecarServer.start: Node's strict HTTP parser (the trailer, body-on-GET and pipelining tests); `insecureHTTPParser: true`",
    edits: [{ file: "src/sidecar/server.ts", find: "      requireHostHeader: true,\n", replace: "      requireHostHeader: true,\n      insecureHTTPParser: true,\n" }],
    test: HOSTILE,
    pattern: "a valid chunked body|a body on GET|pipelined requests after",
  },
  {
    id: "upgrade-close",
    defence: "src/sidecar/server.ts SidecarServer#handleUpgrade refuse(): the socket closed after the refusal (what follows an Upgrade request is not HTTP); left open",
    edits: [
      { file: "src/sidecar/server.ts", find: "      socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? \"Error\"}", replace: "      socket.write(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? \"Error\"}" },
      { file: "src/sidecar/server.ts", find: "      socket.once(\"finish\", () => socket.destroy());\n", replace: "" },
    ],
    test: HOSTILE,
    pattern: "a WebSocket upgrade refused",
  },
  {
    id: "crlf-path",
    defence: "src/sidecar/routes/route-matcher.ts matchRoute: a control character in a decoded segment is bad_path; removed",
    edits: [{ file: "src/sidecar/routes/route-matcher.ts", find: " || CONTROL_CHARS.test(decoded)) {", replace: ") {" }],
    test: HOSTILE,
    pattern: "CRLF percent-encoded",
  },
  {
    id: "settle-body",
    defence: "src/sidecar/server.ts SidecarServer#settleBody: before a refusal, read what is left of the body (bounded) or close after the answer; made a no-op",
    edits: [{ file: "src/sidecar/server.ts", find: `    if (!(await discardBody(req))) res.setHeader("Connection", "close");\n`, replace: "    void discardBody;\n" }],
    test: HOSTILE,
    pattern: "pipelined requests after",
  },
  {
    id: "request-timeout",
    defence: "src/sidecar/server.ts SidecarServer.start: Node's requestTimeout from --request-timeout; set to 0 (none)",
    edits: [{ file: "src/sidecar/server.ts", find: "      requestTimeout: (this.#options.requestTimeoutSeconds ?? DEFAULTS.requestTimeoutSeconds) * 1000,\n", replace: "      requestTimeout: 0,\n" }],
    test: HOSTILE,
    pattern: "a body dripped",
  },
  {
    id: "connection-limit",
    defence: "src/sidecar/listener/connections.ts ConnectionLimiter: the total cap (--max-connections); never reached",
    edits: [{ file: "src/sidecar/listener/connections.ts", find: `const over = this.#open >= this.#maxTotal ? "total" :`, replace: `const over = this.#open >= Infinity ? "total" :` }],
    test: HOSTILE,
    pattern: "a flood of connections",
  },
  {
    id: "jwt-cache-bound",
    defence: "src/sidecar/auth/jwt.ts JwtVerifier.verify: evict when the cache holds JWT_CACHE_MAX_ENTRIES; removed",
    edits: [{ file: "src/sidecar/auth/jwt.ts", find: "      if (this.#cache.size >= this.#maxEntries) this.#evict(now);\n", replace: "" }],
    test: HOSTILE,
    pattern: "distinct valid JWTs",
  },
  {
    id: "login-username-bound",
    defence: "src/sidecar/answers/auth-api.ts LoginBody: a username of at most 256 characters; unbounded",
    edits: [{ file: "src/sidecar/answers/auth-api.ts", find: "const LoginBody = z.object({ username: z.string().min(1).max(MAX_USERNAME_LENGTH),", replace: "const LoginBody = z.object({ username: z.string().min(1)," }],
    test: HOSTILE,
    pattern: "every credential of 64 KiB",
  },
  {
    id: "basic-throttle",
    defence: "src/sidecar/auth/login-throttle.ts LoginThrottle.check: the pair's lock and budget (every guess allowed)",
    edits: [{ file: "src/sidecar/auth/login-throttle.ts", find: "    const { maxAttempts, windowSeconds } = this.#settings;\n    const windowMs = windowSeconds * 1000;\n    const pk = pairKey(username, address);\n", replace: "    if (username !== address) return { allowed: true, delayMs: 0 };\n    const { maxAttempts, windowSeconds } = this.#settings;\n    const windowMs = windowSeconds * 1000;\n    const pk = pairKey(username, address);\n" }],
    test: HOSTILE,
    pattern: "distinct Basic credentials",
  },
  {
    id: "basic-length",
    defence: "src/sidecar/auth/authenticators.ts Authenticator.authenticate: a Basic username over 256 or password over 1,024 characters refused before the throttle; removed",
    edits: [{ file: "src/sidecar/auth/authenticators.ts", find: "      if (basic.username.length > MAX_USERNAME_LENGTH || basic.password.length > MAX_PASSWORD_LENGTH) return", replace: "      if (basic.username.length < 0) return" }],
    test: HOSTILE,
    pattern: "a 64 KiB Basic credential",
  },
  {
    id: "throttle-prune",
    defence: "src/sidecar/auth/login-throttle.ts LoginThrottle (entry creation): prune at THROTTLE_MAX_KEYS; removed",
    edits: [{ file: "src/sidecar/auth/login-throttle.ts", find: "      if (this.#entries.size >= this.#maxKeys) this.#prune(now);\n", replace: "" }],
    test: "test/unit/sidecar-login-throttle.test.ts",
    pattern: "issue 12.2",
  },
  {
    id: "basic-regex",
    defence: "src/sidecar/auth/basic-auth.ts parseBasic: the scheme matched alone, the rest sliced; back to `^Basic +(.*)$`",
    edits: [{ file: "src/sidecar/auth/basic-auth.ts", find: "  const scheme = /^Basic +/i.exec(header);\n  if (!scheme) return undefined;\n  const encoded = header.slice(scheme[0].length).trim();\n", replace: "  const scheme = /^Basic +(.*)$/i.exec(header);\n  if (!scheme) return undefined;\n  const encoded = scheme[1]!.trim();\n" }],
    test: "test/unit/sidecar-basic-auth.test.ts",
    pattern: "64 KiB values",
  },
  // --- Dagu under a base path (sidecar-base-path.test.ts, ADR 0020) ---
  {
    id: "api-segment",
    defence: "src/sidecar/routes/paths.ts isReservedPath: a path with an `api` segment outside the API prefix is refused (issue 15.6); `api` dropped from the reserved names",
    edits: [{ file: "src/sidecar/routes/paths.ts", find: `const names = new Set(["api", ...reserved]);`, replace: `const names = new Set([...reserved]);` }],
    test: "test/integration/sidecar-base-path.test.ts",
    pattern: "every path with an api segment",
  },
  {
    id: "outside-base-path",
    defence: "src/sidecar/routes/admission.ts admit: under --dagu-base-path, a path outside the base path is 404; removed (it passes as a UI page)",
    edits: [{ file: "src/sidecar/routes/admission.ts", find: `if (profile.basePath !== "" && path !== profile.basePath`, replace: `if (false && path !== profile.basePath` }],
    test: "test/integration/sidecar-base-path.test.ts",
    pattern: "paths outside the base path",
  },
  {
    id: "base-path-segments",
    defence: "src/api/base-path.ts basePathProblem: a base path with an `api` (or mcp, SSO) segment is refused; the check removed",
    edits: [{ file: "src/api/base-path.ts", find: "  if (bad !== undefined) return", replace: "  if (bad === Symbol()) return" }],
    test: "test/unit/sidecar-options.test.ts",
    pattern: "--dagu-base-path",
  },
  // --- the route decision against real Dagu (sidecar-route-differential.test.ts, fast-check) ---
  {
    id: "unreserved-escape",
    defence: "src/sidecar/routes/route-matcher.ts matchRoute: an escape of an unreserved character (`%6C` for `l`) is bad_path; removed",
    edits: [{ file: "src/sidecar/routes/route-matcher.ts", find: " || ENCODED_UNRESERVED.test(rawPath)) return BAD_PATH;", replace: ") return BAD_PATH;" }],
    test: "test/integration/sidecar-route-differential.test.ts",
  },
  {
    id: "matcher-decode",
    defence: "src/sidecar/routes/route-matcher.ts matchRoute: a parameter's value percent-decoded once; left raw",
    edits: [{ file: "src/sidecar/routes/route-matcher.ts", find: "      const value = decodeSegment(raw)!;\n", replace: "      const value = raw;\n" }],
    test: "test/unit/route-matcher.test.ts",
    pattern: "canonical spelling",
  },
  // --- bounds: zod (test/unit/api-schemas.test.ts) and the CRDs on the real API server (crds.test.ts) ---
  {
    id: "zod-ttl-cap",
    defence: "src/api/duration.ts parseDurationNs: at most 8760h; the cap raised a thousandfold",
    edits: [{ file: "src/api/duration.ts", find: "  if (ns > MAX_DURATION_NS) throw", replace: "  if (ns > MAX_DURATION_NS * 1000n) throw" }],
    test: "test/unit/api-schemas.test.ts",
    pattern: "zod agrees",
  },
  {
    id: "zod-timestamp-length",
    defence: "src/api/common.ts MAX_TIMESTAMP_LENGTH: a timestamp of at most 64 characters; raised to 4096",
    edits: [{ file: "src/api/common.ts", find: "export const MAX_TIMESTAMP_LENGTH = 64;", replace: "export const MAX_TIMESTAMP_LENGTH = 4096;" }],
    test: "test/unit/api-schemas.test.ts",
    pattern: "zod agrees",
  },
  {
    id: "zod-group-name",
    // Bounded twice in zod (the record's key schema, and the check that mirrors the CRD's CEL rule).
    defence: "src/api/oidc.ts OidcRoleMapping: a group name of at most 256 characters, in the key schema and in the CEL rule's check; both removed",
    edits: [
      { file: "src/api/oidc.ts", find: ".record(z.string().min(1).max(MAX_GROUP_NAME_LENGTH), Role)", replace: ".record(z.string().min(1), Role)" },
      { file: "src/api/oidc.ts", find: "every((g) => g.length >= 1 && g.length <= MAX_GROUP_NAME_LENGTH)", replace: "every((g) => g.length >= 1)" },
    ],
    test: "test/unit/api-schemas.test.ts",
    pattern: "zod agrees",
  },
  {
    id: "zod-group-count",
    defence: "src/api/oidc.ts groupMappings: at most 256 groups; raised to 1,024",
    edits: [{ file: "src/api/oidc.ts", find: "check: (m) => Object.keys(m.groupMappings ?? {}).length <= MAX_GROUP_MAPPINGS,", replace: "check: (m) => Object.keys(m.groupMappings ?? {}).length <= MAX_GROUP_MAPPINGS * 4," }],
    test: "test/unit/api-schemas.test.ts",
    pattern: "zod agrees",
  },
  {
    id: "crd-ttl-cel",
    defence: "crds/daguauths.auth.dagu.dev.yaml spec.builtin.token.ttl: the CEL rule `duration(self) <= duration('8760h')`; raised to 876000h",
    edits: [{ file: "crds/daguauths.auth.dagu.dev.yaml", find: "|| duration(self) <= duration('8760h')\"\n                              message: must be at most 8760h", replace: "|| duration(self) <= duration('876000h')\"\n                              message: must be at most 8760h" }],
    test: "test/integration/crds.test.ts",
    pattern: "invalid resources",
  },
  {
    id: "crd-group-name-cel",
    defence: "crds/daguauths.auth.dagu.dev.yaml groupMappings: the CEL rule bounding each group name to 256 characters (a map key has no maxLength); made always true",
    edits: [{ file: "crds/daguauths.auth.dagu.dev.yaml", find: "self.groupMappings.all(g, size(g) >= 1 && size(g) <= 256)", replace: "self.groupMappings.all(g, size(g) >= 1)" }],
    test: "test/integration/crds.test.ts",
    pattern: "invalid resources",
  },
  {
    id: "crd-group-count",
    defence: "crds/daguauths.auth.dagu.dev.yaml groupMappings: maxProperties 256 and the CEL size rule; both raised to 300",
    edits: [
      { file: "crds/daguauths.auth.dagu.dev.yaml", find: "                          maxProperties: 256\n                          additionalProperties:\n                            description: \"Dagu role", replace: "                          maxProperties: 300\n                          additionalProperties:\n                            description: \"Dagu role" },
      { file: "crds/daguauths.auth.dagu.dev.yaml", find: "size(self.groupMappings) <= 256", replace: "size(self.groupMappings) <= 300" },
    ],
    test: "test/integration/crds.test.ts",
    pattern: "invalid resources",
  },
  // --- the namespaced install (helm.test.ts, a chart installed with watchNamespaces) ---
  {
    id: "namespaced-chart-rbac",
    defence: "charts/dagu-auth-operator/templates/clusterrole.yaml and clusterrolebinding.yaml: with watchNamespaces, no cluster-wide rules; rendered anyway",
    edits: [
      { file: "charts/dagu-auth-operator/templates/clusterrole.yaml", find: "{{- if and .Values.rbac.create (or (not .Values.watchNamespaces) $injectionRules) }}", replace: "{{- if .Values.rbac.create }}" },
      { file: "charts/dagu-auth-operator/templates/clusterrole.yaml", find: "  {{- if not .Values.watchNamespaces }}\n", replace: "  {{- if true }}\n" },
      { file: "charts/dagu-auth-operator/templates/clusterrolebinding.yaml", find: "{{- if and .Values.rbac.create (or (not .Values.watchNamespaces) $injectionRules) }}", replace: "{{- if .Values.rbac.create }}" },
    ],
    test: "test/integration/helm.test.ts",
    pattern: "a namespaced install",
  },
  {
    id: "namespaced-informers",
    defence: "src/operator/wiring/caches.ts openCaches: informers scoped to the watched namespaces; cluster-wide",
    edits: [{ file: "src/operator/wiring/caches.ts", find: "  const where = options.namespaces ? { namespaces: options.namespaces } : {};", replace: "  const where = {};" }],
    test: "test/integration/helm.test.ts",
    pattern: "a namespaced install",
  },
  {
    id: "namespaced-suite",
    // The operator suite under DAGU_AUTH_TEST_NAMESPACED=1 runs with the namespaced Roles only: an operator
    // that listed cluster-wide would be refused there.
    defence: "src/operator/wiring/caches.ts openCaches: informers scoped to the watched namespaces; cluster-wide (the operator suite's first test, namespaced)",
    edits: [{ file: "src/operator/wiring/caches.ts", find: "  const where = options.namespaces ? { namespaces: options.namespaces } : {};", replace: "  const where = {};" }],
    test: "test/integration/operator.test.ts",
    pattern: "a builtin setup becomes hashed credentials",
    env: { DAGU_AUTH_TEST_NAMESPACED: "1" },
  },
  // --- faults (test/faults/*.fault.ts: each starts its own control plane; minutes each) ---
  {
    id: "kills-fingerprint",
    defence: "src/operator/operator-state.ts resolvePassword: an unchanged password (same fingerprint) keeps its hash; always rehashed",
    edits: [{ file: "src/operator/operator-state.ts", find: "  if (!record || !sameHex(record.fingerprint, fingerprint)) {", replace: "  if (!record || sameHex(record.fingerprint, fingerprint) || true) {" }],
    test: "test/faults/operator-kills.fault.ts",
    env: { FAULTS_KILLS: "20" },
  },
  {
    id: "kills-state-first",
    // The one ordering a kill can split: the hashes remembered before the credentials that carry them.
    defence: "src/operator/dagu-auth-reconciler.ts reconcileDaguAuth: the operator state (password fingerprints and hashes) saved before the credentials are written; saved after",
    edits: [
      { file: "src/operator/dagu-auth-reconciler.ts", find: SAVE_STATE, replace: "" },
      { file: "src/operator/dagu-auth-reconciler.ts", find: AFTER_CREDENTIALS, replace: `${SAVE_STATE}${AFTER_CREDENTIALS}` },
    ],
    test: "test/faults/operator-kills.fault.ts",
    pattern: "a kill right after each credentials write",
  },
  {
    id: "kills-generated-once",
    defence: "src/operator/generated-secret.ts planGeneratedSecret: a generated value already in its Secret is kept; regenerated at every reconcile",
    edits: [{ file: "src/operator/generated-secret.ts", find: "    const kept = rotate ? undefined : existing?.data[key];", replace: "    const kept = rotate ? undefined : undefined;" }],
    test: "test/faults/operator-kills.fault.ts",
    env: { FAULTS_KILLS: "20" },
  },
  {
    id: "outage-retry-cap",
    defence: "src/sidecar/sources/kubernetes-source.ts KubernetesSource: the informers' 0.5 s retry cap (maxBackoffMs); back to the default",
    edits: [{ file: "src/sidecar/sources/kubernetes-source.ts", find: "        maxBackoffMs: 500,\n", replace: "" }],
    test: "test/faults/control-plane-outage.fault.ts",
    pattern: "the control plane stopped and started",
  },
  {
    id: "outage-stale-report",
    defence: "src/sidecar/sources/kubernetes-source.ts KubernetesSource#contactChanged: the lost-contact report (log, /readyz body, stale metric); removed",
    edits: [{ file: "src/sidecar/sources/kubernetes-source.ts", find: "    if (!connected && this.#lostContactAt === undefined && this.#synced) {", replace: "    if (false && !connected && this.#lostContactAt === undefined && this.#synced) {" }],
    test: "test/faults/control-plane-outage.fault.ts",
    pattern: "the control plane stopped and started",
  },
  {
    id: "renew-deadline",
    defence: "src/operator/runtime/leader-election.ts LeaderElector.campaignAndLead: stop leading once the Lease could not be renewed for renewDeadline; removed",
    edits: [{ file: "src/operator/runtime/leader-election.ts", find: "      if (attempt === \"failed\" && Date.now() - this.lastRenewAt > this.renewDeadlineMs) {", replace: "      if (attempt === \"failed\" && Date.now() - this.lastRenewAt > this.renewDeadlineMs && false) {" }],
    test: "test/faults/control-plane-outage.fault.ts",
    pattern: "renew deadline",
  },
  {
    id: "operator-retry-cap",
    defence: "src/operator/wiring/caches.ts openCaches: the operator's watches' 2 s retry cap (WATCH_RETRY_CAP_MS); back to the informer's default (30 s)",
    edits: [{ file: "src/operator/wiring/caches.ts", find: "  const common = { ...where, maxBackoffMs: WATCH_RETRY_CAP_MS };", replace: "  const common = { ...where };" }],
    test: "test/faults/control-plane-outage.fault.ts",
    pattern: "renew deadline",
  },
  {
    id: "relist-deletes",
    defence: "src/common/kube/informer.ts Informer.relist: a delete event for each cached object the new list lacks; removed",
    edits: [{ file: "src/common/kube/informer.ts", find: "    for (const [key, old] of previous) if (!next.has(key)) this.emitDelete(old);\n", replace: "" }],
    test: "test/faults/watch-leader-idle.fault.ts",
    pattern: "410 Gone",
  },
  {
    id: "lease-respect",
    defence: "src/operator/runtime/leader-election.ts LeaderElector.tryAcquireOrRenew: an unexpired Lease held by another is left alone; taken anyway",
    edits: [{ file: "src/operator/runtime/leader-election.ts", find: "    if (holder !== \"\" && holder !== this.identity && this.observedAt + durationMs > now) return \"held\";\n", replace: "" }],
    test: "test/faults/watch-leader-idle.fault.ts",
    pattern: "leader failover",
  },
  {
    id: "lease-identity",
    defence: "src/operator/wiring/leadership.ts leaderElector: a Lease identity per instance (host, pid, random); the host name alone",
    edits: [{ file: "src/operator/wiring/leadership.ts", find: "identity: config.identity ?? `${hostname()}-${process.pid}-${randomBytes(3).toString(\"hex\")}`,", replace: "identity: config.identity ?? `${hostname()}`," }],
    test: "test/faults/watch-leader-idle.fault.ts",
    pattern: "leader failover",
  },
  {
    id: "idle-transition-time",
    defence: "src/operator/conditions.ts (Ready): lastTransitionTime kept while the status stays; set anew at every reconcile",
    edits: [{ file: "src/operator/conditions.ts", find: "lastTransitionTime: old && old.status === status ? old.lastTransitionTime : at,", replace: "lastTransitionTime: at," }],
    test: "test/faults/watch-leader-idle.fault.ts",
    pattern: "steady state",
    env: { FAULTS_IDLE_SECONDS: "75" },
  },
];

/** Each edit's text occurs exactly once in its file (checked for every chosen entry before any test runs). */
function check(removal: Removal): void {
  const texts = new Map<string, string>();
  for (const { file, find } of removal.edits) {
    const text = texts.get(file) ?? readFileSync(join(repoRoot, file), "utf8");
    texts.set(file, text);
    const count = text.split(find).length - 1;
    if (count !== 1) throw new Error(`${removal.id}: the text to remove occurs ${count} times in ${file} (want 1): ${find}`);
  }
}

function run(removal: Removal, logDir: string): { failed: boolean; assertion: string; log: string } {
  const originals = new Map<string, string>();
  for (const { file } of removal.edits) {
    if (originals.has(file)) continue;
    const dirty = spawnSync("git", ["diff", "--quiet", "--", file], { cwd: repoRoot });
    if (dirty.status !== 0) throw new Error(`${removal.id}: ${file} has uncommitted changes; commit or stash them first`);
    originals.set(file, readFileSync(join(repoRoot, file), "utf8"));
  }
  const edited = new Map(originals);
  for (const { file, find, replace } of removal.edits) {
    const text = edited.get(file)!;
    const count = text.split(find).length - 1;
    if (count !== 1) throw new Error(`${removal.id}: the text to remove occurs ${count} times in ${file} (want 1): ${find}`);
    edited.set(file, text.replace(find, () => replace));
  }
  const restore = () => {
    for (const [file, text] of originals) writeFileSync(join(repoRoot, file), text);
  };
  const onSignal = () => {
    restore();
    process.exit(130);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  for (const [file, text] of edited) writeFileSync(join(repoRoot, file), text);
  try {
    const isolated = removal.test.startsWith("test/unit/") ? [] : removal.test.startsWith("test/faults/") ? FAULTS : INTEGRATION;
    const args = ["--test", ...isolated, "--test-reporter=spec", ...(removal.pattern ? [`--test-name-pattern=${removal.pattern}`] : []), removal.test];
    const result = spawnSync(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...removal.env }, encoding: "utf8", maxBuffer: 256 * 2 ** 20 });
    const output = `${result.stdout}\n${result.stderr}`;
    const log = join(logDir, `${removal.id}.log`);
    writeFileSync(log, output);
    const failed = result.status !== 0 && /^[ℹ#] fail [1-9]/m.test(output);
    const counted = (what: string) => new RegExp(`^[ℹ#] ${what} (\\d+)`, "m").exec(output)?.[1] ?? "?";
    return { failed, assertion: `${counted("fail")} of ${counted("tests")} failed; ${firstAssertion(output)}`, log };
  } finally {
    restore();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** The message of the first failed assertion in a spec reporter's output (its first line, shortened). */
function firstAssertion(output: string): string {
  const lines = output.split("\n");
  const at = lines.findIndex((l) => /AssertionError|Error \[|^\s*Error:/.test(l));
  if (at < 0) return "";
  const message = lines
    .slice(at, at + 6)
    .map((l) => l.trim())
    .filter(Boolean)
    .filter((l, i, all) => !all.slice(0, i + 1).some((x) => x.startsWith("at ")))
    .join(" ");
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv.includes("--list")) {
    for (const r of REMOVALS) process.stdout.write(`${r.id}\t${r.defence}\n`);
    return;
  }
  if (argv.includes("--check")) {
    for (const r of REMOVALS) check(r);
    process.stdout.write(`${REMOVALS.length} entries: every text to remove occurs once\n`);
    return;
  }
  const unknown = argv.filter((id) => !REMOVALS.some((r) => r.id === id));
  if (unknown.length > 0) throw new Error(`unknown ids: ${unknown.join(", ")} (--list shows them)`);
  const chosen = argv.length > 0 ? REMOVALS.filter((r) => argv.includes(r.id)) : REMOVALS;
  for (const removal of chosen) check(removal);
  const logDir = process.env.DEFENCE_LOG_DIR ?? mkdtempSync(join(tmpdir(), "defence-removals-"));
  let held = 0;
  for (const removal of chosen) {
    const t0 = Date.now();
    const { failed, assertion, log } = run(removal, logDir);
    if (failed || removal.knownGap) held++;
    const seconds = ((Date.now() - t0) / 1000).toFixed(0);
    const verdict = failed ? "FAILS (good)" : removal.knownGap ? `PASSES (known gap: ${removal.knownGap})` : "PASSES (bad)";
    process.stdout.write(`${verdict}\t${removal.id}\t${seconds} s\t${assertion}\t${log}\n`);
  }
  process.stdout.write(`${held} of ${chosen.length} as expected (failed with their defence removed, or a known gap); logs in ${logDir}\n`);
  if (held !== chosen.length) process.exitCode = 1;
}

main();
