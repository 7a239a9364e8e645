// What the injection webhook puts into a pod besides the facts of the pod itself: the sidecar's image,
// resources, security context and ports, from the chart's values (a JSON or YAML file given with
// --injection-config). Validated here, so a bad value stops the operator at start with the field named.
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

const quantity = z.union([z.string().regex(/^[0-9.]+[a-zA-Z]*$/, "must be a Kubernetes quantity such as 100m or 128Mi"), z.number().nonnegative()]);
const resourceList = z.record(z.string(), quantity);

/** The restricted Pod Security Standard, container level. */
export const RESTRICTED_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  readOnlyRootFilesystem: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

const port = z.int().min(1024).max(65535);

export const InjectionConfig = z.strictObject({
  sidecar: z
    .strictObject({
      image: z.string().min(1).describe("The dagu-auth image (the operator's own)."),
      imagePullPolicy: z.enum(["Always", "IfNotPresent", "Never"]).default("IfNotPresent"),
      resources: z
        .strictObject({ requests: resourceList.optional(), limits: resourceList.optional() })
        .default({ requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } }),
      securityContext: z.record(z.string(), z.unknown()).default(RESTRICTED_SECURITY_CONTEXT),
      /** /metrics, /healthz, /readyz and /dagu/healthz of the sidecar (the next free one if the pod uses it). */
      metricsPort: port.default(9090),
      logLevel: z.enum(["fatal", "error", "warn", "info", "debug"]).default("info"),
    })
    .describe("The sidecar container."),
  /** Dagu moves to 127.0.0.1 on this port (the next free one if the pod declares it). */
  daguPort: port.default(18080),
  /** The sidecar's egress to Dagu's remote nodes, on 127.0.0.1 (docs/remote-nodes.md). */
  egressPort: port.default(18090),
});
export type InjectionConfig = z.infer<typeof InjectionConfig>;
export type InjectionConfigInput = z.input<typeof InjectionConfig>;

/** Reads and validates the file; errors name the file and the field. */
export function loadInjectionConfig(path: string): InjectionConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`--injection-config ${path}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = InjectionConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`--injection-config ${path}: ${issue.path.join(".") || "document"}: ${issue.message}`);
  }
  return parsed.data;
}
