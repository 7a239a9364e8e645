// Shared building blocks of the auth.dagu.dev API: references, roles, durations, conditions,
// and the `cel()` helper that attaches a CEL rule for the apiserver and the same check for zod.
import { isIP } from "node:net";
import { z } from "zod";
import { DURATION_PATTERN, MAX_DURATION, MAX_DURATION_LENGTH, isDuration, parseDurationNs } from "./duration.ts";

export const GROUP = "auth.dagu.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

// ---------------------------------------------------------------------------------------------
// CEL rules

/** One entry of `x-kubernetes-validations`, as the apiserver reads it. */
export interface CelRule {
  rule: string;
  /** Shown verbatim by the apiserver: must name the field it is about. */
  message: string;
  /** JSONPath relative to the schema node the rule sits on (e.g. `.basic`): where the error points. */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/** A CEL rule plus its JavaScript twin, so zod refuses what the apiserver refuses. */
export interface CheckedCelRule<T> extends CelRule {
  /** Returns true when the value is valid. Omitted only for transition rules (`oldSelf`). */
  check?: (value: T) => boolean;
}

export const CEL_META_KEY = "x-kubernetes-validations";

/**
 * Attaches CEL rules to a schema: the CRD generator copies them into `x-kubernetes-validations`,
 * and zod runs each `check` with the same message (issue path from `fieldPath`).
 */
export function cel<S extends z.ZodType>(schema: S, rules: CheckedCelRule<z.output<S>>[]): S {
  const refined = schema.superRefine((value, ctx) => {
    for (const r of rules) {
      if (r.check && !r.check(value)) {
        ctx.addIssue({ code: "custom", message: r.message, path: fieldPathToZodPath(r.fieldPath) });
      }
    }
  });
  const celRules: CelRule[] = rules.map(({ check: _check, ...rest }) => rest);
  return refined.meta({ [CEL_META_KEY]: celRules });
}

function fieldPathToZodPath(fieldPath: string | undefined): string[] {
  return fieldPath ? fieldPath.split(".").filter((s) => s !== "") : [];
}

// ---------------------------------------------------------------------------------------------
// Names and references

/** RFC 1123 subdomain: what Kubernetes accepts as the name of a Secret, ServiceAccount, ... */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const objectName = (description: string) =>
  z.string().min(1).max(253).regex(DNS_SUBDOMAIN).describe(description);

/** A key of a Secret's data map (the apiserver's own rule for Secret keys). */
export const secretKey = (description: string) =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(/^[-._a-zA-Z0-9]+$/)
    .describe(description);

export const SecretKeySelector = z
  .object({
    name: objectName("Name of the Secret, in the same namespace as this resource."),
    key: secretKey("Key in the Secret's data whose value is used."),
  })
  .describe("A key of a Secret in the same namespace.");
export type SecretKeySelector = z.infer<typeof SecretKeySelector>;

export const LocalObjectReference = z
  .object({ name: objectName("Name of the referenced object, in the same namespace.") })
  .describe("A reference to an object in the same namespace.");
export type LocalObjectReference = z.infer<typeof LocalObjectReference>;

/** The DaguAuth a user, API key or webhook belongs to; immutable (moving it would orphan credentials). */
export const authRef = () =>
  LocalObjectReference.meta({
    description: "The DaguAuth (in the same namespace) this resource belongs to. Immutable.",
    [CEL_META_KEY]: [{ rule: "self == oldSelf", message: "spec.authRef is immutable" }],
  });

// ---------------------------------------------------------------------------------------------
// Roles

/** Dagu's five roles, highest first; each includes the ones after it. */
export const ROLES = ["admin", "manager", "developer", "operator", "viewer"] as const;
export const Role = z
  .enum(ROLES)
  .describe(
    "Dagu role, highest first: admin (everything), manager (+ audit logs), developer (edit DAGs), " +
      "operator (run and stop DAGs), viewer (read only). Each role includes the ones below it.",
  );
export type Role = z.infer<typeof Role>;

/**
 * Usernames: a letter or digit first, then letters, digits, `.`, `_`, `@`, `-` (so an email address
 * works), at most 64 characters. No `:` (it ends the username in HTTP Basic credentials), no spaces
 * or control characters (look-alike names in logs and the UI).
 */
export const USERNAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$/;
export const username = (description: string) =>
  z.string().min(1).max(64).regex(USERNAME_PATTERN).describe(description);

// ---------------------------------------------------------------------------------------------
// Durations: Go's syntax with Dagu's one-year cap, one parser for everything (duration.ts)

export { DURATION_PATTERN, DurationError, MAX_DURATION, durationSeconds, isDuration, parseDuration, parseDurationNs, parseGoDuration } from "./duration.ts";

/**
 * A duration field: the pattern (Go's syntax, no sign) and a CEL rule for the cap, which zod checks
 * with the same parser (`isDuration`); the apiserver puts the field's path before the message.
 */
export const duration = (description: string) =>
  cel(z.string().min(1).max(MAX_DURATION_LENGTH).regex(DURATION_PATTERN), [
    {
      rule: `!self.matches('${DURATION_PATTERN.source}') || duration(self) <= duration('${MAX_DURATION}')`,
      message: `must be at most ${MAX_DURATION} (365 days, Dagu's limit)`,
      check: (v) => !DURATION_PATTERN.test(v) || isDuration(v),
    },
  ]).describe(`${description} A Go duration such as 24h, 90m, 1h30m, 1.5h or 45s; at most ${MAX_DURATION}.`);

/** CEL and JS for "`path` is at least `min`" on a duration field of the object the rule sits on. */
export function minDuration<T extends Record<string, unknown>>(field: keyof T & string, path: string, min: string): CheckedCelRule<T> {
  return durationBound(field, `${path} must be at least ${min}`, ">=", min);
}

/** CEL and JS for "`path` is at most `max`" on a duration field of the object the rule sits on. */
export function maxDuration<T extends Record<string, unknown>>(field: keyof T & string, path: string, max: string): CheckedCelRule<T> {
  return durationBound(field, `${path} must be at most ${max}`, "<=", max);
}

function durationBound<T extends Record<string, unknown>>(field: keyof T & string, message: string, op: ">=" | "<=", bound: string): CheckedCelRule<T> {
  return {
    // The pattern guard keeps a malformed value to the pattern's own error, not a CEL conversion error.
    rule:
      `!has(self.${field}) || !self.${field}.matches('${DURATION_PATTERN.source}') || ` +
      `duration(self.${field}) ${op} duration('${bound}')`,
    message,
    fieldPath: `.${field}`,
    check: (v) => {
      const value = v[field];
      if (typeof value !== "string" || !isDuration(value)) return true;
      return op === ">=" ? parseDurationNs(value) >= parseDurationNs(bound) : parseDurationNs(value) <= parseDurationNs(bound);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Network

/**
 * True for an address block such as `10.0.0.0/8` or `fd00::/8` (CEL's `isCIDR`, which also
 * accepts a host address with a prefix such as `10.1.2.3/8`).
 */
export function isCidr(value: string): boolean {
  const slash = value.indexOf("/");
  if (slash < 0) return false;
  const family = isIP(value.slice(0, slash));
  const prefix = value.slice(slash + 1);
  if (family === 0 || !/^(0|[1-9][0-9]{0,2})$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

// ---------------------------------------------------------------------------------------------
// Rotation

export const Rotation = z
  .object({
    generation: z
      .int()
      .min(0)
      .max(2_147_483_647)
      .describe(
        "Rotation counter: increase it to issue a new generated secret. The previous one stays " +
          "valid for `overlap`, then stops working.",
      ),
    overlap: duration("How long the previous secret stays valid after a rotation.").default("24h"),
  })
  .describe("Rotation of the generated secret, declared in Git: bump `generation` to rotate.");
export type Rotation = z.infer<typeof Rotation>;

// ---------------------------------------------------------------------------------------------
// Status

/** Longest timestamp text: RFC 3339 with nanoseconds and an offset is 35; the pattern alone allows any number of fraction digits. */
export const MAX_TIMESTAMP_LENGTH = 64;

/** An RFC 3339 timestamp with `Z` or an offset, e.g. 2030-01-01T00:00:00Z. */
export const timestamp = (description: string) => z.iso.datetime({ offset: true }).max(MAX_TIMESTAMP_LENGTH).describe(description);

/** The same shape and limits as metav1.Condition, so kstatus, Argo CD and Flux read it unchanged. */
export const Condition = z
  .object({
    type: z
      .string()
      .min(1)
      .max(316)
      .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/)
      .describe("Type of the condition in CamelCase, e.g. Ready."),
    status: z.enum(["True", "False", "Unknown"]).describe("Status of the condition: True, False or Unknown."),
    reason: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
      .describe("Machine-readable CamelCase reason for the last transition."),
    message: z.string().max(32768).describe("Human-readable details about the last transition."),
    lastTransitionTime: timestamp("When the condition last changed status."),
    observedGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The metadata.generation the condition was computed from."),
  })
  .describe("An observation of one aspect of the resource's state.");
export type Condition = z.infer<typeof Condition>;

export const READY = "Ready";

/** Fields every kind's status carries; kinds extend it with their own read-only fields. */
export const statusBase = {
  observedGeneration: z
    .int()
    .min(0)
    .optional()
    .describe("The metadata.generation the operator last acted on."),
  conditions: z
    .array(Condition)
    .max(16)
    .optional()
    .meta({
      description:
        "Current state: Ready is True once the resource is enforced by the sidecar; Reconciling (work in " +
        "progress, or waiting for something that appears by itself) and Stalled (needs a change) follow " +
        "kstatus and are present only while True.",
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    }),
};

// ---------------------------------------------------------------------------------------------
// Object envelope

/** The part of ObjectMeta the operator relies on; the apiserver owns the rest. */
export const ObjectMeta = z
  .looseObject({
    name: z.string(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    generation: z.int().optional(),
    resourceVersion: z.string().optional(),
    creationTimestamp: z.string().optional(),
    deletionTimestamp: z.string().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .describe("Standard object metadata.");
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** A whole custom resource of `kind` with the given spec and status schemas. */
export function resource<K extends string, Spec extends z.ZodType, Status extends z.ZodType>(
  kind: K,
  spec: Spec,
  status: Status,
  /** A shorter limit than Kubernetes' own for metadata.name (the CRD says it in a CEL rule, see kinds.ts). */
  name?: { maxLength: number; message: string },
) {
  return z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: name ? ObjectMeta.extend({ name: z.string().max(name.maxLength, name.message) }) : ObjectMeta,
    spec,
    status: status.optional(),
  });
}
