// Dagu's write routes for users, API keys and webhooks, answered by a standalone sidecar with management
// (management.ts): the request bodies of Dagu's api.yaml, checked with zod, and Dagu's response shapes
// and status codes. Reads (lists, one item) stay in auth-api.ts: they render the credentials in force.
import type { ServerResponse } from "node:http";
import { z } from "zod";
import { ROLES, type Role } from "../../api/common.ts";
import { API_KEY_ATTRIBUTIONS, API_KEY_SURFACES } from "../../api/credentials.ts";
import type { LocalCall, LocalOutcome } from "./local-call.ts";
import type { CredentialSnapshot } from "../credentials/credential-store.ts";
import type { DaguApiProfile } from "../routes/dagu-api.ts";
import { apiKeyJson, userJson, webhookJson } from "./dagu-json.ts";
import { HttpError, parseJsonBody, readBody, sendError, sendJson } from "./http-io.ts";
import type { Actor, StandaloneManagement } from "./management.ts";
import { credentialApiKey, credentialUser, credentialWebhook, type StoredWebhook } from "../sources/standalone-records.ts";

const BODY_LIMIT = 16 * 1024;

/** Dagu 2's role names, and Dagu 1's (whose manager is our developer: DAG write and run). */
const UiRole = z.string();
/** The sidecar enforces no workspace grants: only access to all workspaces can be kept as it is meant. */
const WorkspaceAccess = z.object({ all: z.boolean(), grants: z.array(z.unknown()).optional() }).optional();

const CreateUser = z.object({ username: z.string().max(64), password: z.string().max(1024), role: UiRole, workspaceAccess: WorkspaceAccess });
const UpdateUser = z.object({ username: z.string().max(64).optional(), role: UiRole.optional(), workspaceAccess: WorkspaceAccess, isDisabled: z.boolean().optional() });
const ResetPassword = z.object({ newPassword: z.string().max(1024) });
const ApiKeyFieldsIn = {
  name: z.string().min(1).max(100),
  description: z.string().max(500).optional(),
  role: UiRole,
  workspaceAccess: WorkspaceAccess,
  // Required by Dagu 2.15.1's API; Dagu 1's knows neither (then: REST, a service account).
  allowedSurfaces: z.array(z.string()).optional(),
  attributionClass: z.string().optional(),
  ownerUserId: z.string().max(128).optional(),
  serviceAccountName: z.string().max(100).optional(),
};
const CreateApiKey = z.object(ApiKeyFieldsIn);
const UpdateApiKey = z.object(ApiKeyFieldsIn).partial();
const Toggle = z.object({ enabled: z.boolean() });
const HmacConfigure = z.object({ authMode: z.string(), enforcementMode: z.string().optional() });
const ProfileSelection = z.object({ allowedProfiles: z.array(z.string()).max(100) });

export interface ManagementContext {
  readonly management: StandaloneManagement;
  readonly profile: DaguApiProfile;
  /** Whether Dagu knows the DAG (createDAGWebhook answers 404 otherwise, as Dagu does); undefined: cannot tell. */
  readonly dagExists: (fileName: string) => Promise<boolean | undefined>;
  /** The document in force once a change is published. */
  readonly snapshot: () => CredentialSnapshot;
}

/** Answers one of Dagu's management writes; refusals in Dagu's words and status codes. */
export async function handleManagementWrite(call: LocalCall, ctx: ManagementContext): Promise<LocalOutcome> {
  try {
    return await dispatch(call, ctx);
  } catch (error) {
    if (!(error instanceof HttpError) || error.status >= 500) throw error;
    sendError(call.res, error.status, error.code, error.message, error.status === 429 ? { "Retry-After": "1" } : {});
    return { detail: error.code };
  }
}

