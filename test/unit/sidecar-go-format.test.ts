// Go's encoding/json.Marshal and strconv.Quote, as Dagu applies them to a webhook payload. The expected
// strings were produced by Go 1.26 itself (json.Unmarshal into map[string]interface{}, json.Marshal,
// strconv.Quote) and are kept here as a JSON array so that no character is lost in the file.
import assert from "node:assert/strict";
import { test } from "node:test";
import { goJsonMarshal, goQuote } from "../../src/dagu/go-format.ts";

const GO_OUTPUT = JSON.parse(String.raw`["{\"Z\":{\"k\":\"\\\"q\\\\\"},\"a\":\"x \\u003cy\\u003e \\u0026 z\",\"b\":2,\"c\":[1,2.5,1e+21,1e-7,-0,true,null],\"\u00fc\":\"\u00e9\\u2028\\u0007\\t\"}", "\"{\\\"Z\\\":{\\\"k\\\":\\\"\\\\\\\"q\\\\\\\\\\\"},\\\"a\\\":\\\"x \\\\u003cy\\\\u003e \\\\u0026 z\\\",\\\"b\\\":2,\\\"c\\\":[1,2.5,1e+21,1e-7,-0,true,null],\\\"\u00fc\\\":\\\"\u00e9\\\\u2028\\\\u0007\\\\t\\\"}\"", "{\"ctrl\":\"\\u0001\\b\\f\",\"del\":\"\u007f\",\"emoji\":\"\ud83d\ude00\",\"nbsp\":\"a\u00a0b\",\"zw\":\"a\u200bb\"}", "\"{\\\"ctrl\\\":\\\"\\\\u0001\\\\b\\\\f\\\",\\\"del\\\":\\\"\\x7f\\\",\\\"emoji\\\":\\\"\ud83d\ude00\\\",\\\"nbsp\\\":\\\"a\\u00a0b\\\",\\\"zw\\\":\\\"a\\u200bb\\\"}\"", "{\"big\":12345678901234567000,\"int\":100,\"neg\":-1.5e-10}", "\"{\\\"big\\\":12345678901234567000,\\\"int\\\":100,\\\"neg\\\":-1.5e-10}\"", "\"h\u00e9llo \\\"w\\\"\\\\\"", "\"a\\u200bb\"", "\"\\x7f\\x01\\a\\v\"", "\"\ud83d\ude00\\u00a0\\u2028\"", "\"{}\""]`) as string[];

const INPUTS = [
  String.raw`{"b":2,"a":"x <y> & z","c":[1,2.5,1e21,1e-7,-0,true,null],"ü":"é\u2028\u0007\t","Z":{"k":"\"q\\"}}`,
  String.raw`{"emoji":"😀","zw":"a\u200bb","nbsp":"a\u00a0b","del":"\u007f","ctrl":"\u0001\b\f"}`,
  String.raw`{"big":12345678901234567890,"neg":-1.5e-10,"int":100}`,
];

test("json.Marshal of decoded JSON: sorted keys, HTML and line-separator escapes, Go numbers", () => {
  INPUTS.forEach((input, i) => {
    const marshalled = goJsonMarshal(JSON.parse(input));
    assert.equal(marshalled, GO_OUTPUT[i * 2], `input ${i}`);
    assert.equal(goQuote(marshalled), GO_OUTPUT[i * 2 + 1], `quote of input ${i}`);
  });
});

test("strconv.Quote of plain strings", () => {
  const strings = ['héllo "w"\\', "a\u200bb", "\x7f\x01\x07\x0b", "😀\u00a0\u2028", "{}"];
  strings.forEach((s, i) => assert.equal(goQuote(s), GO_OUTPUT[6 + i], JSON.stringify(s)));
});

test("object keys sort by UTF-8 bytes, not UTF-16 units", () => {
  // U+FF5E (3 UTF-8 bytes, EF BD 9E) sorts before U+1F600 (F0 ...) in Go; in UTF-16 it is the other way.
  assert.equal(goJsonMarshal({ "😀": 1, "～": 2 }), '{"～":2,"😀":1}');
});

test("lone surrogates become U+FFFD like Go's invalid UTF-8 handling", () => {
  assert.equal(goJsonMarshal(JSON.parse('"a\\ud800b"')), '"a\ufffdb"');
});
