// The one duration syntax of the project: Go's (what Dagu reads `token.ttl` with, time.ParseDuration),
// without a sign and at most Dagu's one-year cap (8760h, its limit on the token TTL). The same rules
// serve the CRDs (an OpenAPI pattern and a CEL rule, see common.ts `duration()`), the sidecar's
// `--config` and `dagu-auth convert`: the parser below is Go's, reimplemented from its documented
// behaviour, and DURATION_PATTERN accepts exactly the texts it does not refuse for their syntax.

/** Why a text is not a duration: its syntax (the pattern refuses it too), or its length (the pattern accepts it). */
export type DurationErrorKind = "syntax" | "range";

export class DurationError extends Error {
  readonly kind: DurationErrorKind;

  constructor(kind: DurationErrorKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * Go's syntax without a minus: `0`, or one or more of a decimal number (`1`, `1.5`, `.5`, `1.`) and a
 * unit (ns, us, µs, μs, ms, s, m, h), e.g. `24h`, `1h30m`, `1.5h`, `24h0m0s`, `1500ms`; an optional `+`.
 * Written without backslashes and quotes, so it goes into a CEL string literal unchanged.
 */
export const DURATION_PATTERN = /^[+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$/;

/** Dagu refuses a token TTL above this ("must not exceed 8760h (365 days)"); every duration here keeps to it. */
export const MAX_DURATION = "8760h";
export const MAX_DURATION_NS = 8760n * 3_600_000_000_000n;
/** Longest text a duration field holds (the CRD's maxLength): ample for any real value. */
export const MAX_DURATION_LENGTH = 32;

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
const INT64_LIMIT = 1n << 63n;
/** Go's grammar with either sign: an overflow in a text of this shape is a "range" error. */
const GO_SYNTAX = /^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$/;
const isDigit = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";

/**
 * Go's time.ParseDuration: nanoseconds, signed, with Go's rounding of fractions (through float64), its
 * overflow limit and its messages. Throws DurationError (kind "syntax", or "range" on overflow).
 */
export function parseGoDuration(text: string): bigint {
  const invalid = () => new DurationError("syntax", `invalid duration ${JSON.stringify(text)}`);
  // Go gives up at the first overflow; whether the text was otherwise well-formed decides the kind.
  const overflow = () => new DurationError(GO_SYNTAX.test(text) ? "range" : "syntax", `invalid duration ${JSON.stringify(text)}`);
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
      if (whole > INT64_LIMIT / 10n) throw overflow();
      whole = whole * 10n + BigInt(s[i]!);
      if (whole > INT64_LIMIT) throw overflow();
    }
    const before = i > 0;
    s = s.slice(i);
    // (\.[0-9]*)? : digits that would overflow are skipped, as in Go.
    let fraction = 0n;
    let scale = 1;
    let after = false;
    if (s.startsWith(".")) {
      s = s.slice(1);
      let stop = false;
      let j = 0;
      for (; j < s.length && isDigit(s[j]); j++) {
        if (stop) continue;
        const next = fraction * 10n + BigInt(s[j]!);
        if (fraction > (INT64_LIMIT - 1n) / 10n || next > INT64_LIMIT) {
          stop = true;
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
    if (k === 0) throw new DurationError("syntax", `missing unit in duration ${JSON.stringify(text)}`);
    const name = s.slice(0, k);
    s = s.slice(k);
    const unit = UNITS[name];
    if (unit === undefined) throw new DurationError("syntax", `unknown unit ${JSON.stringify(name)} in duration ${JSON.stringify(text)}`);
    if (whole > INT64_LIMIT / unit) throw overflow();
    let value = whole * unit;
    if (fraction > 0n) {
      // Go: v += uint64(float64(f) * (float64(unit) / scale)), nanosecond-accurate for fractions of hours.
      value += BigInt(Math.trunc(Number(fraction) * (Number(unit) / scale)));
      if (value > INT64_LIMIT) throw overflow();
    }
    total += value;
    if (total > INT64_LIMIT) throw overflow();
  }
  if (negative) return -total;
  if (total > INT64_LIMIT - 1n) throw overflow();
  return total;
}

/**
 * A duration as this project reads it: Go's syntax, not negative, at most MAX_DURATION; nanoseconds.
 * Throws DurationError naming the text and what is wrong with it.
 */
export function parseDurationNs(text: string): bigint {
  if (text.startsWith("-")) throw new DurationError("syntax", `invalid duration ${JSON.stringify(text)}: must not be negative`);
  let ns: bigint;
  try {
    ns = parseGoDuration(text);
  } catch (error) {
    if (!(error instanceof DurationError)) throw error;
    const hint = error.kind === "syntax" ? ": expected a Go duration such as 24h, 90m, 1h30m, 1.5h or 45s" : `: at most ${MAX_DURATION}`;
    throw new DurationError(error.kind, `${error.message}${hint}`);
  }
  if (ns > MAX_DURATION_NS) throw new DurationError("range", `duration ${JSON.stringify(text)} is too long: at most ${MAX_DURATION} (365 days, Dagu's limit)`);
  return ns;
}

/** parseDurationNs in whole milliseconds (a fraction of a millisecond is dropped). */
export function parseDuration(text: string): number {
  return Number(parseDurationNs(text) / 1_000_000n);
}

/** parseDurationNs in whole seconds (token lifetimes and login windows are counted in seconds). */
export function durationSeconds(text: string): number {
  return Number(parseDurationNs(text) / 1_000_000_000n);
}

/** True when `text` is a duration parseDurationNs accepts. */
export function isDuration(text: string): boolean {
  try {
    parseDurationNs(text);
    return true;
  } catch {
    return false;
  }
}