async function dispatch(call: LocalCall, ctx: ManagementContext): Promise<LocalOutcome> {
  const { management: m, profile } = ctx;
  const { res, params } = call;
  const actor: Actor = { id: call.principal?.id ?? "", ...(call.principal?.user ? { userId: call.principal.user.id } : {}) };
  // Nothing is read or parsed before it is known that changes can be kept.
  if (m.unavailable) throw new HttpError(403, "forbidden", m.unavailable);
  const user = (id: string) => userJson(profile, credentialUser(m.records().users[id]!));
  const webhook = (record: StoredWebhook) => webhookJson(profile, credentialWebhook(record), ctx.snapshot());
  const dag = params.fileName ?? "";
  switch (call.operationId) {
    case "createUser": {
      const body = await parse(call, CreateUser);
      allWorkspaces(body.workspaceAccess);
      const created = await m.createUser({ username: body.username, password: body.password, role: roleOf(profile, body.role) });
      return done(res, 201, { user: user(created.id) }, "user_created");
    }
    case "updateUser": {
      const body = await parse(call, UpdateUser);
      allWorkspaces(body.workspaceAccess);
      const updated = await m.updateUser(params.userId ?? "", {
        ...(body.username ? { username: body.username } : {}),
        ...(body.role !== undefined ? { role: roleOf(profile, body.role) } : {}),
        ...(body.isDisabled !== undefined ? { disabled: body.isDisabled } : {}),
      }, actor);
      return done(res, 200, { user: user(updated.id) }, "user_updated");
    }
    case "deleteUser":
      await m.deleteUser(params.userId ?? "", actor);
      return done(res, 204, undefined, "user_deleted");
    case "resetUserPassword": {
      const body = await parse(call, ResetPassword);
      await m.resetPassword(params.userId ?? "", body.newPassword);
      return done(res, 200, { message: "Password reset successfully" }, "password_reset");
    }
    case "createAPIKey": {
      const body = await parse(call, CreateApiKey);
      const { record, key } = await m.createApiKey(apiKeyFields(profile, body), actor);
      return done(res, 201, { apiKey: apiKeyJson(profile, credentialApiKey(record), ctx.snapshot()), key }, "api_key_created");
    }
    case "updateAPIKey": {
      const body = await parse(call, UpdateApiKey);
      const record = await m.updateApiKey(params.keyId ?? "", apiKeyPatch(profile, body));
      return done(res, 200, { apiKey: apiKeyJson(profile, credentialApiKey(record), ctx.snapshot()) }, "api_key_updated");
    }
    case "deleteAPIKey":
      await m.deleteApiKey(params.keyId ?? "");
      return done(res, 204, undefined, "api_key_deleted");
    case "createDAGWebhook": {
      if ((await ctx.dagExists(dag)) === false) throw new HttpError(404, "not_found", `DAG ${dag} not found`);
      const { record, token } = await m.createWebhook(dag, actor);
      return done(res, 201, { webhook: webhook(record), token }, "webhook_created");
    }
    case "deleteDAGWebhook":
      await m.deleteWebhook(dag);
      return done(res, 204, undefined, "webhook_deleted");
    case "regenerateDAGWebhookToken": {
      const { record, token } = await m.regenerateWebhookToken(dag);
      return done(res, 200, { webhook: webhook(record), token }, "webhook_token_regenerated");
    }
    case "toggleDAGWebhook": {
      const body = await parse(call, Toggle);
      return done(res, 200, webhook(await m.toggleWebhook(dag, body.enabled)), body.enabled ? "webhook_enabled" : "webhook_disabled");
    }
    case "configureDAGWebhookProfileSelection": {
      const body = await parse(call, ProfileSelection);
      // The trigger refuses X-Dagu-Profile (runtime profiles are not modelled): only "no selection" is kept.
      if (body.allowedProfiles.length > 0) throw new HttpError(400, "bad_request", "runtime profile selection for webhook callers is not supported by dagu-auth: allowedProfiles must be empty");
      const current = Object.values(m.records().webhooks).find((w) => w.dagName === dag);
      if (!current) throw new HttpError(404, "not_found", `no webhook configured for DAG ${dag}`);
      return done(res, 200, webhook(current), "webhook_profile_selection");
    }
    case "enableDAGWebhookHMAC": {
      const body = await parse(call, HmacConfigure);
      const { record, secret } = await m.enableWebhookHmac(dag, hmacMode(body.authMode), enforcementOf(body.enforcementMode));
      return done(res, 200, { webhook: webhook(record), hmacSecret: secret }, "webhook_hmac_enabled");
    }
    case "configureDAGWebhookHMAC": {
      const body = await parse(call, HmacConfigure);
      return done(res, 200, webhook(await m.configureWebhookHmac(dag, hmacMode(body.authMode), enforcementOf(body.enforcementMode))), "webhook_hmac_configured");
    }
    case "regenerateDAGWebhookHMACSecret": {
      const { record, secret } = await m.regenerateWebhookHmac(dag);
      return done(res, 200, { webhook: webhook(record), hmacSecret: secret }, "webhook_hmac_regenerated");
    }
    case "disableDAGWebhookHMAC":
      return done(res, 200, webhook(await m.disableWebhookHmac(dag)), "webhook_hmac_disabled");
    default:
      throw new Error(`no management handler for ${call.operationId}`);
  }
}

