// The authorization table of Dagu v1.30.3's HTTP API under `/api/v2` (module github.com/dagu-org/dagu):
// one entry per operation of its `api/v2/api.yaml` (67). Dagu v1.30.3 registers no route outside the
// OpenAPI document under `/api/v2` (no SSE, no WebSocket: its UI polls). With `auth.mode: none` it also
// serves its older, unauthenticated `/api/v1`; the sidecar refuses every `/api/...` path outside the
// active prefix, so that API is never reachable through it.
//
// Dagu 1 has four roles (admin, manager, operator, viewer) and three checks; they map onto our five:
// requireAdmin (and user, API key, webhook management) -> admin, requireWrite (manager in Dagu 1) ->
// developer, requireExecute -> operator, no check -> viewer. Two deliberate deviations, stricter than
// Dagu 1: inline specs (`POST /dag-runs`, `POST /dag-runs/enqueue`, GHSA-6qr9-g2xw-cw92) and
// `POST /dags/validate` need developer. test/unit/sidecar-routes-dagu1-conformance.test.ts derives the
// expected role of every operation from Dagu's own handlers and compares.
import type { Role } from "../api/common.ts";
import type { DaguRoute, HttpMethod } from "./routes.ts";

export const DAGU1_API_PREFIX = "/api/v2";

type Options = Pick<DaguRoute, "access" | "unauthenticated" | "streaming" | "origin" | "slashParams">;

function r(method: HttpMethod, path: string, operationId: string, minRole: Role, options: Options = {}): DaguRoute {
  return Object.freeze({ method, path, operationId, minRole, ...options });
}

const SIDECAR = { access: "sidecar" } as const;
const SIDECAR_UNAUTHENTICATED = { access: "sidecar", unauthenticated: true } as const;

