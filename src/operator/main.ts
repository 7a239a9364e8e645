// `dagu-auth operator`: runs the controllers until SIGTERM, then releases the
// lease so the other replica takes over at once. Losing the lease ends the
// process (exit 1), as controller-runtime does: the kubelet restarts it clean.
import { parseArgs } from "node:util";
import { KubeConfig } from "../common/kube/config.ts";
import pino from "pino";
import { z } from "zod";
import { DEFAULT_USER_WORKERS, startOperator } from "./operator.ts";
import { loadInjectionConfig } from "./injection/config.ts";
import type { InjectionOptions } from "./injection/index.ts";

const Options = z.object({
  kubeconfig: z.string().optional(),
  "health-address": z.string().default(":8081"),
  "leader-elect": z.boolean().default(true),
  "leader-election-namespace": z.string().min(1).optional(),
  "lease-name": z.string().min(1).optional(),
  "log-level": z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
  "user-workers": z.coerce.number().int().min(1).max(256).default(DEFAULT_USER_WORKERS),
  "hash-workers": z.coerce.number().int().min(1).max(64).optional(),
  // Also part of the default Lease name, so it must be a DNS label.
  instance: z
    .string()
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a DNS label (lower-case letters, digits, '-'; at most 63)")
    .optional(),
  "injection-config": z.string().min(1).optional(),
  "webhook-address": z.string().default(":9443"),
  "webhook-certificates": z.enum(["self-managed", "cert-manager"]).default("self-managed"),
  "webhook-secret": z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, "must be a Secret name").optional(),
  "webhook-namespace": z.string().min(1).optional(),
  "webhook-configuration": z.string().min(1).optional(),
  "webhook-host": z.array(z.string().min(1)).default([]),
  "watch-namespace": z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a namespace name")).default([]),
});

const HELP = `usage: dagu-auth operator [options]

  --kubeconfig PATH                  kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)
  --health-address HOST:PORT         /healthz, /readyz and /metrics (default :8081)
  --leader-elect / --no-leader-elect leader election on a Lease (default on)
  --leader-election-namespace NS     namespace of the Lease (default $POD_NAMESPACE)
  --lease-name NAME                  name of the Lease (default dagu-auth-operator, -INSTANCE appended)
  --instance NAME                    act only on resources labelled auth.dagu.dev/instance=NAME (default:
                                     only on resources without that label); one value per install
  --user-workers N                   concurrent DaguUser reconciles (default 16)
  --hash-workers N                   concurrent argon2id hashes (default: CPUs, at most 4; past 4 also raise
                                     UV_THREADPOOL_SIZE, the thread pool the hashes run on)
  --log-level LEVEL                  fatal|error|warn|info|debug|trace (default info)
  --watch-namespace NS               a namespaced install (repeatable): act only in these namespaces, whose
                                     Roles are all the RBAC it needs (default: the whole cluster)

Sidecar injection (a mutating webhook on every replica; docs/injection.md):
  --injection-config FILE            the sidecar's image, resources and ports (JSON or YAML); turns injection on
  --webhook-address HOST:PORT        the webhook's HTTPS listener (default :9443)
  --webhook-certificates MODE        self-managed (a CA of the operator's own, caBundle patched, rotated before
                                     expiry) or cert-manager (issued into --webhook-secret, caBundle by cainjector)
  --webhook-secret NAME              the kubernetes.io/tls Secret of the serving certificate
  --webhook-namespace NS             its namespace (default $POD_NAMESPACE)
  --webhook-configuration NAME       self-managed: the MutatingWebhookConfiguration whose caBundle is kept
  --webhook-host NAME                self-managed: a DNS name or IP of the certificate (repeatable)
`;

