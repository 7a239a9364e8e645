// The four kinds and how kubectl names and prints them: the table the CRD generator and the
// operator's API calls share.
import type { z } from "zod";
import type { CelRule } from "./common.ts";
import { DAGU_AUTH_NAME_MAX_LENGTH, DAGU_AUTH_NAME_MESSAGE } from "./names.ts";
import { DaguApiKey } from "./dagu-api-key.ts";
import { DaguAuth } from "./dagu-auth.ts";
import { DaguUser } from "./dagu-user.ts";
import { DaguWebhook } from "./dagu-webhook.ts";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  /** 0 shows in `kubectl get`; 1 only with `-o wide`. */
  priority?: number;
}

export interface KindInfo {
  kind: "DaguAuth" | "DaguUser" | "DaguApiKey" | "DaguWebhook";
  listKind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  /** The whole resource: `spec` and `status` become the CRD's schema. */
  schema: z.ZodObject<{ spec: z.ZodType; status: z.ZodOptional<z.ZodType> }>;
  printerColumns: PrinterColumn[];
  /** CEL rules on the whole object (where metadata.name can be checked). */
  objectRules?: CelRule[];
}


const condition = (field: "status" | "reason") => `.status.conditions[?(@.type=="Ready")].${field}`;
const ready: PrinterColumn = { name: "Ready", type: "string", jsonPath: condition("status"), description: "Whether the sidecar enforces it." };
const reason: PrinterColumn = { name: "Reason", type: "string", jsonPath: condition("reason"), description: "Why it is (not) ready." };
const age: PrinterColumn = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "Time since creation." };
const auth: PrinterColumn = { name: "Auth", type: "string", jsonPath: ".spec.authRef.name", description: "The DaguAuth it belongs to." };
const role: PrinterColumn = { name: "Role", type: "string", jsonPath: ".spec.role", description: "Dagu role." };

export const KINDS: readonly KindInfo[] = [
  {
    kind: "DaguAuth",
    listKind: "DaguAuthList",
    plural: "daguauths",
    singular: "daguauth",
    shortNames: ["dauth"],
    categories: ["dagu"],
    schema: DaguAuth,
    objectRules: [{ rule: `self.metadata.name.size() <= ${DAGU_AUTH_NAME_MAX_LENGTH}`, message: DAGU_AUTH_NAME_MESSAGE }],
    printerColumns: [
      { name: "Mode", type: "string", jsonPath: ".spec.mode", description: "builtin or basic." },
      { name: "Users", type: "integer", jsonPath: ".status.users", description: "Users in the credentials." },
      ready,
      reason,
      age,
      { name: "API Keys", type: "integer", jsonPath: ".status.apiKeys", description: "API keys in the credentials.", priority: 1 },
      { name: "Webhooks", type: "integer", jsonPath: ".status.webhooks", description: "Webhooks in the credentials.", priority: 1 },
      { name: "SSO Users", type: "integer", jsonPath: ".status.ssoUsers", description: "Users created by single sign-on.", priority: 1 },
    ],
  },
  {
    kind: "DaguUser",
    listKind: "DaguUserList",
    plural: "daguusers",
    singular: "daguuser",
    shortNames: ["duser"],
    categories: ["dagu"],
    schema: DaguUser,
    printerColumns: [
      { name: "Username", type: "string", jsonPath: ".spec.username", description: "Login name." },
      role,
      auth,
      ready,
      reason,
      age,
      { name: "Disabled", type: "boolean", jsonPath: ".spec.disabled", description: "Whether login is refused.", priority: 1 },
      { name: "SSO", type: "boolean", jsonPath: ".spec.sso", description: "Whether the user signs in through the OpenID provider.", priority: 1 },
    ],
  },
  {
    kind: "DaguApiKey",
    listKind: "DaguApiKeyList",
    plural: "daguapikeys",
    singular: "daguapikey",
    shortNames: ["dapikey"],
    categories: ["dagu"],
    schema: DaguApiKey,
    printerColumns: [
      role,
      auth,
      { name: "Prefix", type: "string", jsonPath: ".status.keyPrefix", description: "First characters of the key." },
      ready,
      reason,
      age,
      { name: "Expires", type: "string", jsonPath: ".spec.expiresAt", description: "When the key expires.", priority: 1 },
    ],
  },
  {
    kind: "DaguWebhook",
    listKind: "DaguWebhookList",
    plural: "daguwebhooks",
    singular: "daguwebhook",
    shortNames: ["dwebhook"],
    categories: ["dagu"],
    schema: DaguWebhook,
    printerColumns: [
      { name: "DAG", type: "string", jsonPath: ".spec.dagName", description: "The DAG it triggers." },
      { name: "Mode", type: "string", jsonPath: ".spec.auth.mode", description: "token, tokenAndHmac or hmac." },
      { name: "Enabled", type: "boolean", jsonPath: ".spec.enabled", description: "Whether triggers are accepted." },
      ready,
      reason,
      age,
      { ...auth, priority: 1 },
    ],
  },
];
