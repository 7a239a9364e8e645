// Go's time.ParseDuration as `dagu-auth convert` reimplements it (Dagu reads token.ttl with it). The
// expected nanoseconds and errors were produced by Go 1.26's time.ParseDuration itself.
import assert from "node:assert/strict";
import { test } from "node:test";
import { goDurationToSchema, parseGoDuration } from "../../src/convert/go-duration.ts";

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

test("Go durations become the schema's canonical duration", () => {
  const cases: [string, string][] = [
    ["24h0m0s", "24h"],
    ["1h30m", "1h30m"],
    ["90m", "1h30m"],
    ["3600s", "1h"],
    ["1.5h", "1h30m"],
    ["36h", "36h"],
    ["1h0m45s", "1h45s"],
    ["999999h", "999999h"],
    ["5400000ms", "1h30m"],
  ];
  for (const [go, schema] of cases) assert.equal(goDurationToSchema(go), schema, go);
});

test("what the schema cannot hold is refused with the reason", () => {
  assert.throws(() => goDurationToSchema("1d"), /unknown unit "d"/);
  assert.throws(() => goDurationToSchema("-1h"), /negative/);
  assert.throws(() => goDurationToSchema("1.5s"), /whole number of seconds/);
  assert.throws(() => goDurationToSchema("1000000h"), /too long/);
});
