// DaguWebhook: the token (and HMAC secret) that lets an outside system trigger one DAG.
import { z } from "zod";
import { CEL_META_KEY, Rotation, authRef, cel, duration, maxDuration, minDuration, objectName, resource, statusBase, timestamp } from "./common.ts";

/** Dagu's own rule for DAG names (ValidateDAGName): these characters, at most 40, not `.` or `..`. */
export const DAG_NAME_PATTERN = /^[a-zA-Z0-9_.-]{1,40}$/;
export const DAG_NAME_MAX_LENGTH = 40;

export const WEBHOOK_MODES = ["token", "tokenAndHmac", "hmac"] as const;
export const HMAC_ENFORCEMENTS = ["strict", "observe"] as const;
/** The signed request's time, in Unix seconds, when the webhook has a timestamp window (not in Dagu). */
export const WEBHOOK_TIMESTAMP_HEADER = "X-Dagu-Timestamp";
const MAX_TIMESTAMP_WINDOW = "24h";

export const WebhookAuth = cel(
  z
    .object({
      mode: z
        .enum(WEBHOOK_MODES)
        .default("token")
        .describe(
          "token: a Bearer token (dagu_wh_...). tokenAndHmac: the token, and an X-Dagu-Signature " +
            "HMAC-SHA256 of the body. hmac: the signature alone. The signature is " +
            "`sha256=<hex of HMAC-SHA256(key, body)>` where the key is the hmacSecret value's text as " +
            "the Secret holds it (its UTF-8 bytes, as Dagu and GitHub key it; not base64-decoded).",
        ),
      hmacEnforcement: z
        .enum(HMAC_ENFORCEMENTS)
        .optional()
        .describe(
          "With tokenAndHmac only: strict (default) refuses a missing or wrong signature; observe " +
            "accepts it and logs it, to roll out signing without an outage.",
        ),
      timestampWindow: duration(
        "With tokenAndHmac or hmac only: replay protection, not in Dagu (whose signed requests can be " +
          "replayed forever), so unset by default. When set, a trigger must send X-Dagu-Timestamp (Unix " +
          "seconds) no further than this from the sidecar's clock, the signature covers it " +
          "(HMAC-SHA256 over `x-dagu-timestamp:<ts>\\n` followed by what Dagu signs), and each signed " +
          "request is accepted once.",
      ).optional(),
    })
    .describe("How a trigger proves it may run the DAG."),
  [
    {
      rule: "!has(self.hmacEnforcement) || self.mode == 'tokenAndHmac'",
      message: "spec.auth.hmacEnforcement is only allowed when spec.auth.mode is tokenAndHmac",
      fieldPath: ".hmacEnforcement",
      reason: "FieldValueForbidden",
      check: (a) => a.hmacEnforcement === undefined || a.mode === "tokenAndHmac",
    },
    {
      rule: "!has(self.timestampWindow) || self.mode != 'token'",
      message: "spec.auth.timestampWindow needs a signature: spec.auth.mode tokenAndHmac or hmac",
      fieldPath: ".timestampWindow",
      reason: "FieldValueForbidden",
      check: (a) => a.timestampWindow === undefined || a.mode !== "token",
    },
    minDuration("timestampWindow", "spec.auth.timestampWindow", "1s"),
    maxDuration("timestampWindow", "spec.auth.timestampWindow", MAX_TIMESTAMP_WINDOW),
  ],
);
export type WebhookAuth = z.infer<typeof WebhookAuth>;

export const DaguWebhookSpec = z
  .object({
    authRef: authRef(),
    dagName: z
      .string()
      .min(1)
      .max(DAG_NAME_MAX_LENGTH)
      .regex(DAG_NAME_PATTERN)
      .refine((n) => n !== "." && n !== "..", "spec.dagName must not be '.' or '..'")
      .meta({
        description:
          "File name of the DAG to trigger (without .yaml), as in POST /api/v1/webhooks/{dagName}: " +
          "letters, digits, '_', '.', '-', at most 40 characters (Dagu's rule). Immutable: a token " +
          "handed out for one DAG must not start another.",
        [CEL_META_KEY]: [
          { rule: "self != '.' && self != '..'", message: "spec.dagName must not be '.' or '..'" },
          { rule: "self == oldSelf", message: "spec.dagName is immutable" },
        ],
      }),
    auth: WebhookAuth.prefault({}),
    secretName: objectName(
      "Name of the Secret (created and owned by the operator) the webhook token (key `token`) and HMAC " +
        "secret (key `hmacSecret`, 43 characters, used as text) are written into, for the system that " +
        "sends the trigger. Immutable.",
    ).meta({
      [CEL_META_KEY]: [
        {
          rule: "self == oldSelf",
          message:
            "spec.secretName is immutable: for another Secret, replace the DaguWebhook (it gets a new token)",
        },
      ],
    }),
    enabled: z.boolean().default(true).describe("A disabled webhook refuses every trigger."),
    rotation: Rotation.optional().describe(
      "Rotation: bump `generation` to issue a new token and HMAC secret; the previous ones keep " +
        "working for `overlap`.",
    ),
  })
  .describe("Desired state of the webhook of one DAG (Dagu allows one webhook per DAG).");
export type DaguWebhookSpec = z.infer<typeof DaguWebhookSpec>;

export const DaguWebhookStatus = z
  .object({
    ...statusBase,
    webhookId: z.string().max(128).optional().describe("The webhook's id in Dagu's webhook list (this resource's uid)."),
    rotatedAt: timestamp("When the current token and HMAC secret were issued.").optional(),
    rotationGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The spec.rotation.generation the current token was issued for."),
  })
  .describe("Observed state of the DaguWebhook, written by the operator.");
export type DaguWebhookStatus = z.infer<typeof DaguWebhookStatus>;

export const DaguWebhook = resource("DaguWebhook", DaguWebhookSpec, DaguWebhookStatus).describe(
  "DaguWebhook lets an outside system (GitHub, a CI job) trigger one DAG with a token and/or an HMAC signature.",
);
export type DaguWebhook = z.infer<typeof DaguWebhook>;
