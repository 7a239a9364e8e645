// The authorization table of Dagu v2.15.1's HTTP API under `/api/v1`: one entry per OpenAPI operation
// of `api/v1/api.yaml`, plus the few routes Dagu's router registers outside the OpenAPI document (SSE,
// WebSocket). The sidecar refuses any request that matches no entry. How each role was derived, and
// every non-obvious decision, is in docs/route-permissions.md; test/unit/route-table-conformance.test.ts
// compares this table with the v2.15.1 tag's OpenAPI document and router (from Dagu's source clone).
//
// Dagu runs behind the sidecar with `auth.mode: none`, so Dagu itself checks nothing: the role here is
// the whole check. Where Dagu's handler has an explicit role check, the role is that check; where it has
// none, reads need `viewer` and mutations the least role of the facts table.
import type { Role } from "../api/common.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * - `public`: Dagu serves it without credentials and the sidecar proxies it unauthenticated.
 * - `sidecar`: the sidecar answers it itself and never forwards it to Dagu. Whether credentials are
 *   needed is told by `unauthenticated` (login, setup and the webhook trigger need none; the webhook
 *   trigger carries its own token/HMAC).
 */
export type RouteAccess = "public" | "sidecar";

/**
 * What the sidecar does with an admitted request: the route table is the only authority for it, and
 * the sidecar checks at start that each handler exists (src/sidecar/routes/handlers.ts).
 * - `forward`: to Dagu;
 * - `auth-api`: answered from the credentials (login, me, setup, change-password, the listings);
 * - `managed`: a write to what a resource manages (`managedBy`): a standalone sidecar with management makes
 *   it, everywhere else 403 names the resource to apply;
 * - `webhook`: the webhook trigger (its own token/HMAC, then the run is enqueued in Dagu).
 */
export type RouteHandler = "forward" | "auth-api" | "managed" | "webhook";
export type ManagedKind = "DaguUser" | "DaguApiKey" | "DaguWebhook";

export interface DaguRoute {
  readonly method: HttpMethod;
  /** The OpenAPI template relative to `/api/v1`, e.g. `/dags/{fileName}/start`. */
  readonly path: string;
  readonly operationId: string;
  /** The least role that may call it (ignored for unauthenticated routes). */
  readonly minRole: Role;
  readonly access?: RouteAccess;
  readonly handler: RouteHandler;
  /** The resource that manages what a `managed` route would change. */
  readonly managedBy?: ManagedKind;
  /** No user credential is needed to reach this route (`access: "public"` implies it). */
  readonly unauthenticated?: true;
  /** A long-lived stream: always authenticated, never cached, never buffered. */
  readonly streaming?: "sse" | "websocket";
  /** `router`: registered by Dagu's router outside the OpenAPI document (the conformance test skips it). */
  readonly origin?: "router";
  /**
   * Path parameters whose value may contain `/`, sent percent-encoded as `%2F` (openapi-fetch in Dagu's
   * UI encodes path parameters with encodeURIComponent). Everywhere else an encoded slash is refused.
   */
  readonly slashParams?: readonly string[];
}

export type RouteOptions = Partial<Pick<DaguRoute, "access" | "unauthenticated" | "streaming" | "origin" | "slashParams" | "handler" | "managedBy">>;

/** One table entry; without a handler it is forwarded to Dagu. */
export function route(method: HttpMethod, path: string, operationId: string, minRole: Role, options: RouteOptions = {}): DaguRoute {
  return Object.freeze({ method, path, operationId, minRole, handler: "forward", ...options });
}
const r = route;

/** Answered by the sidecar from the credentials. */
export const SIDECAR = { access: "sidecar", handler: "auth-api" } as const;
export const SIDECAR_UNAUTHENTICATED = { access: "sidecar", unauthenticated: true, handler: "auth-api" } as const;
export const WEBHOOK_TRIGGER = { access: "sidecar", unauthenticated: true, handler: "webhook" } as const;
/** Writes to what DaguUser, DaguApiKey and DaguWebhook resources manage. */
export const MANAGED_USERS = { access: "sidecar", handler: "managed", managedBy: "DaguUser" } as const;
export const MANAGED_API_KEYS = { access: "sidecar", handler: "managed", managedBy: "DaguApiKey" } as const;
export const MANAGED_WEBHOOKS = { access: "sidecar", handler: "managed", managedBy: "DaguWebhook" } as const;
/** Dagu 2's webhook writes: Dagu's own routes (its table entry is not the sidecar's), managed by DaguWebhook here. */
const WEBHOOK_WRITE = { handler: "managed", managedBy: "DaguWebhook" } as const;
/** Sync item IDs are file paths without extension; nested documents contain `/`. */
const SYNC_ITEM = { slashParams: ["itemId"] } as const;

