// The getConfig() rewrite on Dagu's pages (Dagu 1.30.3's page as it renders with auth off, and the
// shape Dagu 2's page has with setupRequired and oidcEnabled).
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { test } from "node:test";
import { decodeBody, isHtml, rewriteGetConfig } from "../../src/sidecar/ui/config-rewrite.ts";

const DAGU1_PAGE = `<!DOCTYPE html>
<html lang="en">
  <head>
    <title>Dagu</title>
    <script>
      function getConfig() {
        return {
          apiURL: "/api/v2",
          basePath: "",
          version: "1.30.3",
          remoteNodes: "",
          authMode: "none",
          permissions: {
            writeDags: "true" === "true",
            runDags: "true" === "true",
          },
        };
      }
    </script>
    <script defer="defer" src="/assets/bundle.js?v=1.30.3"></script>
  </head>
  <body><div id="root"></div><p>authMode: "none" in the body stays</p></body>
</html>`;

const DAGU2_PAGE = `<script>
  function getConfig() {
    return {
      apiURL: "/api/v1",
      authMode: "none",
      setupRequired: "true" === "true",
      oidcEnabled: "false" === "true",
      oidcButtonLabel: "Login with SSO",
      permissions: { writeDags: "true" === "true", runDags: "true" === "true" },
    };
  }
</script>`;

test("Dagu 1's page runs the UI in builtin mode; nothing else changes", () => {
  const out = rewriteGetConfig(DAGU1_PAGE, { authMode: "builtin" })!;
  assert.match(out, /authMode: "builtin",/);
  assert.equal(out.replace('authMode: "builtin"', 'authMode: "none"'), DAGU1_PAGE);
  assert.match(out, /<p>authMode: "none" in the body stays<\/p>/);
});

test("basic mode is passed on as basic", () => {
  assert.match(rewriteGetConfig(DAGU1_PAGE, { authMode: "basic" })!, /authMode: "basic",/);
});

test("Dagu 2's page: setup not required, OIDC off, permissions as Dagu serves them", () => {
  const out = rewriteGetConfig(DAGU2_PAGE, { authMode: "builtin" })!;
  assert.match(out, /authMode: "builtin",/);
  assert.match(out, /setupRequired: false,/);
  assert.match(out, /oidcEnabled: false,/);
  assert.match(out, /permissions: \{ writeDags: "true" === "true"/);
});

test("a page without authMode gets one; a page without getConfig is left alone", () => {
  const out = rewriteGetConfig("<script>function getConfig() {\n return {\n apiURL: \"/x\" };\n}</script>", { authMode: "builtin" })!;
  assert.match(out, /return \{\n\s+authMode: "builtin",/);
  assert.equal(rewriteGetConfig("<html>no config</html>", { authMode: "builtin" }), undefined);
});

test("compressed pages are decoded before the rewrite; unknown encodings are not touched", () => {
  const gz = gzipSync(Buffer.from(DAGU1_PAGE));
  assert.equal(decodeBody(gz, "gzip")!.toString(), DAGU1_PAGE);
  assert.equal(decodeBody(Buffer.from("x"), "zstd"), undefined);
  assert.equal(decodeBody(Buffer.from("not gzip"), "gzip"), undefined);
  assert.equal(isHtml("text/html; charset=utf-8"), true);
  assert.equal(isHtml("application/json"), false);
});

/** Dagu v2.15.1's page from the end of getConfig(): its license object as the template renders it (community). */
const DAGU2_LICENSE_PAGE = `<script>
  function getConfig() {
    return {
      apiURL: "/api/v1",
      basePath: "",
      authMode: "none",
      license: {
        valid: "false" === "true",
        plan: "",
        expiry: "",
        features: (() => { try { return JSON.parse('[]'); } catch { return []; } })(),
        gracePeriod: "false" === "true",
        graceEndsAt: "",
        community: "true" === "true",
        source: "",
        warningCode: "",
        error: "",
      },
      paths: {
        dagsDir: "/dags",
      },
    };
  }
</script>
<script defer="defer" src="/assets/bundle.js?v=2.15.1"></script>`;

/** getConfig() as the browser would evaluate it. */
function configOf(html: string): Record<string, unknown> {
  const script = /<script>([\s\S]*?function getConfig[\s\S]*?)<\/script>/.exec(html)![1]!;
  return new Function(`${script}; return getConfig();`)() as Record<string, unknown>;
}

test("Dagu 2's license: what the sidecar gives (roles and SSO, valid, no community limit); the rest of the page stays", () => {
  const out = rewriteGetConfig(DAGU2_LICENSE_PAGE, { authMode: "builtin" })!;
  const config = configOf(out);
  assert.deepEqual(config.license, { valid: true, plan: "dagu-auth", expiry: "", features: ["rbac", "sso"], gracePeriod: false, graceEndsAt: "", community: true, source: "dagu-auth", warningCode: "", error: "" });
  assert.deepEqual(config.paths, { dagsDir: "/dags" });
  assert.equal(config.authMode, "builtin");
  assert.doesNotMatch(out, /data-dagu-auth|MutationObserver/, "no notice script where management works");
  // A page without a license object (Dagu 1) gets none.
  assert.equal(configOf(rewriteGetConfig(DAGU1_PAGE, { authMode: "builtin" })!).license, undefined);
});

test("managed in the cluster: one notice script after getConfig(), in its own element, before the bundle", () => {
  const out = rewriteGetConfig(DAGU2_LICENSE_PAGE, { authMode: "builtin", managedInCluster: true })!;
  assert.equal(out.match(/<script>/g)!.length, 2);
  assert.ok(out.indexOf("MutationObserver") > out.indexOf("function getConfig"));
  assert.ok(out.indexOf("MutationObserver") < out.indexOf("bundle.js"));
  assert.match(out, /kubectl get/);
  // It parses as JavaScript.
  const notice = /<script>(\(function \(\) \{[\s\S]*?)<\/script>/.exec(out)![1]!;
  assert.doesNotThrow(() => new Function(notice));
});
