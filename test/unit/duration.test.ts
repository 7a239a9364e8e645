// The project's one duration parser (src/api/duration.ts): Go's time.ParseDuration, then no sign and
// Dagu's one-year cap; and the pattern the CRDs and CEL use, which must accept exactly the texts the
// parser does not refuse for their syntax. The expected nanoseconds and errors of the first table were
// produced by Go 1.26's time.ParseDuration itself.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { DaguAuthSpec } from "../../src/api/dagu-auth.ts";
import { DURATION_PATTERN, DurationError, durationSeconds, isDuration, parseDuration, parseDurationNs, parseGoDuration } from "../../src/api/duration.ts";

const GO: [input: string, nsOrError: string][] = [
  ["24h0m0s", "86400000000000"],
  ["1h30m", "5400000000000"],
  ["90m", "5400000000000"],
  ["3600s", "3600000000000"],
  ["1.5h", "5400000000000"],
  ["0.5m", "30000000000"],
  ["1h0m0.5s", "3600500000000"],
  ["1500ms", "1500000000"],
  ["2562047h", "9223369200000000000"],
  ["2562048h", 'invalid duration "2562048h"'],
  ["-1h", "-3600000000000"],
  ["+2h", "7200000000000"],
  ["0", "0"],
  ["-0", "0"],
  ["0s", "0"],
  ["", 'invalid duration ""'],
  ["h", 'invalid duration "h"'],
  [".h", 'invalid duration ".h"'],
  ["1.h", "3600000000000"],
  [".5h", "1800000000000"],
  ["1", 'missing unit in duration "1"'],
  ["1d", 'unknown unit "d" in duration "1d"'],
  ["1h 30m", 'unknown unit "h " in duration "1h 30m"'],
  ["1hh", 'unknown unit "hh" in duration "1hh"'],
  ["1H", 'unknown unit "H" in duration "1H"'],
  ["1h1h", "7200000000000"],
  ["1e3s", 'unknown unit "e" in duration "1e3s"'],
  ["100000000000000000000ns", 'invalid duration "100000000000000000000ns"'],
  ["60000000us", "60000000000"],
  ["60000µs", "60000000"],
  ["60000μs", "60000000"],
  ["1m0.000000001s", "60000000001"],
  ["0.3333333333333333333h", "1200000000000"], // Go's float64 rounding, not the exact 1199999999999
  ["1.0000000000000000000000001s", "1000000000"],
  ["9223372036854775807ns", "9223372036854775807"],
  ["9223372036854775808ns", 'invalid duration "9223372036854775808ns"'],
  ["00001m", "60000000000"],
];

test("parseGoDuration agrees with Go's time.ParseDuration", () => {
  for (const [input, expected] of GO) {
    if (/^-?\d+$/.test(expected)) assert.equal(parseGoDuration(input), BigInt(expected), input);
    else assert.throws(() => parseGoDuration(input), { message: expected }, input);
  }
});

test("the project's durations: Go's syntax without a sign, at most 8760h", () => {
  const accepted: [string, number][] = [
    ["24h", 86_400_000],
    ["24h0m0s", 86_400_000],
    ["1.5h", 5_400_000],
    ["90m", 5_400_000],
    ["1500ms", 1_500],
    ["+2h", 7_200_000],
    ["0", 0],
    ["8760h", 8760 * 3_600_000],
    ["525600m", 8760 * 3_600_000],
  ];
  for (const [text, ms] of accepted) assert.equal(parseDuration(text), ms, text);
  assert.equal(durationSeconds("1m30.9s"), 90, "whole seconds, the fraction dropped");
  const refused: [string, DurationError["kind"], RegExp][] = [
    ["-1h", "syntax", /must not be negative/],
    ["-0", "syntax", /must not be negative/],
    ["1d", "syntax", /unknown unit "d".*expected a Go duration such as 24h/],
    ["", "syntax", /invalid duration ""/],
    ["24", "syntax", /missing unit/],
    ["8760h1ns", "range", /too long: at most 8760h \(365 days, Dagu's limit\)/],
    ["9999h", "range", /too long/],
    ["2562048h", "range", /invalid duration "2562048h": at most 8760h/],
    ["99999999999999999999x", "syntax", /invalid duration/],
  ];
  for (const [text, kind, message] of refused) {
    assert.throws(() => parseDurationNs(text), (e: unknown) => e instanceof DurationError && e.kind === kind && message.test(e.message), text);
    assert.equal(isDuration(text), false, text);
  }
});

test("the CRD's duration fields take the same durations, with the field named", () => {
  assert.equal(DaguAuthSpec.parse({ builtin: { token: { ttl: "1.5h" } } }).builtin?.token.ttl, "1.5h");
  assert.equal(DaguAuthSpec.parse({ builtin: { token: { ttl: "24h0m0s" } } }).builtin?.token.ttl, "24h0m0s");
  const issues = (value: unknown) => {
    const r = DaguAuthSpec.safeParse({ builtin: { token: { ttl: value } } });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  assert.deepEqual(issues("9000h"), ["builtin.token.ttl: must be at most 8760h (365 days, Dagu's limit)"]);
  assert.deepEqual(issues("30s"), ["builtin.token.ttl: spec.builtin.token.ttl must be at least 1m"]);
  assert.match(issues("1d").join(), /^builtin\.token\.ttl: /);
  assert.match(issues("-1h").join(), /^builtin\.token\.ttl: /);
});

/** Texts near the grammar: digits, dots, signs, unit letters (both micro signs), spaces. */
const nearDuration = fc
  .array(fc.constantFrom("0", "1", "5", "9", "12", ".", "+", "-", "h", "m", "s", "ms", "us", "µs", "μs", "ns", "d", "H", " ", "e", "8760", "99999999999"), { maxLength: 8 })
  .map((parts) => parts.join(""));

test("property: the pattern (CRD, CEL) accepts exactly what the parser does not refuse for its syntax", () => {
  fc.assert(
    fc.property(fc.oneof(nearDuration, fc.string({ maxLength: 12 })), (text) => {
      let kind: "ok" | DurationError["kind"] = "ok";
      try {
        parseDurationNs(text);
      } catch (error) {
        assert.ok(error instanceof DurationError, `${JSON.stringify(text)}: ${String(error)}`);
        kind = error.kind;
      }
      assert.equal(DURATION_PATTERN.test(text), kind !== "syntax", JSON.stringify(text));
      if (kind === "ok") assert.ok(parseDurationNs(text) <= 8760n * 3_600_000_000_000n);
    }),
    { numRuns: 5000 },
  );
});

test("property: a sum of parts parses to the sum, in any order, units repeated", () => {
  const unit = fc.constantFrom(["h", 3_600_000_000_000n], ["m", 60_000_000_000n], ["s", 1_000_000_000n], ["ms", 1_000_000n]);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 500 }), unit), { minLength: 1, maxLength: 4 }), (parts) => {
      const text = parts.map(([n, [u]]) => `${n}${u}`).join("");
      const ns = parts.reduce((sum, [n, [, size]]) => sum + BigInt(n) * size, 0n);
      assert.equal(parseDurationNs(text), ns);
      assert.equal(parseGoDuration(text), ns);
    }),
  );
});
