// The standalone sidecar's source of credentials (Dagu's auth: configuration, the DAGU_AUTH_* variables,
// --state-dir), on the page's own examples.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { tokenSigningKey } from "../../src/common/token-secret.ts";
import { DaguConfigCredentialSource } from "../../src/sidecar/sources/dagu-config-source.ts";

/** The environment-variable example of Dagu's Authentication page. */
const PAGE_ENV = {
  DAGU_AUTH_MODE: "builtin",
  DAGU_AUTH_TOKEN_SECRET: "your-secure-random-secret",
  DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "admin",
  DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "your-secure-password",
};

describe("a short token secret", () => {
  test("is taken, the key derived as the operator derives it, and one warning names the variable", async () => {
    const warnings: string[] = [];
    const source = new DaguConfigCredentialSource({ env: PAGE_ENV, trustedProxies: [], warn: (m) => warnings.push(m) });
    await source.start();
    try {
      const token = source.current()!.token!;
      assert.equal(token.keys[0]!.secret, tokenSigningKey("your-secure-random-secret").toString("base64url"));
      assert.deepEqual(warnings.length, 1);
      assert.match(warnings[0]!, /^DAGU_AUTH_TOKEN_SECRET is shorter than 32 bytes: accepted/);
      assert.ok(!warnings[0]!.includes("your-secure-random-secret"));
    } finally {
      await source.stop();
    }
  });

  test("a long secret is the key itself, as it always was", async () => {
    const secret = "x".repeat(40);
    const warnings: string[] = [];
    const source = new DaguConfigCredentialSource({ env: { ...PAGE_ENV, DAGU_AUTH_TOKEN_SECRET: secret }, trustedProxies: [], warn: (m) => warnings.push(m) });
    await source.start();
    try {
      assert.equal(source.current()!.token!.keys[0]!.secret, Buffer.from(secret).toString("base64url"));
      assert.deepEqual(warnings, []);
    } finally {
      await source.stop();
    }
  });
});
