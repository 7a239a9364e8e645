// The mutation itself, a pure function of the pod, the DaguAuth it names and the chart's settings
// (docs/injection.md explains every change, ADR 0011 why):
// - the sidecar `dagu-auth` takes Dagu's port (same number, same name: Services and Ingresses are
//   unchanged) and Dagu moves to 127.0.0.1 on a free port with its own auth off (DAGU_HOST, DAGU_PORT,
//   DAGU_AUTH_MODE; --host/--port flags, which would outrank them, are removed);
// - Dagu's probes that went to its port ask the sidecar's /dagu/healthz, which asks Dagu directly:
//   they keep telling whether Dagu answers, whatever the state of the credentials;
// - the pod runs as the DaguAuth's sidecar ServiceAccount with automountServiceAccountToken off, and a
//   projected token (token, CA, namespace) is mounted into the sidecar alone: Dagu's containers, which
//   run DAG code, hold no token that could read the credentials.
// Idempotent: a mutated pod mutated again is unchanged (the webhook is reinvoked after other webhooks).
import { IN_CLUSTER_DIR } from "../../common/kube/config.ts";
import type { InjectionConfig } from "./config.ts";
import { daguRole, flagValue, withoutAddressFlags } from "./dagu-container.ts";
import type { Container, ContainerPort, EnvVar, Pod, Probe, Volume } from "./pod.ts";

export const INJECT_LABEL = "auth.dagu.dev/inject";
export const INJECTED_ANNOTATION = "auth.dagu.dev/injected";
export const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";
export const SIDECAR_CONTAINER = "dagu-auth";
export const TOKEN_VOLUME = "dagu-auth-token";
export const TMP_VOLUME = "dagu-auth-tmp";
export const METRICS_PORT_NAME = "auth-metrics";
/** The sidecar's endpoint that asks Dagu's health directly (Dagu's own probes go there). */
export const DAGU_HEALTH_PATH = "/dagu/healthz";
/** Dagu's own default port. */
const DAGU_DEFAULT_PORT = 8080;
/** The token the kubelet projects lives an hour and is refreshed at 80 % of that, as for automounted tokens. */
const TOKEN_EXPIRATION_SECONDS = 3607;
/** Dagu's TLS: with the sidecar in front it would make Dagu speak HTTPS to a proxy that expects HTTP. */
const DAGU_TLS_ENV = ["DAGU_CERT_FILE", "DAGU_KEY_FILE"];
/** Dagu's base path, set from the DaguAuth's spec.basePath (it outranks base_path in Dagu's config file). */
const BASE_PATH_ENV = "DAGU_BASE_PATH";

export interface InjectionTarget {
  namespace: string;
  authName: string;
  /** The ServiceAccount the operator made for the DaguAuth (it may read the credentials). */
  serviceAccountName: string;
  /** The DaguAuth's kubernetes.io/tls Secret, when it has spec.tls. */
  tlsSecretName?: string;
  /** The DaguAuth's spec.basePath: the sidecar's --dagu-base-path and Dagu's DAGU_BASE_PATH. */
  basePath?: string;
}

export type InjectionResult =
  | { kind: "inject"; pod: Pod; warnings: string[] }
  /** A pod of Dagu's that serves no UI or API (scheduler, worker, coordinator): nothing to protect. */
  | { kind: "skip"; warnings: string[] }
  | { kind: "refuse"; reason: string };

const refuse = (reason: string): InjectionResult => ({ kind: "refuse", reason });