export async function runOperator(argv: readonly string[]): Promise<number> {
  let raw;
  try {
    raw = parseArgs({
      args: [...argv],
      allowNegative: true,
      options: {
        kubeconfig: { type: "string" },
        "health-address": { type: "string" },
        "leader-elect": { type: "boolean" },
        "leader-election-namespace": { type: "string" },
        "lease-name": { type: "string" },
        "log-level": { type: "string" },
        "user-workers": { type: "string" },
        "hash-workers": { type: "string" },
        instance: { type: "string" },
        "injection-config": { type: "string" },
        "webhook-address": { type: "string" },
        "webhook-certificates": { type: "string" },
        "webhook-secret": { type: "string" },
        "webhook-namespace": { type: "string" },
        "webhook-configuration": { type: "string" },
        "webhook-host": { type: "string", multiple: true },
        "watch-namespace": { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`dagu-auth operator: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  if (raw.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const parsed = Options.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    process.stderr.write(`dagu-auth operator: --${issue.path.join(".")}: ${issue.message}\n`);
    return 2;
  }
  const o = parsed.data;
  const log = pino({ name: "dagu-auth-operator", level: o["log-level"] });
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = o.kubeconfig ? KubeConfig.fromFile(o.kubeconfig) : KubeConfig.fromDefault();
  } catch (err) {
    process.stderr.write(`dagu-auth operator: ${(err as Error).message}\n`);
    return 2;
  }

  let injection: InjectionOptions | undefined;
  try {
    injection = injectionOptions(o, process.env);
  } catch (err) {
    process.stderr.write(`dagu-auth operator: ${(err as Error).message}\n`);
    return 2;
  }

  const leaseNamespace = o["leader-election-namespace"] ?? process.env.POD_NAMESPACE;
  if (o["leader-elect"] && !leaseNamespace) {
    process.stderr.write("dagu-auth operator: leader election needs --leader-election-namespace (or $POD_NAMESPACE)\n");
    return 2;
  }
  const running = await startOperator({
    kubeConfig,
    logger: log,
    healthAddress: o["health-address"],
    userConcurrency: o["user-workers"],
    ...(o["hash-workers"] ? { hashConcurrency: o["hash-workers"] } : {}),
    ...(o.instance ? { instance: o.instance } : {}),
    ...(o["leader-elect"] ? { leaderElection: { namespace: leaseNamespace!, name: o["lease-name"] ?? `dagu-auth-operator${o.instance ? `-${o.instance}` : ""}` } } : {}),
    ...(injection ? { injection } : {}),
    ...(o["watch-namespace"].length > 0 ? { namespaces: o["watch-namespace"] } : {}),
  });
  log.info({ health: running.health?.url }, "operator started");

  return new Promise<number>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, "shutting down");
      void running.stop().then(() => resolve(0));
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
    void running.lostLeadership.then(async () => {
      await running.stop();
      resolve(1);
    });
  });
}

function injectionOptions(o: z.infer<typeof Options>, env: NodeJS.ProcessEnv): InjectionOptions | undefined {
  if (!o["injection-config"]) return undefined;
  const config = loadInjectionConfig(o["injection-config"]);
  const namespace = o["webhook-namespace"] ?? env.POD_NAMESPACE;
  if (!namespace) throw new Error("--injection-config needs --webhook-namespace (or $POD_NAMESPACE): where the certificate Secret is");
  if (!o["webhook-secret"]) throw new Error("--injection-config needs --webhook-secret: the Secret of the webhook's serving certificate");
  const base = { address: o["webhook-address"], config, certificateSecret: { namespace, name: o["webhook-secret"] } };
  if (o["webhook-certificates"] === "cert-manager") return base;
  if (!o["webhook-configuration"]) throw new Error("--webhook-certificates self-managed needs --webhook-configuration: the MutatingWebhookConfiguration whose caBundle it keeps");
  if (o["webhook-host"].length === 0) throw new Error("--webhook-certificates self-managed needs --webhook-host: the names the API server calls it by (the Service's)");
  return { ...base, selfManaged: { configurationName: o["webhook-configuration"], hosts: o["webhook-host"] } };
}