export const DAGU1_ROUTES: readonly DaguRoute[] = Object.freeze([
  // --- system, auth -----------------------------------------------------------------------------
  r("GET", "/health", "getHealthStatus", "viewer", { access: "public" }),
  r("POST", "/auth/login", "login", "viewer", SIDECAR_UNAUTHENTICATED),
  r("GET", "/auth/me", "getCurrentUser", "viewer", SIDECAR),
  r("POST", "/auth/change-password", "changePassword", "viewer", SIDECAR),

  // --- users and API keys: requireAdmin; answered by the sidecar from the credentials --------------
  r("GET", "/users", "listUsers", "admin", SIDECAR),
  r("POST", "/users", "createUser", "admin", SIDECAR),
  r("GET", "/users/{userId}", "getUser", "admin", SIDECAR),
  r("DELETE", "/users/{userId}", "deleteUser", "admin", SIDECAR),
  r("PATCH", "/users/{userId}", "updateUser", "admin", SIDECAR),
  r("POST", "/users/{userId}/reset-password", "resetUserPassword", "admin", SIDECAR),
  r("GET", "/api-keys", "listAPIKeys", "admin", SIDECAR),
  r("POST", "/api-keys", "createAPIKey", "admin", SIDECAR),
  r("GET", "/api-keys/{keyId}", "getAPIKey", "admin", SIDECAR),
  r("DELETE", "/api-keys/{keyId}", "deleteAPIKey", "admin", SIDECAR),
  r("PATCH", "/api-keys/{keyId}", "updateAPIKey", "admin", SIDECAR),

  // No check in Dagu 1 (a read).
  r("GET", "/workers", "getWorkers", "viewer"),

  // --- DAG definitions --------------------------------------------------------------------------
  r("GET", "/dags", "listDAGs", "viewer"),
  r("POST", "/dags", "createNewDAG", "developer"),
  // No check in Dagu 1, but it parses an arbitrary spec and only the editor calls it: developer.
  r("POST", "/dags/validate", "validateDAGSpec", "developer"),
  r("GET", "/dags/{fileName}", "getDAGDetails", "viewer"),
  r("DELETE", "/dags/{fileName}", "deleteDAG", "developer"),
  r("POST", "/dags/{fileName}/start", "executeDAG", "operator"),
  r("POST", "/dags/{fileName}/enqueue", "enqueueDAGDAGRun", "operator"),
  r("GET", "/dags/{fileName}/dag-runs", "getDAGDAGRunHistory", "viewer"),
  r("GET", "/dags/{fileName}/dag-runs/{dagRunId}", "getDAGDAGRunDetails", "viewer"),
  r("GET", "/dags/{fileName}/spec", "getDAGSpec", "viewer"),
  r("PUT", "/dags/{fileName}/spec", "updateDAGSpec", "developer"),
  r("POST", "/dags/{fileName}/suspend", "updateDAGSuspensionState", "operator"),
  r("POST", "/dags/{fileName}/rename", "renameDAG", "developer"),
  r("POST", "/dags/{fileName}/stop-all", "stopAllDAGRuns", "operator"),
  r("GET", "/dags/search", "searchDAGs", "viewer"),
  r("GET", "/dags/tags", "getAllDAGTags", "viewer"),

  // --- DAG-runs ---------------------------------------------------------------------------------
  r("GET", "/dag-runs", "listDAGRuns", "viewer"),
  // Dagu 1 asks only requireExecute; an inline spec is arbitrary code: developer (stricter).
  r("POST", "/dag-runs", "executeDAGRunFromSpec", "developer"),
  r("POST", "/dag-runs/enqueue", "enqueueDAGRunFromSpec", "developer"),
  r("GET", "/dag-runs/{name}", "listDAGRunsByName", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}", "getDAGRunDetails", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/spec", "getDAGRunSpec", "viewer"),
  r("POST", "/dag-runs/{name}/{dagRunId}/reschedule", "rescheduleDAGRun", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs", "getSubDAGRuns", "viewer"),
  // A GET that mutates (removes the run from its queue): requireExecute, so never read-only (isReadOnly).
  r("GET", "/dag-runs/{name}/{dagRunId}/dequeue", "dequeueDAGRun", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/log", "getDAGRunLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/outputs", "getDAGRunOutputs", "viewer"),
  r("POST", "/dag-runs/{name}/{dagRunId}/retry", "retryDAGRun", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/stop", "terminateDAGRun", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/log", "getDAGRunStepLog", "viewer"),
  r("PATCH", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/status", "updateDAGRunStepStatus", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/approve", "approveDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/steps/{stepName}/reject", "rejectDAGRunStep", "operator"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}", "getSubDAGRunDetails", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/log", "getSubDAGRunLog", "viewer"),
  r("GET", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/log", "getSubDAGRunStepLog", "viewer"),
  r("PATCH", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/status", "updateSubDAGRunStepStatus", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/approve", "approveSubDAGRunStep", "operator"),
  r("POST", "/dag-runs/{name}/{dagRunId}/sub-dag-runs/{subDAGRunId}/steps/{stepName}/reject", "rejectSubDAGRunStep", "operator"),

  // --- queues, services, metrics: reads without a check in Dagu 1 --------------------------------
  r("GET", "/queues", "listQueues", "viewer"),
  r("GET", "/services/resources/history", "getResourceHistory", "viewer"),
  r("GET", "/services/scheduler", "getSchedulerStatus", "viewer"),
  r("GET", "/services/coordinator", "getCoordinatorStatus", "viewer"),
  // Public in Dagu only when `metrics: public`; behind the sidecar it needs a credential.
  r("GET", "/metrics", "getMetrics", "viewer"),

  // --- webhooks: the trigger checks its own token; management is requireAdmin in Dagu 1 ----------
  r("POST", "/webhooks/{fileName}", "triggerWebhook", "viewer", SIDECAR_UNAUTHENTICATED),
  r("GET", "/webhooks", "listWebhooks", "admin", SIDECAR),
  r("GET", "/dags/{fileName}/webhook", "getDAGWebhook", "admin", SIDECAR),
  // Webhooks are DaguWebhook resources: the sidecar refuses these with a pointer to the resource.
  r("POST", "/dags/{fileName}/webhook", "createDAGWebhook", "admin", SIDECAR),
  r("DELETE", "/dags/{fileName}/webhook", "deleteDAGWebhook", "admin", SIDECAR),
  r("POST", "/dags/{fileName}/webhook/regenerate", "regenerateDAGWebhookToken", "admin", SIDECAR),
  r("POST", "/dags/{fileName}/webhook/toggle", "toggleDAGWebhook", "admin", SIDECAR),
]);