export function injectPod(input: Pod, target: InjectionTarget, config: InjectionConfig): InjectionResult {
  const pod = structuredClone(input);
  const spec = pod.spec;
  const warnings: string[] = [];
  if (spec.hostNetwork) return refuse("the pod uses hostNetwork: Dagu on 127.0.0.1 would be reachable from every pod on the node's network; injection needs the pod's own network");
  if (spec.shareProcessNamespace) return refuse("the pod shares its process namespace: Dagu's container could read the sidecar's token through /proc; turn shareProcessNamespace off");

  const sidecarIndex = spec.containers.findIndex((c) => c.name === SIDECAR_CONTAINER);
  const existing = sidecarIndex >= 0 ? spec.containers[sidecarIndex] : undefined;
  const roles = spec.containers.map((c) => (c.name === SIDECAR_CONTAINER ? undefined : daguRole(c)));
  const servers = spec.containers.filter((_c, i) => roles[i]?.kind === "server");
  if (servers.length === 0) {
    const component = roles.find((r) => r?.kind === "component");
    if (component?.kind === "component") return { kind: "skip", warnings: [`dagu-auth: not injected: \`dagu ${component.subcommand}\` serves no web UI or API, so there is nothing for the sidecar to protect`] };
    return refuse(
      `no container runs Dagu's server: name the \`dagu\` executable and \`start-all\` or \`server\` in a container's command or args (not through a shell), or use the Dagu image with its default command; ${describeContainers(spec.containers)}`,
    );
  }
  if (servers.length > 1) return refuse(`more than one container runs Dagu's server (${servers.map((c) => c.name).join(", ")}): one sidecar protects one Dagu`);
  const dagu = servers[0]!;

  const tlsEnv = dagu.env?.find((e) => DAGU_TLS_ENV.includes(e.name) && (e.value || e.valueFrom));
  if (tlsEnv) return refuse(`container ${dagu.name} sets ${tlsEnv.name}: with the sidecar in front, TLS is the sidecar's (DaguAuth spec.tls); remove ${DAGU_TLS_ENV.join(" and ")}`);

  // Dagu's base path is the DaguAuth's (spec.basePath): another one set on the container would leave the
  // sidecar guarding a mount point where Dagu is not (every page and call 404).
  const baseEnv = dagu.env?.find((e) => e.name === BASE_PATH_ENV && (e.valueFrom || (e.value ?? "") !== ""));
  if (baseEnv && (baseEnv.valueFrom || baseEnv.value !== target.basePath)) {
    return refuse(
      `container ${dagu.name} sets ${BASE_PATH_ENV}${baseEnv.value ? `=${baseEnv.value}` : " from a reference"}: Dagu's base path is DaguAuth ${target.authName}'s spec.basePath (${target.basePath ?? "none"}); set it there and remove ${BASE_PATH_ENV}`,
    );
  }

  // The public port: the sidecar's, once injected; otherwise where Dagu would have listened.
  const publicPort: ContainerPort = existing?.ports?.[0] ? { ...existing.ports[0] } : daguPublicPort(dagu);
  const port = publicPort.containerPort;
  const taken = new Set<number>([port]);
  for (const c of spec.containers) {
    if (c.name === SIDECAR_CONTAINER) continue;
    for (const p of c.ports ?? []) if (!(c === dagu && samePort(p, publicPort))) taken.add(p.containerPort);
  }
  const metricsPort = firstFree(config.sidecar.metricsPort, taken);
  taken.add(metricsPort);
  const daguPort = firstFree(config.daguPort, taken);
  taken.add(daguPort);
  const egressPort = firstFree(config.egressPort, taken);

  // Tokens: only the sidecar's. The one the ServiceAccount admission added goes; any other token
  // mounted into another container would hand it the sidecar's identity.
  const autoVolumes = new Set((spec.volumes ?? []).filter((v) => v.name !== TOKEN_VOLUME && isApiTokenVolume(v) && v.name.startsWith("kube-api-access-")).map((v) => v.name));
  const foreign = new Set((spec.volumes ?? []).filter((v) => v.name !== TOKEN_VOLUME && !autoVolumes.has(v.name) && isApiTokenVolume(v)).map((v) => v.name));
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    if (c.name === SIDECAR_CONTAINER && c === existing) continue;
    const mount = c.volumeMounts?.find((m) => foreign.has(m.name) || m.name === TOKEN_VOLUME);
    if (mount) return refuse(`container ${c.name} mounts a ServiceAccount token (volume ${mount.name}): with injection the pod runs as ${target.serviceAccountName}, which may read the credentials; only the sidecar may hold its token`);
  }
  const dropMounts = (c: Container): Container => (c.volumeMounts?.some((m) => autoVolumes.has(m.name)) ? { ...c, volumeMounts: c.volumeMounts.filter((m) => !autoVolumes.has(m.name)) } : c);

  const injectedDagu = rewriteDagu(dropMounts(dagu), publicPort, daguPort, metricsPort, target.basePath);
  const sidecar = sidecarContainer(target, config, publicPort, { dagu: daguPort, metrics: metricsPort, egress: egressPort });
  const containers = spec.containers.map((c) => (c === dagu ? injectedDagu : c === existing ? sidecar : dropMounts(c)));
  if (!existing) containers.push(sidecar);
  spec.containers = containers;
  if (spec.initContainers) spec.initContainers = spec.initContainers.map(dropMounts);
  spec.volumes = [...(spec.volumes ?? []).filter((v) => !autoVolumes.has(v.name) && v.name !== TOKEN_VOLUME && v.name !== TMP_VOLUME), ...podVolumes()];

  const previous = spec.serviceAccountName ?? spec.serviceAccount;
  if (previous && previous !== "default" && previous !== target.serviceAccountName) {
    warnings.push(`dagu-auth: serviceAccountName ${previous} replaced by ${target.serviceAccountName} (the DaguAuth's sidecar ServiceAccount); Dagu's container gets no ServiceAccount token`);
  }
  spec.serviceAccountName = target.serviceAccountName;
  spec.serviceAccount = target.serviceAccountName;
  spec.automountServiceAccountToken = false;

  pod.metadata.annotations = {
    ...pod.metadata.annotations,
    [INJECTED_ANNOTATION]: target.authName,
    [DEFAULT_CONTAINER_ANNOTATION]: pod.metadata.annotations?.[DEFAULT_CONTAINER_ANNOTATION] ?? dagu.name,
  };
  return { kind: "inject", pod, warnings };
}

