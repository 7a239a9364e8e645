// `dagu-auth sidecar`: builds the credential source from the options, starts the server, and shuts down
// gracefully on SIGTERM/SIGINT (stop accepting, let requests in flight finish, then exit).
import type { Logger } from "pino";
import { createLogger } from "./telemetry/audit-log.ts";
import type { CredentialSource } from "./credentials/credential-source.ts";
import { parseSidecarArgs, SIDECAR_USAGE, UsageError, type SidecarArgs } from "./options.ts";
import { Sidecar } from "./server.ts";
import { DaguConfigCredentialSource, daguConfigBasePath } from "./sources/dagu-config-source.ts";
import { basePathProblem } from "../api/base-path.ts";
import { FileCredentialSource } from "./sources/file-source.ts";
import { memoryPasswordChangeLog, memorySsoUserLog, stateDirPasswordChangeLog, stateDirSsoUserLog } from "./sources/password-change-log.ts";
import { StateDir } from "./sources/state-dir.ts";
import { fileTlsProvider } from "./listener/tls.ts";
import type { KubeConfig } from "../common/kube/config.ts";

// The Kubernetes modules are loaded only in --kubernetes mode (or with --tls-secret).
async function kubeConfigFor(args: SidecarArgs): Promise<KubeConfig> {
  const { KubeConfig } = await import("../common/kube/config.ts");
  return args.kubeconfig ? KubeConfig.fromFile(args.kubeconfig) : KubeConfig.fromDefault();
}

/**
 * Dagu's base path: --dagu-base-path, or with --config (standalone, beside Dagu's own config) Dagu's own
 * setting, read as Dagu reads it (DAGU_BASE_PATH over `base_path` in the file). Both and different: refused,
 * the sidecar would guard one mount point while Dagu serves another.
 */
export async function daguBasePath(args: SidecarArgs, env: NodeJS.ProcessEnv): Promise<string> {
  if (!args.config) return args.daguBasePath ?? "";
  const fromDagu = await daguConfigBasePath(args.config, env);
  if (args.daguBasePath !== undefined && fromDagu !== undefined && fromDagu !== args.daguBasePath) {
    throw new Error(`--dagu-base-path ${args.daguBasePath} disagrees with Dagu's base path ${fromDagu} (from --config ${args.config} or DAGU_BASE_PATH): give one, or the same`);
  }
  const basePath = args.daguBasePath ?? fromDagu ?? "";
  const problem = basePathProblem(basePath);
  if (problem) throw new Error(`Dagu's base path ${JSON.stringify(basePath)} (from --config ${args.config} or DAGU_BASE_PATH) is not supported: it ${problem}`);
  return basePath;
}

export async function createSource(args: SidecarArgs, env: NodeJS.ProcessEnv, log: Logger): Promise<CredentialSource> {
  if (args.kubernetes) {
    // Password changes go to the <auth>-password-changes Secret, which the operator merges.
    const { KubernetesCredentialSource } = await import("./sources/kubernetes-source.ts");
    return new KubernetesCredentialSource({ kubeConfig: await kubeConfigFor(args), namespace: args.namespace!, authName: args.auth!, logger: log });
  }
  const stateDir = args.stateDir ? new StateDir(args.stateDir) : undefined;
  if (!stateDir) log.warn("no --state-dir: self-service password changes (and a generated token secret) last only until the sidecar restarts");
  if (args.credentialsFile) {
    if (stateDir) await stateDir.load();
    return new FileCredentialSource({
      file: args.credentialsFile,
      passwordChanges: stateDir ? stateDirPasswordChangeLog(stateDir) : memoryPasswordChangeLog(),
      ssoUsers: stateDir ? stateDirSsoUserLog(stateDir) : memorySsoUserLog(),
    });
  }
  return new DaguConfigCredentialSource({ configFile: args.config, env, stateDir, trustedProxies: args.trustedProxy, warn: (message) => log.warn(message) });
}

/** Runs the sidecar until a signal; returns the process exit code. */
export async function runSidecar(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${SIDECAR_USAGE}\n`);
    return 0;
  }
  let args: SidecarArgs;
  try {
    args = parseSidecarArgs(argv, env);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`dagu-auth sidecar: ${error.message}\n\n${SIDECAR_USAGE}\n`);
      return 2;
    }
    throw error;
  }
  const log = createLogger({ level: args.logLevel });
  let sidecar: Sidecar;
  let peers: { stop(): Promise<void> } | undefined;
  let egress: { stop(): Promise<void> } | undefined;
  try {
    const source = await createSource(args, env, log);
    // Replicas of one DaguAuth share their login throttling through a Secret (sources/kubernetes-throttle.ts).
    const throttlePeers = args.kubernetes
      ? new (await import("./sources/kubernetes-throttle.ts")).KubernetesThrottlePeers({ kubeConfig: await kubeConfigFor(args), namespace: args.namespace!, authName: args.auth!, logger: log })
      : undefined;
    throttlePeers?.start();
    peers = throttlePeers;
    sidecar = new Sidecar({
      upstream: args.upstream,
      listen: args.listen,
      metricsListen: args.metricsListen === "off" ? undefined : args.metricsListen,
      daguApi: args.daguApi,
      daguBasePath: await daguBasePath(args, env),
      source,
      tls: args.tlsSecret
        ? (await import("./sources/kubernetes-tls.ts")).kubernetesTlsProvider({ kubeConfig: await kubeConfigFor(args), namespace: args.namespace!, secretName: args.tlsSecret, logger: log })
        : args.tlsCert && args.tlsKey
          ? fileTlsProvider({ certFile: args.tlsCert, keyFile: args.tlsKey })
          : undefined,
      maxBodyBytes: args.maxBodyBytes,
      maxHeaderBytes: args.maxHeaderBytes,
      headersTimeoutSeconds: args.headersTimeout,
      requestTimeoutSeconds: args.requestTimeout,
      maxConnections: args.maxConnections,
      maxConnectionsPerClient: args.maxConnectionsPerClient,
      maxUnauthenticatedBodyBytes: args.maxUnauthenticatedBodyBytes,
      logger: log,
      ...(throttlePeers ? { throttlePeers } : {}),
    });
    await sidecar.start();
    if (args.egressListen) {
      // Dagu's remote nodes, reached through the sidecar with their issued keys (remote-nodes.ts).
      const { RemoteNodeEgress } = await import("./proxy/remote-nodes.ts");
      const { KubernetesSecretValues } = await import("./sources/kubernetes-secret-values.ts");
      const secrets = new KubernetesSecretValues({ kubeConfig: await kubeConfigFor(args), namespace: args.namespace!, logger: log });
      const running = new RemoteNodeEgress({ listen: args.egressListen, store: sidecar.store, secrets, logger: log });
      const address = await running.start();
      egress = running;
      log.info({ egress: address }, "remote-node egress listening");
    }
  } catch (error) {
    log.fatal({ error: (error as Error).message }, "sidecar failed to start");
    log.flush();
    process.stderr.write(`dagu-auth sidecar: ${(error as Error).message}\n`);
    return 1;
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "shutting down");
  await egress?.stop();
  await sidecar.stop();
  await peers?.stop();
  log.info("stopped");
  log.flush();
  return 0;
}