/** Sends Dagu's answer; `detail` (a code, for the audit line) says what changed. */
function done(res: ServerResponse, status: number, body: unknown, detail: string): LocalOutcome {
  if (body === undefined) {
    res.writeHead(status, { "Cache-Control": "no-store" });
    res.end();
  } else sendJson(res, status, body);
  return { detail };
}

async function parse<T>(call: LocalCall, schema: z.ZodType<T>): Promise<T> {
  const parsed = schema.safeParse(parseJsonBody(await readBody(call.req, BODY_LIMIT)));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HttpError(400, "bad_request", `Invalid request body${issue ? `: ${issue.path.join(".") || "body"}: ${issue.message}` : ""}`);
  }
  return parsed.data;
}

/** A role as the UI sends it; Dagu 1's UI calls our developer (DAG write and run) manager. */
function roleOf(profile: DaguApiProfile, role: string): Role {
  const mapped = profile.daguMajor < 2 && role === "manager" ? "developer" : role;
  if (!(ROLES as readonly string[]).includes(mapped) || (profile.daguMajor < 2 && role === "developer")) throw new HttpError(400, "bad_request", "Invalid role");
  return mapped as Role;
}

function allWorkspaces(access: z.infer<typeof WorkspaceAccess>): void {
  if (access && !access.all) {
    throw new HttpError(400, "bad_request", "workspaceAccess: grants per workspace are not enforced by dagu-auth; use all: true");
  }
}

function apiKeyFields(profile: DaguApiProfile, body: z.infer<typeof CreateApiKey>) {
  allWorkspaces(body.workspaceAccess);
  return {
    name: body.name,
    ...(body.description ? { description: body.description } : {}),
    role: roleOf(profile, body.role),
    allowedSurfaces: body.allowedSurfaces === undefined && profile.daguMajor < 2 ? ["rest_api" as const] : surfacesOf(body.allowedSurfaces),
    attributionClass: body.attributionClass === undefined && profile.daguMajor < 2 ? ("service_account" as const) : attributionOf(body.attributionClass),
    ...(body.ownerUserId !== undefined ? { ownerUserId: body.ownerUserId } : {}),
    ...(body.serviceAccountName !== undefined ? { serviceAccountName: body.serviceAccountName } : {}),
  };
}

function apiKeyPatch(profile: DaguApiProfile, body: z.infer<typeof UpdateApiKey>) {
  allWorkspaces(body.workspaceAccess);
  return {
    ...(body.name !== undefined ? { name: body.name } : {}),
    ...(body.description !== undefined ? { description: body.description } : {}),
    ...(body.role !== undefined ? { role: roleOf(profile, body.role) } : {}),
    ...(body.allowedSurfaces !== undefined ? { allowedSurfaces: surfacesOf(body.allowedSurfaces) } : {}),
    ...(body.attributionClass !== undefined ? { attributionClass: attributionOf(body.attributionClass) } : {}),
    ...(body.ownerUserId !== undefined ? { ownerUserId: body.ownerUserId } : {}),
    ...(body.serviceAccountName !== undefined ? { serviceAccountName: body.serviceAccountName } : {}),
  };
}

function surfacesOf(values: string[] | undefined): (typeof API_KEY_SURFACES)[number][] {
  if (values === undefined || values.length === 0) throw new HttpError(400, "bad_request", "Invalid API key surface");
  const known = values.filter((v): v is (typeof API_KEY_SURFACES)[number] => (API_KEY_SURFACES as readonly string[]).includes(v));
  if (known.length !== values.length) throw new HttpError(400, "bad_request", "Invalid API key surface");
  return [...new Set(known)];
}

function attributionOf(value: string | undefined): (typeof API_KEY_ATTRIBUTIONS)[number] {
  if (value === undefined || !(API_KEY_ATTRIBUTIONS as readonly string[]).includes(value)) throw new HttpError(400, "bad_request", "Invalid API key attribution");
  return value as (typeof API_KEY_ATTRIBUTIONS)[number];
}

function hmacMode(authMode: string): "tokenAndHmac" | "hmac" {
  if (authMode === "token_and_hmac") return "tokenAndHmac";
  if (authMode === "hmac_only") return "hmac";
  throw new HttpError(400, "bad_request", "invalid webhook auth mode");
}

function enforcementOf(value: string | undefined): "strict" | "observe" | undefined {
  if (value === undefined || value === "strict" || value === "observe") return value;
  throw new HttpError(400, "bad_request", "invalid webhook HMAC enforcement mode");
}
