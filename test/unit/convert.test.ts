// `dagu-auth convert`: every key of Dagu's auth: configuration (file and DAGU_AUTH_* variables) either
// becomes part of the DaguAuth / its Secrets or gets a warning naming it; refusals name the key; the
// output parses, passes the schemas, and keeps every secret value out of resources.yaml.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parseAllDocuments } from "yaml";
import { DaguAuth } from "../../src/api/dagu-auth.ts";
import { KINDS } from "../../src/api/kinds.ts";
import { ConvertError, SecretManifestSchema, convertDaguAuthConfig, type Conversion, type ConvertOptions, type ConvertSource } from "../../src/convert/convert.ts";
import { DAGU_AUTH_KEYS } from "../../src/convert/dagu-keys.ts";
import { runConvert } from "../../src/convert/main.ts";
import { DaguConfigCredentialSource } from "../../src/sidecar/sources/dagu-config-source.ts";
import { StateDir } from "../../src/sidecar/sources/state-dir.ts";
import { renderCombined, renderResources, renderSecrets } from "../../src/convert/render.ts";
import { parseDaguConfigYaml } from "../../src/convert/yaml-input.ts";

const fixture = (name: string) => new URL(`../fixtures/convert/${name}`, import.meta.url).pathname;

async function fromFixture(name: string, env?: NodeJS.ProcessEnv, options: ConvertOptions = { name: "dagu" }): Promise<Conversion> {
  const { value, nonStrings } = parseDaguConfigYaml(await readFile(fixture(name), "utf8"), name);
  return convertDaguAuthConfig({ document: value, nonStrings, ...(env ? { env } : {}) }, options);
}

const convert = (source: ConvertSource, name = "dagu") => convertDaguAuthConfig(source, { name });
const warned = (c: Conversion) => c.warnings.map((w) => w.key);
const secretValue = (c: Conversion, name: string, key: string) => c.secrets.find((s) => s.metadata.name === name)?.stringData[key];
const spec = (c: Conversion) => c.daguAuth.spec;

/** Sets `a.b.c` in a nested object. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const parts = path.split(".");
  let node = target;
  for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Record<string, unknown>;
  node[parts.at(-1)!] = value;
  return target;
}

const ADMIN = { username: "root", password: "fixture-root-pass" };
const withAdmin = () => ({ auth: { builtin: { initial_admin: { ...ADMIN } } } });

/** Every output document parses, passes its zod schema, and resources.yaml holds no secret value. */
function assertOutputSound(c: Conversion): void {
  const resources = renderResources(c, "test");
  const secrets = renderSecrets(c, "test");
  const ours = ["DaguAuth", "DaguUser", "DaguApiKey", "DaguWebhook"];
  for (const [text, kinds] of [[resources, ours], [secrets ?? "", ["Secret"]], [renderCombined(c, "test"), [...ours, "Secret"]]] as const) {
    for (const doc of parseAllDocuments(text)) {
      assert.equal(doc.errors.length, 0, String(doc.errors[0]));
      const obj = doc.toJS() as { kind: string };
      assert.ok(kinds.includes(obj.kind as never), `unexpected kind ${obj.kind}`);
      if (obj.kind === "Secret") SecretManifestSchema.parse(obj);
      else KINDS.find((k) => k.kind === obj.kind)!.schema.parse(obj);
    }
  }
  assert.equal(parseAllDocuments(secrets ?? "").length, c.secrets.length);
  for (const s of c.secrets) {
    for (const value of Object.values(s.stringData)) {
      assert.ok(!resources.includes(value), `secret value of ${s.metadata.name} is in resources.yaml`);
      for (const w of [...c.warnings.map((x) => x.message + x.key), ...c.notes, ...c.commands]) assert.ok(!w.includes(value), "secret value in a message");
    }
  }
}

// The keys of Dagu's authentication configuration, as the reference lists them: the table of
// src/convert/dagu-keys.ts must hold exactly these.
const DAGU_KEYS = [
  "auth.mode",
  "auth.basic.username",
  "auth.basic.password",
  "auth.builtin.token.secret",
  "auth.builtin.token.ttl",
  "auth.builtin.initial_admin.username",
  "auth.builtin.initial_admin.password",
  "auth.oidc.client_id",
  "auth.oidc.client_secret",
  "auth.oidc.client_url",
  "auth.oidc.issuer",
  "auth.oidc.scopes",
  "auth.oidc.whitelist",
  "auth.oidc.allowed_domains",
  "auth.oidc.auto_signup",
  "auth.oidc.button_label",
  "auth.oidc.role_mapping.default_role",
  "auth.oidc.role_mapping.groups_claim",
  "auth.oidc.role_mapping.group_mappings",
  "auth.oidc.role_mapping.role_attribute_path",
  "auth.oidc.role_mapping.role_attribute_strict",
  "auth.oidc.role_mapping.skip_org_role_sync",
  "auth.token.value",
  "tls.cert_file",
  "tls.key_file",
  "tls.ca_file",
  "remote_nodes",
];
const DAGU_ENV = [
  "DAGU_AUTH_MODE",
  "DAGU_AUTH_BASIC_USERNAME",
  "DAGU_AUTH_BASIC_PASSWORD",
  "DAGU_AUTH_TOKEN_SECRET",
  "DAGU_AUTH_TOKEN_TTL",
  "DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME",
  "DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD",
  ...["CLIENT_ID", "CLIENT_SECRET", "CLIENT_URL", "ISSUER", "SCOPES", "WHITELIST", "AUTO_SIGNUP", "ALLOWED_DOMAINS"].map((k) => `DAGU_AUTH_OIDC_${k}`),
  ...["BUTTON_LABEL", "DEFAULT_ROLE", "GROUPS_CLAIM", "GROUP_MAPPINGS", "ROLE_ATTRIBUTE_PATH", "ROLE_ATTRIBUTE_STRICT"].map((k) => `DAGU_AUTH_OIDC_${k}`),
  "DAGU_AUTH_TOKEN",
  "DAGU_CERT_FILE",
  "DAGU_KEY_FILE",
];

