// The parts of a Pod the injection reads and writes, as loose zod schemas: what is read is checked,
// everything else (fields this code does not know, and those of later Kubernetes versions) is carried
// through unchanged, because the webhook answers with a patch of the object it was sent.
import { z } from "zod";

const intOrString = z.union([z.int(), z.string()]);

export const EnvVar = z.looseObject({ name: z.string(), value: z.string().optional(), valueFrom: z.unknown().optional() });
export type EnvVar = z.infer<typeof EnvVar>;

export const ContainerPort = z.looseObject({
  name: z.string().optional(),
  containerPort: z.int(),
  protocol: z.string().optional(),
  hostPort: z.int().optional(),
});
export type ContainerPort = z.infer<typeof ContainerPort>;

export const Probe = z.looseObject({
  httpGet: z.looseObject({ port: intOrString, path: z.string().optional(), scheme: z.string().optional() }).optional(),
  tcpSocket: z.looseObject({ port: intOrString }).optional(),
  exec: z.unknown().optional(),
  grpc: z.unknown().optional(),
});
export type Probe = z.infer<typeof Probe>;

export const VolumeMount = z.looseObject({ name: z.string(), mountPath: z.string() });
export type VolumeMount = z.infer<typeof VolumeMount>;

export const Container = z.looseObject({
  name: z.string(),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  args: z.array(z.string()).optional(),
  env: z.array(EnvVar).optional(),
  ports: z.array(ContainerPort).optional(),
  volumeMounts: z.array(VolumeMount).optional(),
  startupProbe: Probe.optional(),
  livenessProbe: Probe.optional(),
  readinessProbe: Probe.optional(),
});
export type Container = z.infer<typeof Container>;

export const Volume = z.looseObject({
  name: z.string(),
  projected: z.looseObject({ sources: z.array(z.looseObject({ serviceAccountToken: z.looseObject({ audience: z.string().optional() }).optional() })).nullish() }).optional(),
});
export type Volume = z.infer<typeof Volume>;

export const PodSpec = z.looseObject({
  containers: z.array(Container).min(1),
  initContainers: z.array(Container).optional(),
  volumes: z.array(Volume).optional(),
  serviceAccountName: z.string().optional(),
  serviceAccount: z.string().optional(),
  automountServiceAccountToken: z.boolean().optional(),
  hostNetwork: z.boolean().optional(),
  shareProcessNamespace: z.boolean().optional(),
});
export type PodSpec = z.infer<typeof PodSpec>;

export const Pod = z.looseObject({
  metadata: z.looseObject({
    name: z.string().optional(),
    generateName: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
  }),
  spec: PodSpec,
});
export type Pod = z.infer<typeof Pod>;
