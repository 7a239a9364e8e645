// parseBasic() on hostile Authorization values (issue 12.2: every credential of 64 KiB).
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseBasic } from "../../src/sidecar/auth/basic-auth.ts";

const b64 = (s: string) => Buffer.from(s).toString("base64");

test("a Basic credential is parsed; another scheme is not Basic; broken ones are malformed", () => {
  assert.deepEqual(parseBasic(`Basic ${b64("ann:pw:with:colons")}`), { username: "ann", password: "pw:with:colons" });
  assert.deepEqual(parseBasic(`basic   ${b64("ann:pw")}  `), { username: "ann", password: "pw" });
  assert.equal(parseBasic("Bearer abc"), undefined);
  assert.equal(parseBasic("Basicx"), undefined);
  for (const bad of ["Basic !!!", `Basic ${b64("no-colon")}`, `Basic ${b64(":empty-user")}`, `Basic ${b64("a:b\u0000")}`, "Basic abc"]) assert.equal(parseBasic(bad), "malformed", bad);
});

test("64 KiB values are judged in one pass: spaces before a line break are malformed, not a backtracking regex", () => {
  // `^Basic +(.*)$` spent ~9 s on this (quadratic backtracking), and then called it "not Basic".
  assert.equal(parseBasic(`Basic ${" ".repeat(64 * 1024)}\n`), "malformed");
  assert.equal(parseBasic(`Basic ${"A".repeat(64 * 1024)}!`), "malformed");
  const long = parseBasic(`Basic ${b64(`${"u".repeat(48 * 1024)}:p`)}`);
  assert.ok(typeof long === "object" && long.username.length === 48 * 1024, "parsed; the authenticator refuses it for its length");
});