interface Row {
  key: string;
  doc: Record<string, unknown>;
  check: (c: Conversion) => void;
}

const BASIC_DOC = { auth: { mode: "basic", basic: { username: "gate", password: "fixture-gate-pass" } } };
const warns = (key: string) => (c: Conversion) => assert.ok(warned(c).includes(key), `${key} not warned: ${warned(c).join(", ")}`);

type OidcCheck = (oidc: Record<string, unknown> & { roleMapping?: Record<string, unknown> }, c: Conversion) => void;
/** Each Dagu OIDC key: a value, and where it must land in spec.oidc. */
const OIDC_ROWS: Record<string, [unknown, OidcCheck]> = {
  "auth.oidc.client_id": ["dagu-2", (o) => assert.equal(o.clientId, "dagu-2")],
  "auth.oidc.client_secret": [
    "fixture-oidc-secret",
    (o, c) => {
      assert.deepEqual(o.clientSecretRef, { name: "dagu-oidc", key: "client-secret" });
      assert.equal(secretValue(c, "dagu-oidc", "client-secret"), "fixture-oidc-secret");
    },
  ],
  "auth.oidc.client_url": ["https://dagu.example.org", (o) => assert.equal(o.clientUrl, "https://dagu.example.org")],
  "auth.oidc.issuer": ["https://login.example.org", (o) => assert.equal(o.issuer, "https://login.example.org")],
  "auth.oidc.scopes": ["openid,email", (o) => assert.deepEqual(o.scopes, ["openid", "email"])],
  "auth.oidc.whitelist": [["a@example.test"], (o) => assert.deepEqual(o.whitelist, ["a@example.test"])],
  "auth.oidc.allowed_domains": ["example.test", (o) => assert.deepEqual(o.allowedDomains, ["example.test"])],
  "auth.oidc.auto_signup": [false, (o) => assert.equal(o.autoSignup, false)],
  "auth.oidc.button_label": ["Corp SSO", (o) => assert.equal(o.buttonLabel, "Corp SSO")],
  "auth.oidc.role_mapping.default_role": ["Operator", (o) => assert.equal(o.roleMapping?.defaultRole, "operator")],
  "auth.oidc.role_mapping.groups_claim": ["realm_access.roles", (o) => assert.equal(o.roleMapping?.groupsClaim, "realm_access.roles")],
  "auth.oidc.role_mapping.group_mappings": [{ ops: "Operator" }, (o) => assert.deepEqual(o.roleMapping?.groupMappings, { ops: "operator" })],
  "auth.oidc.role_mapping.role_attribute_path": ['"admin"', (o) => assert.equal(o.roleMapping?.roleAttributePath, '"admin"')],
  "auth.oidc.role_mapping.role_attribute_strict": [true, (o) => assert.equal(o.roleMapping?.roleAttributeStrict, true)],
  "auth.oidc.role_mapping.skip_org_role_sync": [true, (o) => assert.equal(o.roleMapping?.skipOrgRoleSync, true)],
};

/** Key -> what it becomes (or the warning it gets). */
const ROWS: Row[] = [
  { key: "auth.mode", doc: BASIC_DOC, check: (c) => assert.equal(spec(c).mode, "basic") },
  { key: "auth.basic.username", doc: BASIC_DOC, check: (c) => assert.equal(spec(c).basic?.username, "gate") },
  {
    key: "auth.basic.password",
    doc: BASIC_DOC,
    check: (c) => {
      assert.deepEqual(spec(c).basic?.passwordSecretRef, { name: "dagu-basic", key: "password" });
      assert.equal(secretValue(c, "dagu-basic", "password"), "fixture-gate-pass");
    },
  },
  {
    key: "auth.builtin.token.secret",
    doc: setPath(withAdmin(), "auth.builtin.token.secret", "s".repeat(40)),
    check: (c) => {
      assert.deepEqual(spec(c).builtin?.token?.secretRef, { name: "dagu-token-secret", key: "secret" });
      assert.equal(secretValue(c, "dagu-token-secret", "secret"), "s".repeat(40));
    },
  },
  { key: "auth.builtin.token.ttl", doc: setPath(withAdmin(), "auth.builtin.token.ttl", "24h0m0s"), check: (c) => assert.equal(spec(c).builtin?.token?.ttl, "24h0m0s") },
  { key: "auth.builtin.initial_admin.username", doc: withAdmin(), check: (c) => assert.equal(spec(c).builtin?.initialAdmin?.username, "root") },
  {
    key: "auth.builtin.initial_admin.password",
    doc: withAdmin(),
    check: (c) => {
      assert.deepEqual(spec(c).builtin?.initialAdmin?.passwordSecretRef, { name: "dagu-initial-admin", key: "password" });
      assert.equal(secretValue(c, "dagu-initial-admin", "password"), ADMIN.password);
    },
  },
  ...Object.entries(OIDC_ROWS).map(
    ([key, [value, check]]): Row => ({
      key,
      doc: setPath(setPath(setPath(setPath(withAdmin(), "auth.oidc.issuer", "https://idp.example.test"), "auth.oidc.client_id", "dagu"), "auth.oidc.client_url", "https://dagu.example.test"), key, value),
      check: (c) => check(spec(c).oidc as Record<string, unknown> & { roleMapping?: Record<string, unknown> }, c),
    }),
  ),
  { key: "auth.token.value", doc: setPath(withAdmin(), "auth.token.value", "fixture-static"), check: warns("auth.token.value") },
  ...["tls.cert_file", "tls.key_file"].map(
    (key): Row => ({
      key,
      doc: { ...withAdmin(), tls: { cert_file: "/c/tls.crt", key_file: "/c/tls.key" } },
      check: (c) => {
        assert.deepEqual(spec(c).tls, { secretName: "dagu-tls" });
        assert.ok(warned(c).includes("tls.cert_file, tls.key_file"));
        assert.deepEqual(c.commands, ["kubectl create secret tls dagu-tls --cert=/c/tls.crt --key=/c/tls.key"]);
        assert.equal(c.secrets.some((s) => s.metadata.name === "dagu-tls"), false, "the TLS Secret is created from the files, not written");
      },
    }),
  ),
  { key: "tls.ca_file", doc: { ...withAdmin(), tls: { ca_file: "/c/ca.crt" } }, check: (c) => (warns("tls.ca_file")(c), assert.equal(spec(c).tls, undefined)) },
  { key: "remote_nodes", doc: { ...withAdmin(), remote_nodes: [{ name: "n1", api_base_url: "https://n1/api/v1" }] }, check: warns("remote_nodes") },
];

