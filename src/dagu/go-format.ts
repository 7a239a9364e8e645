// The two Go formatting functions Dagu applies to a webhook payload before handing it to a run as
// `WEBHOOK_PAYLOAD=<quoted>`: encoding/json's Marshal of a decoded JSON value (object keys sorted
// byte-wise, `<`, `>`, `&`, U+2028 and U+2029 escaped) and strconv.Quote. Reimplemented from Go's
// documented behaviour, so a DAG sees the same parameter string behind the sidecar as without it.

/** encoding/json.Marshal of a value produced by JSON.parse. */
export function goJsonMarshal(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new Error("json: unsupported value: non-finite number");
      // Go prints -0 as "-0"; otherwise both use the shortest round-trip form with the same exponent
      // thresholds (1e21, 1e-6) and the same cleaned exponent ("1e-7", "1e+21").
      return Object.is(value, -0) ? "-0" : String(value);
    case "string":
      return goJsonString(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(goJsonMarshal).join(",")}]`;
      const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      return `{${entries.map(([k, v]) => `${goJsonString(k)}:${goJsonMarshal(v)}`).join(",")}}`;
    }
    default:
      throw new Error(`json: unsupported type: ${typeof value}`);
  }
}

const hex4 = (code: number) => code.toString(16).padStart(4, "0");

function goJsonString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = s.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        out += s[i]! + s[i + 1]!;
        i++;
      } else {
        out += "\ufffd"; // Go replaces invalid UTF-8 (a lone surrogate) with U+FFFD
      }
      continue;
    }
    switch (c) {
      case 0x22:
        out += '\\"';
        break;
      case 0x5c:
        out += "\\\\";
        break;
      case 0x08:
        out += "\\b";
        break;
      case 0x0c:
        out += "\\f";
        break;
      case 0x0a:
        out += "\\n";
        break;
      case 0x0d:
        out += "\\r";
        break;
      case 0x09:
        out += "\\t";
        break;
      case 0x3c:
      case 0x3e:
      case 0x26:
      case 0x2028:
      case 0x2029:
        out += `\\u${hex4(c)}`;
        break;
      default:
        out += c < 0x20 ? `\\u${hex4(c)}` : s[i]!;
    }
  }
  return `${out}"`;
}

// unicode.IsPrint: categories L, M, N, P, S and the ASCII space.
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** strconv.Quote: a double-quoted Go string literal, printable runes kept as they are. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (PRINTABLE.test(ch)) out += ch;
    else if (code === 0x07) out += "\\a";
    else if (code === 0x08) out += "\\b";
    else if (code === 0x0c) out += "\\f";
    else if (code === 0x0a) out += "\\n";
    else if (code === 0x0d) out += "\\r";
    else if (code === 0x09) out += "\\t";
    else if (code === 0x0b) out += "\\v";
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code >= 0xd800 && code <= 0xdfff) out += "\\ufffd";
    else if (code < 0x10000) out += `\\u${hex4(code)}`;
    else out += `\\U${code.toString(16).padStart(8, "0")}`;
  }
  return `${out}"`;
}
