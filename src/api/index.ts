// The auth.dagu.dev API: schemas, types, the kinds table, the credentials contract and the CRD generator.
export * from "./common.ts";
export * from "./dagu-auth.ts";
export * from "./oidc.ts";
export * from "./dagu-user.ts";
export * from "./dagu-api-key.ts";
export * from "./dagu-webhook.ts";
export * from "./credentials.ts";
export * from "./kinds.ts";
export * from "./names.ts";
export * from "./crd.ts";
