// zod schemas -> apiextensions.k8s.io/v1 CustomResourceDefinitions.
// zod's own JSON Schema export does the walking; this file turns its output into a structural
// schema the apiserver accepts and refuses anything that would not be one.
import YAML from "yaml";
import { z } from "zod";
import { GROUP, VERSION } from "./common.ts";
import { KINDS, type KindInfo } from "./kinds.ts";

/** A node of an OpenAPI v3 schema as the apiserver reads it (JSONSchemaProps). */
export type SchemaProps = { [key: string]: unknown };

export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: "Namespaced";
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: KindInfo["printerColumns"];
      schema: { openAPIV3Schema: SchemaProps };
    }[];
  };
}

/** Keywords zod emits that a structural schema cannot carry. */
const NOT_STRUCTURAL = ["anyOf", "oneOf", "allOf", "not", "const", "$ref", "$defs", "definitions", "nullable"];
/** Keywords copied as they are (everything else is an error, so nothing slips through unnoticed). */
const PASS_THROUGH = new Set([
  "description", "type", "format", "enum", "default", "pattern", "minLength", "maxLength",
  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "maxProperties",
  "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
]);
/** Output order: what a reader wants first. */
const KEY_ORDER = [
  "description", "type", "format", "enum", "default", "pattern", "minLength", "maxLength", "minimum",
  "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems", "maxProperties", "required", "properties",
  "items", "additionalProperties", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
  "x-kubernetes-validations",
];

/**
 * The shape of an RFC 3339 timestamp, in place of zod's date-time regex (which RE2 cannot compile):
 * the apiserver's own date-time format also takes forms zod refuses (e.g. `+0100`), and the operator
 * parses specs with zod, so both must refuse the same values.
 */
export const RFC3339_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$";

/** zod adds these bounds to every z.int(); they only say "a JavaScript-safe integer". */
const SAFE_INT_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);

/** The structural OpenAPI v3 schema of a zod schema, in the form a CRD accepts. */
export function toStructuralSchema(schema: z.ZodType, path = "<root>"): SchemaProps {
  // io "input": fields with a default are optional for the user, who may omit them.
  // openapi-3.0: boolean exclusiveMinimum/Maximum, as the apiserver expects.
  const json = z.toJSONSchema(schema, { io: "input", target: "openapi-3.0", unrepresentable: "throw" });
  return structural(json as SchemaProps, path);
}

function structural(node: SchemaProps, path: string): SchemaProps {
  const out: SchemaProps = {};
  for (const [key, value] of Object.entries(node)) {
    if (NOT_STRUCTURAL.includes(key)) throw new Error(`${path}: "${key}" has no structural equivalent`);
    if (key === "$schema") continue;
    if (key === "properties") {
      const props = value as Record<string, SchemaProps>;
      out[key] = Object.fromEntries(
        Object.entries(props).map(([name, prop]) => {
          const child = structural(prop, `${path}.${name}`);
          if (typeof child["description"] !== "string") throw new Error(`${path}.${name}: no description`);
          return [name, child];
        }),
      );
    } else if (key === "items" || key === "additionalProperties") {
      // additionalProperties: false is how zod says "no other keys"; the apiserver prunes them anyway.
      if (value === false) continue;
      out[key] = structural(value as SchemaProps, `${path}[]`);
    } else if (key === "required") {
      out[key] = value;
    } else if ((key === "minimum" || key === "maximum") && SAFE_INT_BOUNDS.has(value as number)) {
      continue;
    } else if (key === "pattern" && node["format"] === "date-time") {
      out[key] = RFC3339_PATTERN;
    } else if (key === "pattern") {
      out[key] = (value as string).replaceAll("\\/", "/"); // RegExp.source escapes "/"; RE2 needs no escape
    } else if (PASS_THROUGH.has(key)) {
      out[key] = value;
    } else {
      throw new Error(`${path}: unexpected JSON Schema keyword "${key}"`);
    }
  }
  if (typeof out["type"] !== "string") throw new Error(`${path}: every node needs a type`);
  return ordered(out);
}

function ordered(node: SchemaProps): SchemaProps {
  const rank = (k: string) => (KEY_ORDER.includes(k) ? KEY_ORDER.indexOf(k) : KEY_ORDER.length);
  return Object.fromEntries(Object.entries(node).sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)));
}

/** The CRD of one kind: spec and status from zod, the envelope from Kubernetes' conventions. */
export function buildCrd(info: KindInfo): CustomResourceDefinition {
  const { spec, status } = info.schema.shape;
  const openAPIV3Schema: SchemaProps = {
    description: info.schema.description ?? info.kind,
    type: "object",
    required: ["spec"],
    properties: {
      apiVersion: {
        description: "APIVersion defines the versioned schema of this representation of an object.",
        type: "string",
      },
      kind: { description: "Kind is a string value representing the REST resource this object represents.", type: "string" },
      metadata: { type: "object" },
      spec: toStructuralSchema(spec, "spec"),
      status: toStructuralSchema(status, "status"),
    },
    ...(info.objectRules ? { "x-kubernetes-validations": info.objectRules } : {}),
  };
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${info.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": "dagu-auth-operator" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: info.kind,
        listKind: info.listKind,
        plural: info.plural,
        singular: info.singular,
        shortNames: info.shortNames,
        categories: info.categories,
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: info.printerColumns,
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

export const CRD_HEADER = "# generated by npm run generate; do not edit\n";

/** Every CRD file as it belongs in crds/: file name -> content. */
export function renderCrdFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const info of KINDS) {
    const crd = buildCrd(info);
    // lineWidth 0: no folding, so a long CEL rule or description stays on one greppable line.
    files.set(`${crd.metadata.name}.yaml`, CRD_HEADER + YAML.stringify(crd, { lineWidth: 0 }));
  }
  return files;
}