function describeContainers(containers: Container[]): string {
  const shown = containers.map((c) => `${c.name}: ${JSON.stringify([...(c.command ?? []), ...(c.args ?? [])].slice(0, 4))}${c.command || c.args ? "" : ` (image ${c.image ?? "?"})`}`);
  return `containers ${shown.join("; ")}`;
}

const samePort = (a: ContainerPort, b: ContainerPort) => a.containerPort === b.containerPort && (a.protocol ?? "TCP") === (b.protocol ?? "TCP");

function literalPort(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,5}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** Where Dagu would listen: its --port flag, else DAGU_PORT, else its one declared TCP port, else 8080. */
function daguPublicPort(dagu: Container): ContainerPort {
  const tcp = (dagu.ports ?? []).filter((p) => (p.protocol ?? "TCP") === "TCP");
  const env = dagu.env?.find((e) => e.name === "DAGU_PORT" && e.valueFrom === undefined)?.value;
  const number = literalPort(flagValue(dagu, "port")) ?? literalPort(env) ?? (tcp.length === 1 ? tcp[0]!.containerPort : DAGU_DEFAULT_PORT);
  const declared = tcp.find((p) => p.containerPort === number);
  return declared ? { ...declared } : { containerPort: number, protocol: "TCP" };
}

function firstFree(preferred: number, taken: ReadonlySet<number>): number {
  let port = preferred;
  while (taken.has(port)) port = port >= 65535 ? 1024 : port + 1;
  return port;
}

/** A projected volume whose token authenticates to the API server (no other audience named). */
function isApiTokenVolume(v: Volume): boolean {
  return (v.projected?.sources ?? []).some((s) => s.serviceAccountToken !== undefined && !s.serviceAccountToken.audience);
}

function setEnv(env: EnvVar[] | undefined, values: Record<string, string>): EnvVar[] {
  // In place where the variable exists: a later variable may refer to it with $(NAME).
  const out = (env ?? []).map((e) => (e.name in values ? { name: e.name, value: values[e.name]! } : e));
  for (const [name, value] of Object.entries(values)) if (!out.some((e) => e.name === name)) out.push({ name, value });
  return out;
}

