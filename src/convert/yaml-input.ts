// Reading Dagu's config file for `dagu-auth convert`: YAML as Dagu reads it (a number or boolean where a
// string is expected is taken as the text written; anchors, aliases and `<<` merge keys resolved), empty
// values as unset, and parse errors that point at a line without quoting it (the line may hold a password).
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document } from "yaml";

export interface DaguConfigDocument {
  /** The document as plain data (`key:` and `~` are null). */
  value: unknown;
  /** Paths of scalars written as a YAML number or boolean, with what they were. */
  nonStrings: { path: string[]; type: "number" | "boolean" }[];
}

/** Parses the text of a Dagu config file (or of a bare `auth:` block); throws naming line and column. */
export function parseDaguConfigYaml(text: string, label: string): DaguConfigDocument {
  const doc = parseDocument(text, { uniqueKeys: true }); // its messages quote the line: only code and position are used
  const error = doc.errors[0];
  if (error) {
    const at = error.linePos?.[0];
    const where = at ? ` at line ${at.line}, column ${at.col}` : "";
    throw new Error(`${label} is not valid YAML${where} (${error.code})`);
  }
  const reader = new PlainReader(doc, label);
  const value = reader.read(doc.contents, []);
  return { value, nonStrings: reader.nonStrings };
}

class PlainReader {
  readonly nonStrings: DaguConfigDocument["nonStrings"] = [];
  readonly #doc: Document;
  readonly #label: string;
  #depth = 0;

  constructor(doc: Document, label: string) {
    this.#doc = doc;
    this.#label = label;
  }

  read(node: unknown, path: string[]): unknown {
    if (node === null || node === undefined) return null;
    if (++this.#depth > 64) throw new Error(`${this.#label}: nested too deeply (or an alias refers to itself)`);
    try {
      return this.#read(node, path);
    } finally {
      this.#depth--;
    }
  }

  #read(node: unknown, path: string[]): unknown {
    if (isAlias(node)) return this.read(node.resolve(this.#doc), path);
    if (isScalar(node)) {
      const v = node.value;
      if (v === null || v === undefined) return null;
      if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") {
        this.nonStrings.push({ path, type: typeof v === "boolean" ? "boolean" : "number" });
        return node.source ?? String(v);
      }
      return v;
    }
    if (isSeq(node)) return node.items.map((item, i) => this.read(item, [...path, String(i)]));
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      const merged: Record<string, unknown>[] = [];
      for (const pair of node.items) {
        const keyNode = isAlias(pair.key) ? pair.key.resolve(this.#doc) : pair.key;
        if (!isScalar(keyNode)) throw new Error(`${this.#label}: a key under ${path.join(".") || "the top level"} is not a plain value`);
        const key = String(keyNode.value);
        if (key === "<<") {
          const source = this.read(pair.value, path);
          for (const m of Array.isArray(source) ? source : [source]) if (isRecord(m)) merged.push(m);
          continue;
        }
        out[key] = this.read(pair.value, [...path, key]);
      }
      // `<<: *base` fills in only the keys not written explicitly; of several merged maps, the first wins.
      for (const m of merged) for (const [k, v] of Object.entries(m)) if (!(k in out)) out[k] = v;
      return out;
    }
    throw new Error(`${this.#label}: unsupported YAML node at ${path.join(".") || "the top level"}`);
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
