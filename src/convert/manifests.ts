// What a conversion writes besides the resources: the Secrets (as manifests with stringData) and the
// warnings about the Dagu keys or variables it read.

export interface Warning {
  /** The Dagu key or variable it is about. */
  key: string;
  message: string;
}

export interface SecretManifest {
  apiVersion: "v1";
  kind: "Secret";
  metadata: { name: string; namespace?: string };
  type: "Opaque";
  stringData: Record<string, string>;
}