const ENV_ROWS: { env: NodeJS.ProcessEnv; check: (c: Conversion) => void }[] = [
  {
    env: { DAGU_AUTH_MODE: "basic", DAGU_AUTH_BASIC_USERNAME: "envgate", DAGU_AUTH_BASIC_PASSWORD: "fixture-env-pass" },
    check: (c) => {
      assert.equal(spec(c).mode, "basic");
      assert.equal(spec(c).basic?.username, "envgate");
      assert.equal(secretValue(c, "dagu-basic", "password"), "fixture-env-pass");
    },
  },
  {
    env: {
      DAGU_AUTH_TOKEN_SECRET: "e".repeat(32),
      DAGU_AUTH_TOKEN_TTL: "1h30m",
      DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "envadmin",
      DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "fixture-envadmin-pass",
      DAGU_CERT_FILE: "/e/cert.pem",
      DAGU_KEY_FILE: "/e/key.pem",
    },
    check: (c) => {
      assert.deepEqual(spec(c), {
        mode: "builtin",
        builtin: {
          token: { ttl: "1h30m", secretRef: { name: "dagu-token-secret", key: "secret" } },
          initialAdmin: { username: "envadmin", passwordSecretRef: { name: "dagu-initial-admin", key: "password" } },
        },
        tls: { secretName: "dagu-tls" },
      });
      assert.equal(secretValue(c, "dagu-token-secret", "secret"), "e".repeat(32));
      assert.equal(secretValue(c, "dagu-initial-admin", "password"), "fixture-envadmin-pass");
      assert.deepEqual(c.commands, ["kubectl create secret tls dagu-tls --cert=/e/cert.pem --key=/e/key.pem"]);
    },
  },
  {
    env: {
      DAGU_AUTH_OIDC_CLIENT_ID: "env-client",
      DAGU_AUTH_OIDC_CLIENT_SECRET: "fixture-env-oidc-secret",
      DAGU_AUTH_OIDC_CLIENT_URL: "https://dagu.example.test",
      DAGU_AUTH_OIDC_ISSUER: "https://idp.example.test",
      DAGU_AUTH_OIDC_SCOPES: "openid,profile,email",
      DAGU_AUTH_OIDC_WHITELIST: "a@example.test",
      DAGU_AUTH_OIDC_AUTO_SIGNUP: "false",
      DAGU_AUTH_OIDC_ALLOWED_DOMAINS: "example.test",
      DAGU_AUTH_OIDC_BUTTON_LABEL: "Corp SSO",
      DAGU_AUTH_OIDC_DEFAULT_ROLE: "operator",
      DAGU_AUTH_OIDC_GROUPS_CLAIM: "roles",
      DAGU_AUTH_OIDC_GROUP_MAPPINGS: '{"ops":"operator"}',
      DAGU_AUTH_OIDC_ROLE_ATTRIBUTE_PATH: '"admin"',
      DAGU_AUTH_OIDC_ROLE_ATTRIBUTE_STRICT: "true",
      DAGU_AUTH_TOKEN: "fixture-static",
      DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "a",
      DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "fixture-a-pass",
    },
    check: (c) => {
      assert.deepEqual(spec(c).oidc, {
        clientId: "env-client",
        clientUrl: "https://dagu.example.test",
        issuer: "https://idp.example.test",
        scopes: ["openid", "profile", "email"],
        whitelist: ["a@example.test"],
        allowedDomains: ["example.test"],
        autoSignup: false,
        buttonLabel: "Corp SSO",
        roleMapping: { defaultRole: "operator", groupsClaim: "roles", groupMappings: { ops: "operator" }, roleAttributePath: '"admin"', roleAttributeStrict: true },
        clientSecretRef: { name: "dagu-oidc", key: "client-secret" },
      });
      assert.equal(secretValue(c, "dagu-oidc", "client-secret"), "fixture-env-oidc-secret");
      assert.ok(warned(c).some((k) => k.startsWith("DAGU_AUTH_TOKEN (")));
    },
  },
];

