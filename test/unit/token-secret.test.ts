// The one derivation of the token signing key (src/common/token-secret.ts): a secret of 32 bytes or more
// is its own key, as it always was (tokens issued before stay valid); a shorter one, such as Dagu's own
// example, gives HKDF-SHA256's 32 bytes, checked here against RFC 5869's steps written out with HMAC.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { test } from "node:test";
import fc from "fast-check";
import { TOKEN_KEY_HKDF_INFO, isShortTokenSecret, shortTokenSecretWarning, tokenSigningKey } from "../../src/common/token-secret.ts";

/** RFC 5869 with SHA-256, no salt (a zero-filled block), one output block. */
function rfc5869(ikm: Buffer, info: string): Buffer {
  const prk = createHmac("sha256", Buffer.alloc(32)).update(ikm).digest();
  return createHmac("sha256", prk).update(Buffer.concat([Buffer.from(info), Buffer.from([1])])).digest();
}

test("a secret of 32 bytes or more is the key itself, byte for byte", () => {
  for (const secret of ["s".repeat(32), "a-long-enough-secret-of-forty-characters", "ü".repeat(16)]) {
    assert.deepEqual(tokenSigningKey(secret), Buffer.from(secret, "utf8"));
    assert.equal(isShortTokenSecret(secret), false);
  }
});

test("a short secret (the page's example) gives HKDF-SHA256's 256-bit key", () => {
  const secret = "your-secure-random-secret";
  assert.equal(isShortTokenSecret(secret), true);
  const key = tokenSigningKey(secret);
  assert.equal(key.length, 32);
  assert.deepEqual(key, rfc5869(Buffer.from(secret), TOKEN_KEY_HKDF_INFO));
  assert.equal(TOKEN_KEY_HKDF_INFO, "dagu-auth token signing key v1", "changing it would change every derived key");
  assert.deepEqual(tokenSigningKey("s".repeat(31)), rfc5869(Buffer.from("s".repeat(31)), TOKEN_KEY_HKDF_INFO));
  assert.throws(() => tokenSigningKey(""), /empty/);
  assert.equal(isShortTokenSecret(""), false, "empty is no secret at all");
});

test("property: the derivation is a function of the secret, different secrets give different keys", () => {
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 31 }), fc.string({ minLength: 1, maxLength: 31 }), (a, b) => {
      fc.pre(Buffer.byteLength(a) < 32 && Buffer.byteLength(b) < 32);
      assert.deepEqual(tokenSigningKey(a), tokenSigningKey(a));
      assert.equal(tokenSigningKey(a).equals(tokenSigningKey(b)), a === b);
    }),
  );
});

test("the warning names where the secret came from and never shows it", () => {
  const w = shortTokenSecretWarning("DAGU_AUTH_TOKEN_SECRET");
  assert.match(w, /^DAGU_AUTH_TOKEN_SECRET is shorter than 32 bytes: accepted/);
  assert.ok(!w.includes("your-secure-random-secret"));
});
