// A DaguAuth's spec.remoteNodes, resolved for the credentials document and the sidecar's Role: which
// Secret holds the key each node's requests carry (a DaguApiKey's consumer Secret, or one of the user's
// own) and which holds its CA. The keys themselves never enter the document: the sidecar reads those
// Secrets through its watch, so a rotated key is sent within about a second (ADR 0012).
import type { CredentialRemoteNode, DaguAuthSpec } from "../api/index.ts";
import type { KubeObject } from "../common/kube/client.ts";
import { API_KEY_SECRET_KEY } from "./dagu-api-key-reconciler.ts";
import type { ReadyState } from "./conditions.ts";
import type { ObjectCache, SecretReader } from "./context.ts";

export interface ResolvedRemoteNodes {
  nodes: CredentialRemoteNode[];
  /** Secrets the sidecar must be able to read (keys and CAs), by name. */
  secretNames: string[];
  problems: ReadyState[];
}

export async function resolveRemoteNodes(auth: KubeObject, spec: DaguAuthSpec, apiKeys: ObjectCache, secrets: SecretReader): Promise<ResolvedRemoteNodes> {
  const namespace = auth.metadata.namespace ?? "";
  const out: ResolvedRemoteNodes = { nodes: [], secretNames: [], problems: [] };
  for (const [i, node] of (spec.remoteNodes ?? []).entries()) {
    const field = `spec.remoteNodes[${i}]`;
    let token: CredentialRemoteNode["token"];
    if (node.apiKeyRef) {
      const key = apiKeys.get(namespace, node.apiKeyRef.name);
      const keySpec = key?.spec as { authRef?: { name?: string }; secretName?: string } | undefined;
      if (!key || !keySpec?.secretName) {
        out.problems.push({ ready: false, reason: "RemoteNodeKeyNotFound", message: `DaguApiKey ${node.apiKeyRef.name} (${field}.apiKeyRef, node ${node.name}) does not exist` });
        continue;
      }
      if (keySpec.authRef?.name === auth.metadata.name) {
        // Its key would be enforced by this Dagu's own sidecar, never by the remote's.
        out.problems.push({ ready: false, reason: "RemoteNodeKeyNotRemote", message: `DaguApiKey ${node.apiKeyRef.name} (${field}.apiKeyRef) belongs to this DaguAuth; it must name the remote's DaguAuth in its authRef` });
        continue;
      }
      token = { secretName: keySpec.secretName, key: API_KEY_SECRET_KEY };
    } else {
      token = { secretName: node.tokenSecretRef!.name, key: node.tokenSecretRef!.key };
    }
    const ca = node.caSecretRef ? { secretName: node.caSecretRef.name, key: node.caSecretRef.key } : undefined;
    // Present or not, the node is handed on (the sidecar answers 503 for it until the Secret is there);
    // a missing Secret is said in status.
    for (const [ref, what] of [[token, "its key"], ...(ca ? [[ca, "its CA"] as const] : [])] as const) {
      const secret = await secrets.get(namespace, ref.secretName);
      const has = (secret?.data as Record<string, string> | undefined)?.[ref.key] !== undefined;
      if (!has) out.problems.push({ ready: false, reason: "RemoteNodeSecretNotFound", message: `Secret ${ref.secretName} (${what}, node ${node.name}) ${secret ? `has no key ${ref.key}` : "does not exist yet"}` });
      out.secretNames.push(ref.secretName);
    }
    out.nodes.push({ name: node.name, url: node.url.replace(/\/+$/, ""), token, ...(ca ? { ca } : {}) });
  }
  out.secretNames = [...new Set(out.secretNames)];
  return out;
}

/** DaguAuths of `namespace` whose remote nodes name DaguApiKey `name` (to reconcile them when it changes). */
export function authsUsingApiKey(auths: ObjectCache, namespace: string, name: string): KubeObject[] {
  return auths.list(namespace).filter((a) => ((a.spec as { remoteNodes?: { apiKeyRef?: { name?: string } }[] } | undefined)?.remoteNodes ?? []).some((n) => n.apiKeyRef?.name === name));
}