describe("every key of Dagu's auth: configuration", () => {
  test("the key table holds exactly the keys and variables Dagu has", () => {
    assert.deepEqual(DAGU_AUTH_KEYS.map((k) => k.key).sort(), [...DAGU_KEYS].sort());
    assert.deepEqual(DAGU_AUTH_KEYS.flatMap((k) => (k.env ? [k.env] : [])).sort(), [...DAGU_ENV].sort());
  });

  test("docs/convert.md names every key and variable", async () => {
    const doc = await readFile(new URL("../../docs/convert.md", import.meta.url), "utf8");
    for (const k of DAGU_AUTH_KEYS) {
      assert.ok(doc.includes(`\`${k.key}\``), `${k.key} is not in docs/convert.md`);
      if (k.env && !k.env.startsWith("DAGU_AUTH_OIDC_")) assert.ok(doc.includes(`\`${k.env}\``), `${k.env} is not in docs/convert.md`);
    }
  });

  test("each key: converted as the table says, or warned about by name", () => {
    assert.deepEqual([...new Set(ROWS.map((r) => r.key))].sort(), [...DAGU_KEYS].sort(), "a row per key");
    for (const row of ROWS) {
      const c = convert({ document: structuredClone(row.doc) });
      row.check(c);
      assertOutputSound(c);
      const outcome = DAGU_AUTH_KEYS.find((k) => k.key === row.key)!.outcome;
      if (outcome.kind === "warned") assert.ok(warned(c).includes(row.key), row.key);
    }
  });

  test("each variable, environment only (no file)", () => {
    const covered = new Set(ENV_ROWS.flatMap((r) => Object.keys(r.env)));
    for (const name of DAGU_ENV) assert.ok(covered.has(name), `${name} has no row`);
    for (const row of ENV_ROWS) {
      const c = convert({ env: row.env });
      row.check(c);
      assertOutputSound(c);
    }
  });
});