function rewriteDagu(dagu: Container, publicPort: ContainerPort, daguPort: number, metricsPort: number, basePath: string | undefined): Container {
  const out: Container = { ...dagu, ...withoutAddressFlags(dagu) };
  if (out.command === undefined) delete out.command;
  if (out.args === undefined) delete out.args;
  out.env = setEnv(dagu.env, { DAGU_HOST: "127.0.0.1", DAGU_PORT: String(daguPort), DAGU_AUTH_MODE: "none", ...(basePath ? { [BASE_PATH_ENV]: basePath } : {}) });
  const ports = (dagu.ports ?? []).filter((p) => !samePort(p, publicPort));
  if (ports.length > 0) out.ports = ports;
  else delete out.ports;
  const toDagu = (p: Probe | undefined): Probe | undefined => {
    const target = p?.httpGet?.port ?? p?.tcpSocket?.port;
    if (!p || target === undefined || (target !== publicPort.containerPort && (publicPort.name === undefined || target !== publicPort.name))) return p;
    const timing = { ...p };
    delete timing.httpGet;
    delete timing.tcpSocket;
    return { ...timing, httpGet: { path: DAGU_HEALTH_PATH, port: metricsPort, scheme: "HTTP" } };
  };
  for (const key of ["startupProbe", "livenessProbe", "readinessProbe"] as const) {
    const probe = toDagu(dagu[key]);
    if (probe) out[key] = probe;
  }
  return out;
}

const probe = (path: string, metricsPort: number, timing: { periodSeconds: number; failureThreshold: number; timeoutSeconds: number }) => ({
  httpGet: { path, port: metricsPort, scheme: "HTTP" },
  ...timing,
  successThreshold: 1,
});

function sidecarContainer(target: InjectionTarget, config: InjectionConfig, publicPort: ContainerPort, ports: { dagu: number; metrics: number; egress: number }): Container {
  const s = config.sidecar;
  const { dagu: daguPort, metrics: metricsPort } = ports;
  const args = [
    "--kubernetes",
    "--namespace",
    target.namespace,
    "--auth",
    target.authName,
    "--upstream",
    `http://127.0.0.1:${daguPort}`,
    "--listen",
    `0.0.0.0:${publicPort.containerPort}`,
    "--metrics-listen",
    `0.0.0.0:${metricsPort}`,
    // Dagu's remote nodes go out through the sidecar, which adds their keys (loopback only).
    "--egress-listen",
    `127.0.0.1:${ports.egress}`,
    ...(target.tlsSecretName ? ["--tls-secret", target.tlsSecretName] : []),
    ...(target.basePath ? ["--dagu-base-path", target.basePath] : []),
    "--log-level",
    s.logLevel,
  ];
  return {
    name: SIDECAR_CONTAINER,
    image: s.image,
    imagePullPolicy: s.imagePullPolicy,
    command: ["dagu-auth", "sidecar"],
    args,
    ports: [
      { ...publicPort, protocol: publicPort.protocol ?? "TCP" },
      { name: METRICS_PORT_NAME, containerPort: metricsPort, protocol: "TCP" },
    ],
    startupProbe: probe("/healthz", metricsPort, { periodSeconds: 1, failureThreshold: 60, timeoutSeconds: 1 }),
    livenessProbe: probe("/healthz", metricsPort, { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3 }),
    // Ready: credentials in force and Dagu's API detected behind it.
    readinessProbe: probe("/readyz", metricsPort, { periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 3 }),
    resources: s.resources,
    securityContext: s.securityContext,
    volumeMounts: [
      { name: TOKEN_VOLUME, mountPath: IN_CLUSTER_DIR, readOnly: true },
      { name: TMP_VOLUME, mountPath: "/tmp" },
    ],
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "FallbackToLogsOnError",
  };
}

function podVolumes(): Volume[] {
  return [
    {
      name: TOKEN_VOLUME,
      projected: {
        defaultMode: 0o644,
        sources: [
          { serviceAccountToken: { path: "token", expirationSeconds: TOKEN_EXPIRATION_SECONDS } },
          { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
          { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
        ],
      },
    },
    { name: TMP_VOLUME, emptyDir: { sizeLimit: "16Mi" } },
  ];
}
