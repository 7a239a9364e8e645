// The reconcilers' Writer over the API server: server-side apply under the operator's field manager, and
// create and conditional update (resourceVersion) where a write must not overwrite a newer one, still
// recorded under that field manager.
import { isNotFound, resourcePath, type KubeClient, type KubeObject } from "../../common/kube/client.ts";
import type { Writer } from "../context.ts";
import { Applier, FIELD_MANAGER } from "../runtime/apply.ts";

export function kubeWriter(client: KubeClient): Writer {
  const applier = new Applier(client);
  return {
    apply: (obj) => applier.applyObject(obj),
    applyStatus: async (obj) => {
      await applier.applyStatus(obj);
    },
    create: async (obj) => client.request<KubeObject>("POST", await collectionPath(client, obj), { body: obj, query: { fieldManager: FIELD_MANAGER } }),
    update: async (obj) =>
      client.request<KubeObject>("PUT", `${await collectionPath(client, obj)}/${encodeURIComponent(obj.metadata.name!)}`, { body: obj, query: { fieldManager: FIELD_MANAGER } }),
    get: async (apiVersion, kind, namespace, name) => {
      try {
        return await client.request<KubeObject>("GET", `${await collectionPath(client, { apiVersion, kind, metadata: { namespace } })}/${encodeURIComponent(name)}`);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },
    delete: async (apiVersion, kind, namespace, name, options) => {
      await applier.deleteIfExists({ apiVersion, kind, namespace, name }, options?.uid ? { uid: options.uid } : {});
    },
  };
}

async function collectionPath(client: KubeClient, obj: Pick<KubeObject, "apiVersion" | "kind"> & { metadata: { namespace?: string } }): Promise<string> {
  const r = await client.resolve(obj.apiVersion!, obj.kind!);
  return resourcePath(r, r.namespaced ? { namespace: obj.metadata.namespace! } : {});
}
