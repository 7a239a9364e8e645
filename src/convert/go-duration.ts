// Go's time.ParseDuration (what Dagu reads `token.ttl` with), reimplemented from Go's documented
// behaviour, and the step from a Go duration to the schema's duration format (`24h0m0s` -> `24h`).
import { formatDuration } from "../api/common.ts";

const UNITS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  "µs": 1_000n, // U+00B5 MICRO SIGN
  "μs": 1_000n, // U+03BC GREEK SMALL LETTER MU
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const MAX = 1n << 63n;
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

/**
 * Parses a Go duration (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`) into nanoseconds, with Go's
 * rounding of fractions (through float64) and its overflow limits; throws with Go's message.
 */
export function parseGoDuration(text: string): bigint {
  const invalid = () => new Error(`invalid duration ${JSON.stringify(text)}`);
  let s = text;
  let negative = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    negative = s.startsWith("-");
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") throw invalid();
  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) throw invalid();
    // [0-9]*
    let i = 0;
    let whole = 0n;
    for (; i < s.length && isDigit(s[i]); i++) {
      if (whole > MAX / 10n) throw invalid();
      whole = whole * 10n + BigInt(s[i]!);
      if (whole > MAX) throw invalid();
    }
    const before = i > 0;
    s = s.slice(i);
    // (\.[0-9]*)? : digits that would overflow are skipped, as in Go.
    let fraction = 0n;
    let scale = 1;
    let after = false;
    if (s.startsWith(".")) {
      s = s.slice(1);
      let overflow = false;
      let j = 0;
      for (; j < s.length && isDigit(s[j]); j++) {
        if (overflow) continue;
        if (fraction > (MAX - 1n) / 10n) {
          overflow = true;
          continue;
        }
        const next = fraction * 10n + BigInt(s[j]!);
        if (next > MAX) {
          overflow = true;
          continue;
        }
        fraction = next;
        scale *= 10;
      }
      after = j > 0;
      s = s.slice(j);
    }
    if (!before && !after) throw invalid();
    // The unit: everything up to the next number.
    let k = 0;
    while (k < s.length && s[k] !== "." && !isDigit(s[k])) k++;
    if (k === 0) throw new Error(`missing unit in duration ${JSON.stringify(text)}`);
    const name = s.slice(0, k);
    s = s.slice(k);
    const unit = UNITS[name];
    if (unit === undefined) throw new Error(`unknown unit ${JSON.stringify(name)} in duration ${JSON.stringify(text)}`);
    if (whole > MAX / unit) throw invalid();
    let value = whole * unit;
    if (fraction > 0n) {
      // Go: v += uint64(float64(f) * (float64(unit) / scale)), nanosecond-accurate for fractions of hours.
      value += BigInt(Math.trunc(Number(fraction) * (Number(unit) / scale)));
      if (value > MAX) throw invalid();
    }
    total += value;
    if (total > MAX) throw invalid();
  }
  if (negative) return -total;
  if (total > MAX - 1n) throw invalid();
  return total;
}

/**
 * A Go duration as the schema's duration (whole hours, minutes and seconds: `1h30m`); throws when it
 * is not a valid Go duration, negative, not a whole number of seconds, or beyond the schema's range.
 */
export function goDurationToSchema(text: string): string {
  const ns = parseGoDuration(text);
  if (ns < 0n) throw new Error(`${JSON.stringify(text)} is negative`);
  if (ns % 1_000_000_000n !== 0n) throw new Error(`${JSON.stringify(text)} is not a whole number of seconds`);
  const ms = ns / 1_000_000n;
  if (ms >= 1_000_000n * 3_600_000n) throw new Error(`${JSON.stringify(text)} is too long: at most 999999h`);
  return formatDuration(Number(ms));
}
