// Dagu's role mapping for SSO logins, in Dagu's order: role_attribute_path (jq, first output, a role
// name in any case), then group_mappings over the groups claim (the highest mapped role wins), then
// default_role, or no role at all under role_attribute_strict. With neither an expression nor group
// mappings the mapping is "not configured": new users get the default role and existing users keep theirs.
import type { Role } from "../../../api/common.ts";
import type { OidcSettings } from "../../../api/oidc.ts";
import type { Jq } from "../../../common/jq.ts";
import { isRole, roleAtLeast } from "../../routes/roles.ts";
import { groupsOf, type Claims, type Refusal } from "./claims.ts";

export type MappedRole =
  /** Neither roleAttributePath nor groupMappings is set. */
  | { readonly kind: "unconfigured" }
  | { readonly kind: "role"; readonly role: Role; readonly source: "expression" | "groups" | "default" }
  /** roleAttributeStrict and no rule matched. */
  | { readonly kind: "none" };

export interface MappingDiagnostics {
  /** Why the expression gave no role (for the log: never a claim value). */
  expression?: "no_output" | "not_a_role" | "error" | "compile" | "timeout";
}

export async function mapRole(settings: OidcSettings["roleMapping"], claims: Claims, jq: Jq, diagnostics: MappingDiagnostics = {}): Promise<{ ok: true; mapped: MappedRole } | Refusal> {
  const mappings = Object.entries(settings.groupMappings);
  const expression = settings.roleAttributePath;
  if (!expression && mappings.length === 0) return { ok: true, mapped: { kind: "unconfigured" } };

  if (expression) {
    const outcome = await jq.first(expression, claims);
    if (outcome.ok) {
      const role = typeof outcome.output === "string" ? outcome.output.toLowerCase() : "";
      if (isRole(role)) return { ok: true, mapped: { kind: "role", role, source: "expression" } };
      diagnostics.expression = "not_a_role";
    } else diagnostics.expression = outcome.reason;
  }

  if (mappings.length > 0) {
    const groups = groupsOf(claims, settings.groupsClaim);
    if (!groups.ok) return groups;
    const member = new Set(groups.groups);
    let best: Role | undefined;
    for (const [group, role] of mappings) if (member.has(group) && (!best || roleAtLeast(role, best))) best = role;
    if (best) return { ok: true, mapped: { kind: "role", role: best, source: "groups" } };
  }
  if (settings.roleAttributeStrict) return { ok: true, mapped: { kind: "none" } };
  return { ok: true, mapped: { kind: "role", role: settings.defaultRole, source: "default" } };
}