describe("conversions", () => {
  test("a whole Dagu config: builtin with token secret, initial admin and TLS; other keys noted or warned", async () => {
    const c = await fromFixture("builtin-whole-config.yaml", undefined, { name: "dagu", namespace: "workflows" });
    assert.deepEqual(c.daguAuth, {
      apiVersion: "auth.dagu.dev/v1alpha1",
      kind: "DaguAuth",
      metadata: { name: "dagu", namespace: "workflows" },
      spec: {
        mode: "builtin",
        builtin: {
          token: { ttl: "12h0m0s", secretRef: { name: "dagu-token-secret", key: "secret" } },
          initialAdmin: { username: "ops-admin", passwordSecretRef: { name: "dagu-initial-admin", key: "password" } },
        },
        tls: { secretName: "dagu-tls" },
      },
    });
    assert.deepEqual(
      c.secrets.map((s) => [s.metadata, s.stringData]),
      [
        [{ name: "dagu-token-secret", namespace: "workflows" }, { secret: "fixture-signing-secret-0123456789abcdef" }],
        [{ name: "dagu-initial-admin", namespace: "workflows" }, { password: "fixture-admin-pass-1" }],
      ],
    );
    assert.deepEqual(warned(c), ["tls.ca_file", "remote_nodes", "tls.cert_file, tls.key_file"]);
    assert.deepEqual(c.commands, ["kubectl create secret tls dagu-tls --cert=/srv/dagu/tls/server.crt --key=/srv/dagu/tls/server.key -n workflows"]);
    assert.ok(c.notes.some((n) => n.includes("host, port, dags_dir")));
    assertOutputSound(c);
  });

  test("the page's builtin example: its short token secret is converted as it is, with a warning", async () => {
    const c = await fromFixture("page-builtin.yaml");
    assert.deepEqual(spec(c), {
      mode: "builtin",
      builtin: {
        token: { ttl: "24h", secretRef: { name: "dagu-token-secret", key: "secret" } },
        initialAdmin: { username: "admin", passwordSecretRef: { name: "dagu-initial-admin", key: "password" } },
      },
    });
    assert.equal(secretValue(c, "dagu-token-secret", "secret"), "your-secure-random-secret", "the same secret, so the same key");
    assert.deepEqual(warned(c), ["auth.builtin.token.secret"]);
    assert.match(c.warnings[0]!.message, /shorter than 32 bytes: accepted, and a 256-bit signing key is derived from it \(HKDF-SHA256\)/);
    assertOutputSound(c);
    const env = convert({ env: { DAGU_AUTH_MODE: "builtin", DAGU_AUTH_TOKEN_SECRET: "your-secure-random-secret", DAGU_AUTH_BUILTIN_INITIAL_ADMIN_USERNAME: "admin", DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "your-secure-password" } });
    assert.deepEqual(warned(env), ["DAGU_AUTH_TOKEN_SECRET"]);
    assert.equal(spec(env).builtin?.initialAdmin?.username, "admin");
  });

  test("a bare auth block, mode unset: builtin; without a token secret the operator generates one", async () => {
    const c = await fromFixture("builtin-bare-block.yaml");
    assert.deepEqual(spec(c), {
      mode: "builtin",
      builtin: { initialAdmin: { username: "keeper", passwordSecretRef: { name: "dagu-initial-admin", key: "password" } } },
    });
    assert.deepEqual(c.secrets.map((s) => s.metadata.name), ["dagu-initial-admin"]);
    assert.deepEqual(c.warnings, []);
    assert.ok(c.notes.some((n) => n.includes("the operator generates the signing key")));
    assertOutputSound(c);
  });

  test("builtin without an initial admin: no Secret at all, and a warning that nobody could log in", () => {
    const c = convert({ document: { auth: { mode: "builtin", builtin: { token: { ttl: "8h" } } } } });
    assert.deepEqual(spec(c), { mode: "builtin", builtin: { token: { ttl: "8h" } } });
    assert.deepEqual(c.secrets, []);
    assert.deepEqual(warned(c), ["auth.builtin.initial_admin"]);
    assert.equal(renderSecrets(c, "x"), undefined);
    assertOutputSound(c);
  });

  test("basic mode: the password goes to a Secret; builtin-only settings are warned about", async () => {
    const c = await fromFixture("basic.yaml");
    assert.deepEqual(spec(c), { mode: "basic", basic: { username: "gatekeeper", passwordSecretRef: { name: "dagu-basic", key: "password" } } });
    assert.equal(secretValue(c, "dagu-basic", "password"), "fixture-basic-pass-9");
    assertOutputSound(c);
    const mixed = convert({ document: { auth: { ...BASIC_DOC.auth, builtin: { token: { ttl: "1h" }, initial_admin: ADMIN } } } });
    assert.deepEqual(warned(mixed), ["auth.builtin.token.ttl", "auth.builtin.initial_admin.username", "auth.builtin.initial_admin.password"]);
    assert.equal(spec(mixed).builtin, undefined);
    assert.throws(() => convert({ document: { auth: { mode: "basic", basic: { username: "u" } } } }), /basic mode needs auth\.basic\.password/);
  });

  test("the environment wins over the file, as in Dagu, and each override is noted", async () => {
    const env = { DAGU_AUTH_TOKEN_TTL: "30m", DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "fixture-env-override", DAGU_CERT_FILE: "/env/c.pem", PATH: "/bin" };
    const c = await fromFixture("builtin-whole-config.yaml", env);
    assert.equal(spec(c).builtin?.token?.ttl, "30m");
    assert.equal(spec(c).builtin?.initialAdmin?.username, "ops-admin");
    assert.equal(secretValue(c, "dagu-initial-admin", "password"), "fixture-env-override");
    assert.equal(c.commands[0], "kubectl create secret tls dagu-tls --cert=/env/c.pem --key=/srv/dagu/tls/server.key");
    for (const [v, key] of [["DAGU_AUTH_TOKEN_TTL", "auth.builtin.token.ttl"], ["DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD", "auth.builtin.initial_admin.password"], ["DAGU_CERT_FILE", "tls.cert_file"]]) {
      assert.ok(c.notes.some((n) => n.startsWith(`${v} overrides ${key}`)), v);
    }
    const mode = convert({ document: { auth: { mode: "builtin", builtin: { initial_admin: ADMIN } } }, env: { DAGU_AUTH_MODE: "basic", DAGU_AUTH_BASIC_USERNAME: "u", DAGU_AUTH_BASIC_PASSWORD: "fixture-u-pass" } });
    assert.equal(spec(mode).mode, "basic");
    // Without --env (no env in the source) the same variables count for nothing.
    assert.equal(spec(await fromFixture("builtin-whole-config.yaml")).builtin?.token?.ttl, "12h0m0s");
  });

  test("OIDC: every key into spec.oidc, the client secret into the Secrets output only", async () => {
    const c = await fromFixture("oidc.yaml");
    assert.deepEqual(warned(c), []);
    const oidc = spec(c).oidc!;
    assert.equal(oidc.issuer, "https://idp.example.test/realms/ops");
    assert.deepEqual(oidc.clientSecretRef, { name: "dagu-oidc", key: "client-secret" });
    assert.deepEqual(oidc.roleMapping?.groupMappings, { "dagu-admins": "admin", "dagu-devs": "developer" });
    assert.equal(secretValue(c, "dagu-oidc", "client-secret"), "fixture-oidc-client-secret");
    assert.ok(!renderResources(c, "oidc.yaml").includes("fixture-oidc-client-secret"), "no secret in resources.yaml");
    assert.ok(c.notes.some((n) => n.startsWith("OIDC:")));
    assertOutputSound(c);
    // Some Dagu versions read it under builtin: converted the same way; unknown OIDC keys are warned about.
    const nested = convert({ document: setPath(withAdmin(), "auth.builtin.oidc", { issuer: "https://i.example", client_id: "c", client_url: "https://d.example", client_idd: "typo" }) });
    assert.equal(spec(nested).oidc?.issuer, "https://i.example");
    assert.deepEqual(warned(nested), ["auth.builtin.oidc.client_idd"]);
    assert.match(nested.warnings[0]!.message, /not one of Dagu's OIDC keys/);
    assert.throws(() => convert({ document: setPath(withAdmin(), "auth.oidc.issuer", "https://i.example") }), /OIDC needs auth\.oidc\.client_id/);
    assert.throws(() => convert({ document: setPath(setPath(withAdmin(), "auth.oidc.issuer", "http://idp.example"), "auth.oidc.client_id", "c") , env: { DAGU_AUTH_OIDC_CLIENT_URL: "https://d.example" } }), /auth\.oidc\.issuer: /);
  });

  test("unknown and misplaced keys and variables are warned about, never silently dropped", async () => {
    const c = await fromFixture("unknown-keys.yaml", { DAGU_AUTH_TYPO: "1", DAGU_AUTH_EMPTY: "" });
    assert.deepEqual(warned(c), ["auth.mod", "auth.builtin.token.lifetime", "auth.tls", "DAGU_AUTH_TYPO"]);
    assert.match(c.warnings[2]!.message, /top level/);
    assert.equal(spec(c).mode, "builtin", "auth.mod is not auth.mode");
    assert.equal(spec(c).tls, undefined, "auth.tls is not where Dagu reads tls");
  });

  test("YAML as Dagu reads it: numbers as their text, anchors and merge keys, empty values unset", async () => {
    const c = await fromFixture("yaml-details.yaml");
    assert.equal(spec(c).builtin?.initialAdmin?.username, "anchor-admin");
    assert.equal(secretValue(c, "dagu-initial-admin", "password"), "123456789");
    assert.equal(spec(c).builtin?.token?.ttl, "90m");
    assert.equal(spec(c).builtin?.token?.secretRef, undefined, "an empty secret: the operator generates one");
    assert.deepEqual(warned(c), ["auth.builtin.initial_admin.password"]);
    assert.match(c.warnings[0]!.message, /YAML number/);
    assertOutputSound(c);
  });

  test("Dagu 1's names are read, and what has no equivalent is warned about", async () => {
    const c = await fromFixture("dagu1-names.yaml");
    assert.equal(spec(c).builtin?.initialAdmin?.username, "legacy");
    assert.deepEqual(c.commands, ["kubectl create secret tls dagu-tls --cert=/legacy/cert.pem --key=/legacy/key.pem"]);
    assert.deepEqual(warned(c), ["auth.token.value", "remoteNodes", "tls.certFile, tls.keyFile"]);
    assert.ok(c.notes.some((n) => n.includes("auth.builtin.admin is Dagu 1's name")));
  });

  test("token.ttl: a Go duration goes into the DaguAuth as written; what Dagu or a DaguAuth refuses is refused naming the key", () => {
    const ttl = (value: string, env?: NodeJS.ProcessEnv) => spec(convert({ document: setPath(withAdmin(), "auth.builtin.token.ttl", value), ...(env ? { env } : {}) })).builtin?.token?.ttl;
    for (const text of ["24h0m0s", "1h30m", "90m", "3600s", "0.5h", "90.5s", "8760h"]) assert.equal(ttl(text), text);
    assert.throws(() => ttl("1d"), { name: "Error", message: /^auth\.builtin\.token\.ttl: unknown unit "d"/ });
    assert.throws(() => ttl("forever"), { message: /^auth\.builtin\.token\.ttl: invalid duration/ });
    assert.throws(() => ttl("24h", { DAGU_AUTH_TOKEN_TTL: "1w" }), { message: /^DAGU_AUTH_TOKEN_TTL: unknown unit "w"/ });
    assert.throws(() => ttl("30s"), { message: /^auth\.builtin\.token\.ttl is 30s: it must be at least 1m/ });
    assert.throws(() => ttl("-1h"), { message: /^auth\.builtin\.token\.ttl: .*must not be negative/ });
    assert.throws(() => ttl("9000h"), { message: /^auth\.builtin\.token\.ttl: .*at most 8760h/ });
    assert.throws(() => ttl("1d"), ConvertError);
  });
});

describe("refusals name the key", () => {
  const refuses = (source: ConvertSource, message: RegExp) => assert.throws(() => convert(source), (e: Error) => e instanceof ConvertError && message.test(e.message), String(message));

  test("mode none: nothing to protect", async () => {
    await assert.rejects(fromFixture("mode-none.yaml"), /auth\.mode is none: .*nothing to protect/);
    refuses({ document: withAdmin(), env: { DAGU_AUTH_MODE: "none" } }, /^DAGU_AUTH_MODE is none/);
    refuses({ document: { auth: { mode: "oidc" } } }, /standalone OIDC mode/);
    refuses({ document: { auth: { mode: "ldap" } } }, /auth\.mode "ldap" is not a Dagu auth mode/);
  });

  test("only one half of the initial admin: both or neither, as in Dagu", async () => {
    await assert.rejects(fromFixture("initial-admin-half.yaml"), /auth\.builtin\.initial_admin\.username is set without auth\.builtin\.initial_admin\.password/);
    refuses({ env: { DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD: "fixture-half-pass" } }, /^DAGU_AUTH_BUILTIN_INITIAL_ADMIN_PASSWORD is set without auth\.builtin\.initial_admin\.username/);
  });

  test("what the operator would refuse: a short password, an invalid username, half a certificate", () => {
    refuses({ document: setPath(withAdmin(), "auth.builtin.initial_admin.password", "short") }, /^auth\.builtin\.initial_admin\.password is shorter than 8 characters/);
    refuses(
      { document: setPath(withAdmin(), "auth.builtin.initial_admin.username", "root user") },
      /the DaguAuth would be invalid: spec\.builtin\.initialAdmin\.username \(from auth\.builtin\.initial_admin\.username\)/,
    );
    refuses({ document: { ...withAdmin(), tls: { cert_file: "/c.pem" } } }, /^tls\.cert_file is set without tls\.key_file/);
    refuses({ document: { auth: { basic: "admin:secret" } } }, /auth: configuration is not valid/);
    refuses({ document: ["not", "a", "mapping"] }, /must be a YAML mapping/);
    assert.throws(() => convertDaguAuthConfig({ document: withAdmin() }, { name: "Dagu_Prod" }), /--name "Dagu_Prod"/);
    assert.throws(() => convertDaguAuthConfig({ document: withAdmin() }, { name: "dagu", namespace: "a.b" }), /--namespace "a\.b"/);
  });

  test("a YAML error points at the line without quoting it", () => {
    assert.throws(() => parseDaguConfigYaml("auth:\n  basic:\n    password: [fixture-leak\n", "cfg.yaml"), (e: Error) => /^cfg\.yaml is not valid YAML at line \d+/.test(e.message) && !e.message.includes("fixture-leak"));
  });
});

describe("the command", () => {
  const run = async (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    let stdout = "";
    let stderr = "";
    const code = await runConvert(argv, env, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    return { code, stdout, stderr };
  };

  test("--out-dir: resources.yaml for Git, secrets.yaml (0600) not, and stderr says which is which", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dagu-convert-"));
    try {
      const out = join(dir, "out");
      const r = await run([fixture("builtin-whole-config.yaml"), "--out-dir", out, "--name", "prod", "-n", "wf"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      const resources = await readFile(join(out, "resources.yaml"), "utf8");
      const secrets = await readFile(join(out, "secrets.yaml"), "utf8");
      assert.equal((await stat(join(out, "secrets.yaml"))).mode & 0o777, 0o600);
      assert.match(r.stderr, /wrote .*resources\.yaml: DaguAuth prod\. Safe for Git/);
      assert.match(r.stderr, /wrote .*secrets\.yaml: Secret prod-token-secret, prod-initial-admin\. Secret values in plain text: do NOT commit it/);
      assert.match(r.stderr, /REMINDER/);
      assert.match(r.stderr, /^WARNING: remote_nodes: not converted/m);
      assert.match(r.stderr, /kubectl create secret tls prod-tls --cert=\/srv\/dagu\/tls\/server\.crt --key=\/srv\/dagu\/tls\/server\.key -n wf/);
      for (const value of ["fixture-signing-secret-0123456789abcdef", "fixture-admin-pass-1", "fixture-remote-token"]) {
        assert.ok(!resources.includes(value) && !r.stderr.includes(value), `${value} leaked`);
      }
      assert.ok(secrets.includes("fixture-admin-pass-1"));
      assert.deepEqual(parseAllDocuments(resources).map((d) => DaguAuth.parse(d.toJS()).metadata.name), ["prod"]);
      assert.deepEqual(parseAllDocuments(secrets).map((d) => SecretManifestSchema.parse(d.toJS()).metadata.name), ["prod-token-secret", "prod-initial-admin"]);

      // Nothing secret: no secrets.yaml, and the one left from the run above is pointed out as stale.
      const none = join(dir, "none.yaml");
      await writeFile(none, "auth:\n  builtin:\n    token:\n      ttl: 2h\n");
      const r2 = await run([none, "--out-dir", out, "--name", "prod"]);
      assert.equal(r2.code, 0, r2.stderr);
      assert.match(r2.stderr, /no secrets\.yaml: nothing secret to write/);
      assert.match(r2.stderr, /secrets\.yaml is left from an earlier run/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("stdout: both parts under their headers, one stream kubectl can apply", async () => {
    const r = await run(["--env"], { DAGU_AUTH_MODE: "basic", DAGU_AUTH_BASIC_USERNAME: "gate", DAGU_AUTH_BASIC_PASSWORD: "fixture-gate-pass" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^# --- resources\.yaml: .*\n# Safe for Git/);
    assert.match(r.stdout, /\n---\n# --- secrets\.yaml: .*\n# SECRET VALUES IN PLAIN TEXT/);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string });
    assert.deepEqual(docs.map((d) => d.kind), ["DaguAuth", "Secret"]);
    assert.ok(r.stdout.indexOf("fixture-gate-pass") > r.stdout.indexOf("# --- secrets.yaml"));
    assert.match(r.stderr, /REMINDER: the secrets\.yaml part holds secret values/);
    assert.ok(!r.stderr.includes("fixture-gate-pass"));
  });

  test("without --env the environment is not read; errors exit 1 naming the key, usage errors 2", async () => {
    const env = { DAGU_AUTH_MODE: "none" };
    assert.equal((await run([fixture("basic.yaml")], env)).code, 0);
    const none = await run([fixture("basic.yaml"), "--env"], env);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^dagu-auth convert: DAGU_AUTH_MODE is none/m);
    assert.equal(none.stdout, "");
    assert.equal((await run([])).code, 2);
    assert.equal((await run(["a.yaml", "b.yaml"])).code, 2);
    assert.equal((await run(["--bogus"])).code, 2);
    const missing = await run(["/nonexistent/dagu.yaml"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read \/nonexistent\/dagu\.yaml: ENOENT/);
    const help = await run(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: dagu-auth convert/);
  });
});

describe("--state-dir: what a standalone sidecar created", () => {
  const run = async (argv: string[]) => {
    let stdout = "";
    let stderr = "";
    const code = await runConvert(argv, {}, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
    return { code, stdout, stderr };
  };

  test("users, API keys and webhooks become DaguUser, DaguApiKey and DaguWebhook; what cannot be carried over is said by name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dagu-convert-state-"));
    try {
      const stateDir = join(dir, "state");
      const source = new DaguConfigCredentialSource({ env: { DAGU_AUTH_MODE: "builtin" }, stateDir: new StateDir(stateDir), trustedProxies: [] });
      await source.start();
      const m = source.management()!;
      const root = await m.setup("Root_Admin", "root-password-1");
      const actor = { id: root.id, userId: root.id };
      await m.createUser({ username: "ann@example.com", password: "ann-password-1", role: "developer" });
      const off = await m.createUser({ username: "old", password: "old-password-1", role: "viewer" });
      await m.updateUser(off.id, { disabled: true }, actor);
      const ci = await m.createApiKey({ name: "CI key", description: "nightly", role: "operator", allowedSurfaces: ["rest_api"], attributionClass: "service_account" }, actor);
      await m.createApiKey({ name: "mcp", role: "viewer", allowedSurfaces: ["mcp"], attributionClass: "service_account" }, actor);
      const hook = await m.createWebhook("hello", actor);
      const hmac = await m.enableWebhookHmac("hello", "tokenAndHmac", "observe");
      await source.stop();

      const r = await run([fixture("page-builtin-no-admin.yaml"), "--state-dir", stateDir, "--namespace", "wf"]);
      assert.equal(r.code, 0, r.stderr);
      const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace: string }; spec: Record<string, unknown>; stringData?: Record<string, string> });
      const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
      assert.deepEqual(byKind("DaguUser").map((u) => [u.metadata.name, u.spec.username, u.spec.role, u.spec.disabled ?? false]), [
        ["root-admin", "Root_Admin", "admin", false],
        ["ann-example.com", "ann@example.com", "developer", false],
        ["old", "old", "viewer", true],
      ]);
      assert.ok(byKind("DaguUser").every((u) => u.metadata.namespace === "wf" && (u.spec.authRef as { name: string }).name === "dagu"));
      assert.deepEqual(byKind("DaguApiKey").map((k) => [k.metadata.name, k.spec.role, k.spec.allowedSurfaces, k.spec.description, k.spec.secretName]), [
        ["ci-key", "operator", ["rest_api"], "nightly", "ci-key-api-key"],
        ["mcp", "viewer", ["mcp"], undefined, "mcp-api-key"],
      ]);
      assert.deepEqual(byKind("DaguWebhook").map((w) => [w.spec.dagName, w.spec.auth, w.spec.secretName]), [["hello", { mode: "tokenAndHmac", hmacEnforcement: "observe" }, "hello-webhook"]]);
      // Each user's Secret holds a new random password; nothing of the old secrets is anywhere.
      const passwords = byKind("Secret").flatMap((s) => (s.stringData!.password !== undefined ? [s.stringData!.password] : []));
      assert.equal(passwords.length, 3);
      assert.ok(passwords.every((p) => p.length >= 16 && !["root-password-1", "ann-password-1"].includes(p)));
      for (const leaked of [ci.key, hook.token, hmac.secret, "$argon2id$"]) assert.ok(!r.stdout.includes(leaked) && !r.stderr.includes(leaked), "no old secret in the output");
      assert.match(r.stderr, /WARNING: --state-dir users: Root_Admin, ann@example\.com, old: a password cannot be carried over/);
      assert.match(r.stderr, /WARNING: --state-dir API keys: CI key \(Secret ci-key-api-key\), mcp \(Secret mcp-api-key\): the operator generates a new key/);
      assert.match(r.stderr, /WARNING: --state-dir webhooks: hello \(Secret hello-webhook\)/);
      assert.doesNotMatch(r.stderr, /auth\.builtin\.initial_admin: not set/, "an admin exists among the users");

      const missing = await run([fixture("page-builtin.yaml"), "--state-dir", join(dir, "nope")]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /--state-dir .*nope holds no sidecar-state\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("users single sign-on created become DaguUsers with sso: true and their email; one without an email is named, not converted", async () => {
    const dir = await mkdtemp(join(tmpdir(), "dagu-convert-sso-"));
    try {
      const stateDir = join(dir, "state");
      const source = new DaguConfigCredentialSource({ env: { DAGU_AUTH_MODE: "builtin" }, stateDir: new StateDir(stateDir), trustedProxies: [] });
      await source.start();
      await source.management()!.setup("admin", "admin-password-1");
      const record = (username: string, role: "operator" | "viewer", email: string | undefined, createdAt: string, disabled = false) => ({
        issuer: "https://idp.example.com",
        subject: `sub-${username}`,
        username,
        ...(email ? { email } : {}),
        role,
        createdAt,
        updatedAt: createdAt,
        ...(disabled ? { disabled: true } : {}),
      });
      await source.updateSsoUsers(() => ({
        users: {
          "sso:00000000-0000-4000-8000-000000000002": record("rosa", "operator", "rosa@example.com", "2026-01-02T00:00:00Z"),
          "sso:00000000-0000-4000-8000-000000000001": record("Old.Timer", "viewer", "old@example.com", "2026-01-01T00:00:00Z", true),
          "sso:00000000-0000-4000-8000-000000000003": record("nomail", "viewer", undefined, "2026-01-03T00:00:00Z"),
        },
        result: undefined,
      }));
      await source.stop();

      const r = await run([fixture("page-builtin-no-admin.yaml"), "--state-dir", stateDir]);
      assert.equal(r.code, 0, r.stderr);
      const users = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> }).filter((d) => d.kind === "DaguUser");
      assert.deepEqual(
        users.filter((u) => u.spec.sso === true).map((u) => [u.metadata.name, u.spec.username, u.spec.role, u.spec.email, u.spec.disabled ?? false, u.spec.password]),
        [
          ["old.timer", "Old.Timer", "viewer", "old@example.com", true, undefined],
          ["rosa", "rosa", "operator", "rosa@example.com", false, undefined],
        ],
      );
      assert.deepEqual(users.map((u) => u.spec.username), ["admin", "Old.Timer", "rosa"], "the admin with a password, then the SSO users by creation");
      assert.match(r.stderr, /WARNING: --state-dir SSO user nomail: not converted: it has no email/);
      assert.match(r.stderr, /WARNING: --state-dir SSO users: Old\.Timer \(viewer\), rosa \(operator\): DaguUsers with sso: true/);
      assert.doesNotMatch(r.stderr, /sub-rosa|idp\.example\.com/, "issuer and subject are not carried (the email matches)");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test("Dagu's base path becomes spec.basePath (DAGU_BASE_PATH over base_path, cleaned as Dagu does); one the sidecar cannot guard, or a client_url that disagrees, is refused naming the key", () => {
  const at = (top: Record<string, unknown>, env?: NodeJS.ProcessEnv) => convert({ document: { ...withAdmin(), ...top }, ...(env ? { env } : {}) });
  assert.equal(spec(at({ base_path: "/dagu" })).basePath, "/dagu");
  assert.equal(spec(at({ basePath: "tools/dagu/" })).basePath, "/tools/dagu");
  assert.equal(spec(at({ base_path: "/" })).basePath, undefined, "the root is no base path");
  assert.equal(spec(at({})).basePath, undefined);
  const overridden = at({ base_path: "/dagu" }, { DAGU_BASE_PATH: "/other" });
  assert.equal(spec(overridden).basePath, "/other");
  assert.ok(overridden.notes.some((n) => /DAGU_BASE_PATH overrides base_path/.test(n)));
  assert.ok(!at({ base_path: "/dagu" }).notes.some((n) => /ignored: .*base_path/.test(n)), "not among the ignored keys");
  assert.throws(() => at({ base_path: "/x/api" }), (e: Error) => e instanceof ConvertError && /spec\.basePath \(from base_path\): spec\.basePath must not contain a segment "api"/.test(e.message));
  const sso = { auth: { builtin: { initial_admin: { ...ADMIN } }, oidc: { client_id: "dagu", client_url: "https://tools.example.com/dagu", issuer: "https://idp.example.com" } } };
  assert.equal(spec(convert({ document: { ...sso, base_path: "/dagu" } })).basePath, "/dagu");
  assert.throws(() => convert({ document: sso }), (e: Error) => e instanceof ConvertError && /spec\.oidc\.clientUrl.*path must be spec\.basePath/.test(e.message));
});