export const DAGU_ROUTES: readonly DaguRoute[] = Object.freeze([
  // --- system, auth -------------------------------------------------------------------------------
  r("GET", "/health", "getHealthStatus", "viewer", { access: "public" }),
  // Dagu answers 401 without credentials (it is not in its public path list).
  r("GET", "/openapi.json", "getOpenapiJson", "viewer"),
  // Public in Dagu; the sidecar answers it (users come from the credentials document).
  r("POST", "/auth/setup", "setup", "viewer", SIDECAR_UNAUTHENTICATED),
  r("POST", "/auth/login", "login", "viewer", SIDECAR_UNAUTHENTICATED),
  r("GET", "/auth/me", "getCurrentUser", "viewer", SIDECAR),
  r("POST", "/auth/change-password", "changePassword", "viewer", SIDECAR),

  // --- users, API keys: Dagu requireAdmin; answered by the sidecar from the credentials document ----
  r("GET", "/users", "listUsers", "admin", SIDECAR),
  r("POST", "/users", "createUser", "admin", MANAGED_USERS),
  r("GET", "/users/{userId}", "getUser", "admin", SIDECAR),
  r("PATCH", "/users/{userId}", "updateUser", "admin", MANAGED_USERS),
  r("DELETE", "/users/{userId}", "deleteUser", "admin", MANAGED_USERS),
  r("POST", "/users/{userId}/reset-password", "resetUserPassword", "admin", MANAGED_USERS),
  r("GET", "/api-keys", "listAPIKeys", "admin", SIDECAR),
  r("POST", "/api-keys", "createAPIKey", "admin", MANAGED_API_KEYS),
  r("GET", "/api-keys/{keyId}", "getAPIKey", "admin", SIDECAR),
  r("PATCH", "/api-keys/{keyId}", "updateAPIKey", "admin", MANAGED_API_KEYS),
  r("DELETE", "/api-keys/{keyId}", "deleteAPIKey", "admin", MANAGED_API_KEYS),

  // Worker and scheduler status: "Developer, manager, or admin only" (facts table: developer).
  r("GET", "/workers", "getWorkers", "developer"),

  // --- DAG definitions ------------------------------------------------------------------------------
  r("GET", "/dags", "listDAGs", "viewer"),
  r("POST", "/dags", "createNewDAG", "developer"),
  // Dagu has no role check here, but it parses an arbitrary submitted spec and only the DAG editor
  // (a developer feature) calls it: developer, stricter than Dagu.
  r("POST", "/dags/validate", "validateDAGSpec", "developer"),
  r("GET", "/dags/{fileName}", "getDAGDetails", "viewer"),
  r("DELETE", "/dags/{fileName}", "deleteDAG", "developer"),
  r("POST", "/dags/{fileName}/start", "executeDAG", "operator"),
  r("POST", "/dags/{fileName}/start-sync", "executeDAGSync", "operator"),
  r("POST", "/dags/{fileName}/enqueue", "enqueueDAGDAGRun", "operator"),
  r("GET", "/dags/{fileName}/dag-runs", "getDAGDAGRunHistory", "viewer"),
  r("GET", "/dags/{fileName}/dag-runs/{dagRunId}", "getDAGDAGRunDetails", "viewer"),
  r("GET", "/dags/{fileName}/spec", "getDAGSpec", "viewer"),
  r("PUT", "/dags/{fileName}/spec", "updateDAGSpec", "developer"),
  // Dagu: requireExecute (operator), the facts table lists suspend under operator.
  r("POST", "/dags/{fileName}/suspend", "updateDAGSuspensionState", "operator"),
  r("POST", "/dags/{fileName}/rename", "renameDAG", "developer"),
  r("POST", "/dags/{fileName}/stop-all", "stopAllDAGRuns", "operator"),
  r("GET", "/dags/search", "searchDAGs", "viewer"),
  r("GET", "/search/dags", "searchDAGFeed", "viewer"),
  r("GET", "/search/wiki", "searchWikiPageFeed", "viewer"),
  r("GET", "/search/dags/{fileName}/matches", "searchDagMatches", "viewer"),
  r("GET", "/search/wiki/matches", "searchWikiPageMatches", "viewer"),
  r("GET", "/dags/labels", "getAllDAGLabels", "viewer"),
  r("GET", "/dags/tags", "getAllDAGTags", "viewer"),

  // --- DAG-runs -------------------------------------------------------------------------------------
  r("GET", "/dag-runs", "listDAGRuns", "viewer"),
  // An inline YAML spec is arbitrary code (GHSA-6qr9-g2xw-cw92): developer, as Dagu's DAG-write check.
  r("POST", "/dag-runs", "executeDAGRunFromSpec", "developer"),
  r("POST", "/dag-runs/enqueue", "enqueueDAGRunFromSpec", "developer"),
  r("GET", "/dag-runs/{name}", "listDAGRunsByName", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}", "getDAGRunDetails", "viewer"),
  r("DELETE", "/dag-runs/{name}/{dagRunId}", "deleteDAGRun", "developer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/spec", "getDAGRunSpec", "viewer"),
  r("POST", "/dag-runs/{name}/{dagRunId}/reschedule", "rescheduleDAGRun", "operator"),
  // Edited retry runs a user-edited spec: Dagu requires DAG write (developer) for preview and run.
  r("POST", "/dag-runs/{name}/{dagRunId}/edit-retry/preview", "previewEditRetryDAGRun", "developer"),
  r("POST", "/dag-runs/{name}/{dagRunId}/edit-retry", "editRetryDAGRun", "developer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs", "getSubDAGRuns", "viewer"),
  // A GET that mutates (removes the run from its queue): operator, so never read-only (isReadOnly).
  r("GET", "/dag-runs/{name}/{dagRunId}/dequeue", "dequeueDAGRun", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/log", "getDAGRunLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/log/download", "downloadDAGRunLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/artifacts", "getDAGRunArtifacts", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/artifacts/preview", "getDAGRunArtifactPreview", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/artifacts/download", "downloadDAGRunArtifact", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/outputs", "getDAGRunOutputs", "viewer"),
  r("POST", "/dag-runs/{name}/{dagRunId}/retry", "retryDAGRun", "operator"),
  // Completing a human task is an approval with typed input: operator, like approve.
  r("POST", "/dag-runs/{name}/{dagRunId}/human-tasks/{stepId}/complete", "completeHumanTask", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/human-tasks/resume", "resumeHumanTaskDAGRun", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/stop", "terminateDAGRun", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/log", "getDAGRunStepLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/log/download", "downloadDAGRunStepLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/messages", "getDAGRunStepMessages", "viewer"),
  // Manually setting a step status: Dagu requireExecute (operator).
  r("PATCH", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/status", "updateDAGRunStepStatus", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/approve", "approveDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/reject", "rejectDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/push-back", "pushBackDAGRunStep", "operator"),
  // An agent step's question answered, or its lost session restarted (queues a clean run). Dagu checks
  // only the runDAGs permission and that the run's workspace is visible (any role); these steer a run like
  // approve and retry do: operator, stricter than Dagu (docs/route-permissions.md).
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/agent-interactions/{interactionId}/respond", "respondDAGRunStepAgentInteraction", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/agent-session/restart", "restartDAGRunStepAgentSession", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}", "getSubDAGRunDetails", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/spec", "getSubDAGRunSpec", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/log", "getSubDAGRunLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/log/download", "downloadSubDAGRunLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/artifacts", "getSubDAGRunArtifacts", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/artifacts/preview", "getSubDAGRunArtifactPreview", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/artifacts/download", "downloadSubDAGRunArtifact", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/log", "getSubDAGRunStepLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/log/download", "downloadSubDAGRunStepLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/messages", "getSubDAGRunStepMessages", "viewer"),
  r("PATCH", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/status", "updateSubDAGRunStepStatus", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/approve", "approveSubDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/reject", "rejectSubDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/push-back", "pushBackSubDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/agent-interactions/{interactionId}/respond", "respondSubDAGRunStepAgentInteraction", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/agent-session/restart", "restartSubDAGRunStepAgentSession", "operator"),

  // --- queues, services, metrics --------------------------------------------------------------------
  r("GET", "/queues", "listQueues", "viewer"),
  r("GET", "/queues/{name}", "getQueue", "viewer"),
  r("GET", "/queues/{name}/items", "listQueueItems", "viewer"),
  r("GET", "/services/resources/history", "getResourceHistory", "developer"),
  r("GET", "/services/scheduler", "getSchedulerStatus", "developer"),
  r("GET", "/services/coordinator", "getCoordinatorStatus", "developer"),
  r("GET", "/services/tunnel", "getTunnelStatus", "developer"),
  // Public in Dagu only when `metrics: public`; behind the sidecar it needs a credential.
  r("GET", "/metrics", "getMetrics", "viewer"),

  // --- webhooks -------------------------------------------------------------------------------------
  // Public in Dagu (token/HMAC of the webhook itself); Dagu with `auth.mode: none` answers 404, so the
  // sidecar verifies the webhook credential and enqueues the run itself.
  r("POST", "/webhooks/{fileName}", "triggerWebhook", "viewer", WEBHOOK_TRIGGER),
  r("GET", "/webhooks", "listWebhooks", "developer", SIDECAR),

  // --- notifications, incidents: "Developer, manager, or admin only" ---------------------------------
  r("GET", "/notification-settings", "getNotificationSettings", "developer"),
  r("PUT", "/notification-settings", "updateNotificationSettings", "developer"),
  r("GET", "/notification-routes", "listNotificationRoutes", "developer"),
  r("GET", "/notification-routes/global", "getGlobalNotificationRoutes", "developer"),
  r("PUT", "/notification-routes/global", "updateGlobalNotificationRoutes", "developer"),
  r("GET", "/notification-routes/workspaces/{workspaceName}", "getWorkspaceNotificationRoutes", "developer"),
  r("PUT", "/notification-routes/workspaces/{workspaceName}", "updateWorkspaceNotificationRoutes", "developer"),
  r("GET", "/notification-channels", "listNotificationChannels", "developer"),
  r("POST", "/notification-channels", "createNotificationChannel", "developer"),
  r("GET", "/notification-channels/{channelId}", "getNotificationChannel", "developer"),
  r("PUT", "/notification-channels/{channelId}", "updateNotificationChannel", "developer"),
  // No role stated for the delete; same as the other channel mutations.
  r("DELETE", "/notification-channels/{channelId}", "deleteNotificationChannel", "developer"),
  r("GET", "/incident-providers", "listIncidentProviders", "developer"),
  r("POST", "/incident-providers", "createIncidentProvider", "developer"),
  r("GET", "/incident-providers/{providerId}", "getIncidentProvider", "developer"),
  r("PUT", "/incident-providers/{providerId}", "updateIncidentProvider", "developer"),
  r("DELETE", "/incident-providers/{providerId}", "deleteIncidentProvider", "developer"),
  r("POST", "/incident-providers/{providerId}/test", "testIncidentProvider", "developer"),
  r("GET", "/incident-policies", "listIncidentPolicies", "developer"),
  r("GET", "/incident-policies/global", "getGlobalIncidentPolicies", "developer"),
  r("PUT", "/incident-policies/global", "updateGlobalIncidentPolicies", "developer"),
  r("GET", "/incident-policies/workspaces/{workspaceName}", "getWorkspaceIncidentPolicies", "developer"),
  r("PUT", "/incident-policies/workspaces/{workspaceName}", "updateWorkspaceIncidentPolicies", "developer"),

  // --- per-DAG webhook management: developer (facts table); reads answered by the sidecar -----------
  r("GET", "/dags/{fileName}/webhook", "getDAGWebhook", "developer", SIDECAR),
  r("POST", "/dags/{fileName}/webhook", "createDAGWebhook", "developer", WEBHOOK_WRITE),
  r("DELETE", "/dags/{fileName}/webhook", "deleteDAGWebhook", "developer", WEBHOOK_WRITE),
  r("POST", "/dags/{fileName}/webhook/regenerate", "regenerateDAGWebhookToken", "developer", WEBHOOK_WRITE),
  // "Admin only" in Dagu: which runtime profiles a caller may select (profiles can hold secrets).
  r("PUT", "/dags/{fileName}/webhook/profile-selection", "configureDAGWebhookProfileSelection", "admin", WEBHOOK_WRITE),
  r("POST", "/dags/{fileName}/webhook/toggle", "toggleDAGWebhook", "developer", WEBHOOK_WRITE),
  r("POST", "/dags/{fileName}/webhook/hmac/enable", "enableDAGWebhookHMAC", "developer", WEBHOOK_WRITE),
  r("POST", "/dags/{fileName}/webhook/hmac/configure", "configureDAGWebhookHMAC", "developer", WEBHOOK_WRITE),
  r("POST", "/dags/{fileName}/webhook/hmac/regenerate", "regenerateDAGWebhookHMACSecret", "developer", WEBHOOK_WRITE),
  r("POST", "/dags/{fileName}/webhook/hmac/disable", "disableDAGWebhookHMAC", "developer", WEBHOOK_WRITE),

  // --- per-DAG settings, notifications, incidents ---------------------------------------------------
  r("GET", "/dags/{fileName}/settings", "getDAGSettings", "viewer"),
  // Dagu: "manager or admin only; protected profiles require admin". Whether a profile is protected is
  // Dagu's data, which Dagu no longer checks with auth off: admin, failing closed.
  r("PUT", "/dags/{fileName}/settings", "updateDAGSettings", "admin"),
  r("DELETE", "/dags/{fileName}/settings", "deleteDAGSettings", "admin"),
  r("GET", "/dags/{fileName}/notifications", "getDAGNotifications", "developer"),
  r("PUT", "/dags/{fileName}/notifications", "updateDAGNotifications", "developer"),
  r("DELETE", "/dags/{fileName}/notifications", "deleteDAGNotifications", "developer"),
  r("POST", "/dags/{fileName}/notifications/test", "testDAGNotifications", "developer"),
  r("GET", "/dags/{fileName}/incidents", "getDAGIncidents", "developer"),
  r("PUT", "/dags/{fileName}/incidents", "updateDAGIncidents", "developer"),
  r("DELETE", "/dags/{fileName}/incidents", "deleteDAGIncidents", "developer"),

  // --- audit and event logs: Dagu requireManagerOrAbove ----------------------------------------------
  r("GET", "/audit", "listAuditLogs", "manager"),
  r("GET", "/event-logs", "listEventLogs", "manager"),

  // --- Git sync: Dagu requireSyncRead (any role), requireSyncWrite (DAG write), config admin ---------
  r("GET", "/sync/status", "getSyncStatus", "viewer"),
  r("POST", "/sync/pull", "syncPull", "developer"),
  r("POST", "/sync/publish-all", "syncPublishAll", "developer"),
  r("POST", "/sync/test-connection", "syncTestConnection", "admin"),
  r("GET", "/sync/config", "getSyncConfig", "viewer"),
  r("PUT", "/sync/config", "updateSyncConfig", "admin"),
  r("GET", "/sync/items/{itemId}/diff", "getSyncItemDiff", "viewer", SYNC_ITEM),
  r("POST", "/sync/items/{itemId}/publish", "publishSyncItem", "developer", SYNC_ITEM),
  r("POST", "/sync/items/{itemId}/discard", "discardSyncItemChanges", "developer", SYNC_ITEM),
  r("POST", "/sync/items/{itemId}/forget", "forgetSyncItem", "developer", SYNC_ITEM),
  r("POST", "/sync/items/{itemId}/delete", "deleteSyncItem", "developer", SYNC_ITEM),
  r("POST", "/sync/items/{itemId}/move", "moveSyncItem", "developer", SYNC_ITEM),
  r("POST", "/sync/delete-missing", "syncDeleteMissing", "developer"),
  r("POST", "/sync/delete-batch", "syncDeleteBatch", "developer"),
  r("POST", "/sync/cleanup", "syncCleanup", "developer"),

  // --- base configuration ---------------------------------------------------------------------------
  r("GET", "/settings/base-config", "getBaseConfig", "developer"),
  r("PUT", "/settings/base-config", "updateBaseConfig", "developer"),
  r("GET", "/settings/workspaces/{workspaceName}/base-config", "getWorkspaceBaseConfig", "viewer"),
  r("PUT", "/settings/workspaces/{workspaceName}/base-config", "updateWorkspaceBaseConfig", "developer"),

  // --- license --------------------------------------------------------------------------------------
  // Answered by the sidecar: what it gives every cluster (roles, SSO), not Dagu's community answer (ADR 0017).
  r("GET", "/license/status", "getLicenseStatus", "viewer", SIDECAR),
  r("POST", "/license/activate", "activateLicense", "admin"),
  r("POST", "/license/deactivate", "deactivateLicense", "admin"),

  // --- wiki: reads need only a visible workspace (viewer); writes Dagu requireDAGWriteForWorkspace ------
  r("GET", "/wiki", "listWikiPages", "viewer"),
  r("POST", "/wiki", "createWikiPage", "developer"),
  r("GET", "/wiki/search", "searchWikiPages", "viewer"),
  r("GET", "/wiki/backlinks", "listWikiPageBacklinks", "viewer"),
  r("GET", "/wiki/page", "getWikiPage", "viewer"),
  r("PATCH", "/wiki/page", "updateWikiPage", "developer"),
  r("DELETE", "/wiki/page", "deleteWikiPage", "developer"),
  r("GET", "/wiki/page/revisions", "listWikiPageRevisions", "viewer"),
  r("GET", "/wiki/page/revision", "getWikiPageRevision", "viewer"),
  r("GET", "/wiki/page/attachment", "downloadWikiPageAttachment", "viewer"),
  r("PUT", "/wiki/page/attachment", "uploadWikiPageAttachment", "developer"),
  r("POST", "/wiki/page/rename", "renameWikiPage", "developer"),
  r("POST", "/wiki/delete-batch", "deleteWikiPageBatch", "developer"),

  // --- remote nodes: Dagu requireAdmin on every handler (credentials of other Dagu servers) ----------
  r("GET", "/remote-nodes", "listRemoteNodes", "admin"),
  r("POST", "/remote-nodes", "createRemoteNode", "admin"),
  r("GET", "/remote-nodes/{remoteNodeId}", "getRemoteNode", "admin"),
  r("PATCH", "/remote-nodes/{remoteNodeId}", "updateRemoteNode", "admin"),
  r("DELETE", "/remote-nodes/{remoteNodeId}", "deleteRemoteNode", "admin"),
  r("POST", "/remote-nodes/{remoteNodeId}/test-connection", "testRemoteNodeConnection", "admin"),

  // --- runtime profiles (managed env vars and secrets): Dagu requireManagerOrAbove, admin when the
  // profile is protected. That is Dagu's data, unchecked with auth off: admin for all, failing closed --
  r("GET", "/profiles", "listRuntimeProfiles", "admin"),
  r("POST", "/profiles", "createRuntimeProfile", "admin"),
  r("GET", "/profiles/_global", "getGlobalRuntimeProfileDefaults", "admin"),
  r("PATCH", "/profiles/_global", "updateGlobalRuntimeProfileDefaults", "admin"),
  r("PUT", "/profiles/_global/variables/{key}", "setGlobalRuntimeProfileDefaultVariable", "admin"),
  r("PUT", "/profiles/_global/secrets/{key}", "setGlobalRuntimeProfileDefaultSecret", "admin"),
  r("DELETE", "/profiles/_global/entries/{key}", "deleteGlobalRuntimeProfileDefaultEntry", "admin"),
  r("GET", "/profiles/_workspaces/{workspaceName}", "getWorkspaceRuntimeProfileDefaults", "admin"),
  r("PATCH", "/profiles/_workspaces/{workspaceName}", "updateWorkspaceRuntimeProfileDefaults", "admin"),
  r("PUT", "/profiles/_workspaces/{workspaceName}/variables/{key}", "setWorkspaceRuntimeProfileDefaultVariable", "admin"),
  r("PUT", "/profiles/_workspaces/{workspaceName}/secrets/{key}", "setWorkspaceRuntimeProfileDefaultSecret", "admin"),
  r("DELETE", "/profiles/_workspaces/{workspaceName}/entries/{key}", "deleteWorkspaceRuntimeProfileDefaultEntry", "admin"),
  r("GET", "/profiles/{profileName}", "getRuntimeProfile", "admin"),
  r("PATCH", "/profiles/{profileName}", "updateRuntimeProfile", "admin"),
  r("DELETE", "/profiles/{profileName}", "deleteRuntimeProfile", "admin"),
  r("PUT", "/profiles/{profileName}/variables/{key}", "setRuntimeProfileVariable", "admin"),
  r("PUT", "/profiles/{profileName}/secrets/{key}", "setRuntimeProfileSecret", "admin"),
  r("DELETE", "/profiles/{profileName}/entries/{key}", "deleteRuntimeProfileEntry", "admin"),

  // --- saved views: list/get for everyone, writes need developer (Dagu requireDeveloperOrAbove) ------
  r("GET", "/views", "listViews", "viewer"),
  r("POST", "/views", "createView", "developer"),
  r("GET", "/views/{viewId}", "getView", "viewer"),
  r("PUT", "/views/{viewId}", "updateView", "developer"),
  r("DELETE", "/views/{viewId}", "deleteView", "developer"),

  // --- secret registry: Dagu requires CanManageAudit (manager) for every operation ------------------
  r("GET", "/secrets", "listSecrets", "manager"),
  r("POST", "/secrets", "createSecret", "manager"),
  r("GET", "/secrets/{secretId}", "getSecret", "manager"),
  r("PATCH", "/secrets/{secretId}", "updateSecret", "manager"),
  r("DELETE", "/secrets/{secretId}", "deleteSecret", "manager"),
  r("POST", "/secrets/{secretId}/versions", "writeSecretVersion", "manager"),
  r("POST", "/secrets/{secretId}/disable", "disableSecret", "manager"),
  r("POST", "/secrets/{secretId}/enable", "enableSecret", "manager"),

  // --- workspaces: reads for everyone, writes Dagu requireDeveloperOrAbove ---------------------------
  r("GET", "/workspaces", "listWorkspaces", "viewer"),
  r("POST", "/workspaces", "createWorkspace", "developer"),
  r("GET", "/workspaces/{workspaceId}", "getWorkspace", "viewer"),
  r("PATCH", "/workspaces/{workspaceId}", "updateWorkspace", "developer"),
  r("DELETE", "/workspaces/{workspaceId}", "deleteWorkspace", "developer"),

  // --- outside the OpenAPI document: registered by Dagu's router (internal/service/frontend/server.go) ---
  // SSE: Dagu authenticates them with the stream middleware (the UI sends `?token=`); every stream needs
  // a credential (CVE-2026-31882). The topics inside the multiplexed stream are reads.
  r("GET", "/events/stream", "sseMultiplexStream", "viewer", { origin: "router", streaming: "sse" }),
  r("POST", "/events/stream/topics", "sseMultiplexTopics", "viewer", { origin: "router" }),
  // A shell on the Dagu host over WebSocket: Dagu requires admin (and registers it only with builtin auth).
  r("GET", "/terminal/ws", "terminalWebSocket", "admin", { origin: "router", streaming: "websocket" }),
]);

/**
 * True for a route that only reads: a GET any viewer may call. The role is the table's own statement of
 * what a route does (reads need viewer, every mutation more; see the header), so a GET that changes state,
 * such as the dequeue, needs no flag of its own to count as a write: anything above viewer is treated as
 * one (a cross-site request to it with Basic credentials is refused, see admission.ts).
 */
export function isReadOnly(route: DaguRoute): boolean {
  return route.method === "GET" && route.minRole === "viewer";
}

/** True when no user credential is needed (public in Dagu or answered by the sidecar unauthenticated). */
export function isUnauthenticated(route: DaguRoute): boolean {
  return route.access === "public" || route.unauthenticated === true;
}
