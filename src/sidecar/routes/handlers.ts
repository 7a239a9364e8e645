// The route table is the only authority for what the sidecar does with an admitted request: each route
// names its handler (src/dagu/routes.ts RouteHandler). This is the check, made when the sidecar starts,
// that every route of both tables has one, so a gap refuses the start instead of becoming a 501 later.
import type { DaguRoute } from "../../dagu/routes.ts";

/** What the sidecar can answer itself (the auth API and the management writes). */
export interface LocalAnswers {
  answers(route: Pick<DaguRoute, "operationId" | "handler">): boolean;
}

/** Every route whose handler is missing or contradicts the route, in words; empty when all is well. */
export function handlerProblems(routes: readonly DaguRoute[], local: LocalAnswers): string[] {
  const problems: string[] = [];
  for (const route of routes) {
    const at = `${route.method} ${route.path} (${route.operationId})`;
    switch (route.handler) {
      case "forward":
        // Fail closed: what the sidecar is meant to answer must never reach Dagu, which runs with auth off.
        if (route.access === "sidecar") problems.push(`${at} is answered by the sidecar but its handler forwards it to Dagu`);
        break;
      case "auth-api":
        if (!local.answers(route)) problems.push(`${at}: the auth API has no handler for it`);
        break;
      case "managed":
        if (!route.managedBy) problems.push(`${at}: a managed route names no resource (managedBy)`);
        if (!local.answers(route)) problems.push(`${at}: the management writes have no handler for it`);
        break;
      case "webhook":
        if (route.method !== "POST" || !route.path.endsWith("/{fileName}") || route.unauthenticated !== true) {
          problems.push(`${at}: the webhook trigger takes an unauthenticated POST .../{fileName}`);
        }
        break;
      default:
        problems.push(`${at}: unknown handler ${JSON.stringify(route.handler satisfies never)}`);
    }
  }
  return problems;
}
