// DaguApiKey: a generated API key for a machine (a CI job, a script), with a role.
import { z } from "zod";
import { API_KEY_SURFACES } from "./credentials.ts";
import { CEL_META_KEY, Role, Rotation, authRef, objectName, resource, statusBase, timestamp } from "./common.ts";

export const DaguApiKeySpec = z
  .object({
    authRef: authRef(),
    role: Role,
    allowedSurfaces: z
      .array(z.enum(API_KEY_SURFACES))
      .min(1)
      .max(2)
      .refine((s) => new Set(s).size === s.length, "spec.allowedSurfaces must not repeat a surface")
      .default(["rest_api"])
      .meta({
        description:
          "Where the key works, as in Dagu 2.15.1: rest_api (Dagu's REST API, its event stream) and/or mcp " +
          "(Dagu's MCP endpoint, /mcp, each tool call still limited by the role). Default: rest_api only; " +
          "MCP is opt-in (Dagu's own default for a key without the field is both).",
        "x-kubernetes-list-type": "set",
      }),
    description: z.string().max(256).optional().describe("What the key is for, shown in Dagu's UI."),
    expiresAt: timestamp(
      "When the key stops working (RFC 3339, e.g. 2030-01-01T00:00:00Z). Absent: it never expires.",
    ).optional(),
    secretName: objectName(
      "Name of the Secret (created and owned by the operator) the generated key is written into. " +
        "The key leaves the cluster only through it. Immutable.",
    ).meta({
      [CEL_META_KEY]: [
        {
          rule: "self == oldSelf",
          message:
            "spec.secretName is immutable: for a key in another Secret, create another DaguApiKey (both keys work until you delete this one)",
        },
      ],
    }),
    rotation: Rotation.optional().describe(
      "Rotation: bump `generation` to issue a new key; the previous key keeps working for `overlap`.",
    ),
  })
  .describe("Desired state of a Dagu API key (`dagu_` + 44 base58 characters, sent as a Bearer token).");
export type DaguApiKeySpec = z.infer<typeof DaguApiKeySpec>;

export const DaguApiKeyStatus = z
  .object({
    ...statusBase,
    keyId: z.string().max(128).optional().describe("The key's id in Dagu's API-key list (this resource's uid)."),
    keyPrefix: z
      .string()
      .max(16)
      .optional()
      .describe("The first 8 characters of the current key, to recognize it (not secret)."),
    expiresAt: timestamp("When the current key expires, if ever.").optional(),
    rotatedAt: timestamp("When the current key was issued.").optional(),
    rotationGeneration: z
      .int()
      .min(0)
      .optional()
      .describe("The spec.rotation.generation the current key was issued for."),
  })
  .describe("Observed state of the DaguApiKey, written by the operator.");
export type DaguApiKeyStatus = z.infer<typeof DaguApiKeyStatus>;

export const DaguApiKey = resource("DaguApiKey", DaguApiKeySpec, DaguApiKeyStatus).describe(
  "DaguApiKey is a generated API key with a role, written into a Secret for the program that uses it.",
);
export type DaguApiKey = z.infer<typeof DaguApiKey>;
