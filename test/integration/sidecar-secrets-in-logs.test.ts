// Plants every kind of secret the sidecar handles (passwords, an API key, a JWT, a password hash, the
// signing secret, a webhook token and HMAC secret, a value in a refused credentials document), drives
// the sidecar through successes and failures with them at debug log level, and scans everything it
// wrote (stdout and stderr) for any of them.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startDagu, type DaguInstance } from "../harness/dagu.ts";
import { eventually } from "../harness/per-test.ts";
import { startSidecar, type SidecarInstance } from "../harness/sidecar.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

const API = "/api/v1";
let dagu: DaguInstance;
let dir: string;
let sidecar: SidecarInstance;
let built: TestCredentials;

const PASSWORDS = { ann: "Planted-Password-Ann-7781", bob: "Planted-Password-Bob-9913", newAnn: "Planted-New-Password-4471", stranger: "Planted-Stranger-Guess-5521" };
const PLANTED_IN_BAD_DOCUMENT = "Planted-Value-In-A-Refused-Document-3391";

before(async () => {
  dagu = await startDagu();
  dir = await mkdtemp(join(tmpdir(), "sidecar-secrets-"));
  built = await buildCredentials({
    users: [
      { username: "ann", password: PASSWORDS.ann, role: "admin" },
      { username: "bob", password: PASSWORDS.bob, role: "viewer" },
    ],
    apiKeys: [{ name: "ci", role: "operator" }],
    webhooks: [{ dagName: "hello", mode: "tokenAndHmac" }],
  });
  await writeFile(join(dir, "credentials.json"), JSON.stringify(built.credentials));
  sidecar = await startSidecar({ upstream: dagu.url, args: ["--credentials-file", join(dir, "credentials.json"), "--log-level", "trace"] });
});

after(async () => {
  await sidecar?.stop();
  await dagu?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("no secret, token, hash or password ever appears in the sidecar's output", async () => {
  const url = sidecar.url;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, text: await r.text() }));
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers }).then(async (r) => ({ status: r.status, text: await r.text() }));

  const login = await post(`${API}/auth/login`, { username: "ann", password: PASSWORDS.ann });
  const jwt = (JSON.parse(login.text) as { token: string }).token;
  assert.equal((await post(`${API}/auth/login`, { username: "ann", password: PASSWORDS.bob })).status, 401);
  assert.equal((await post(`${API}/auth/login`, { username: "nobody", password: PASSWORDS.stranger })).status, 401);
  assert.equal((await get(`${API}/dags`, { authorization: `Bearer ${jwt}` })).status, 200);
  assert.equal((await get(`/dags?token=${jwt}`, { authorization: `Bearer ${jwt}`, cookie: `session=${jwt}` })).status, 200);
  assert.equal((await get(`${API}/dags?token=${jwt}`)).status, 401);
  assert.equal((await get(`${API}/${jwt}`)).status, 404);
  assert.equal((await get(`/${built.apiKeys.ci}`)).status, 200);
  assert.equal((await get(`${API}/dags`, { authorization: `Bearer ${built.apiKeys.ci}` })).status, 200);
  assert.equal((await get(`${API}/dags`, { authorization: `Bearer ${built.apiKeys.ci}x` })).status, 401);
  assert.equal((await get(`${API}/dags`, { authorization: `Basic ${Buffer.from(`ann:${PASSWORDS.ann}`).toString("base64")}` })).status, 401);
  assert.equal((await post(`${API}/auth/change-password`, { currentPassword: PASSWORDS.bob, newPassword: PASSWORDS.newAnn }, { authorization: `Bearer ${jwt}` })).status, 401);
  assert.equal((await post(`${API}/auth/change-password`, { currentPassword: PASSWORDS.ann, newPassword: PASSWORDS.newAnn }, { authorization: `Bearer ${jwt}` })).status, 200);
  assert.equal((await get(`${API}/auth/me`, { authorization: `Bearer ${jwt}` })).status, 401);

  const body = JSON.stringify({ payload: { x: 1 } });
  const signature = `sha256=${createHmac("sha256", built.hmacSecrets.hello!).update(body).digest("hex")}`;
  const hook = (sig: string) =>
    fetch(`${url}${API}/webhooks/hello`, { method: "POST", headers: { authorization: `Bearer ${built.webhookTokens.hello}`, "x-dagu-signature": sig }, body }).then((r) => r.status);
  assert.equal(await hook(signature), 200);
  assert.equal(await hook(`sha256=${"0".repeat(64)}`), 401);

  // A refused document carrying a secret-looking value where a hash belongs.
  const bad = structuredClone(built.credentials);
  bad.generation += 1;
  bad.users[0]!.passwordHash = PLANTED_IN_BAD_DOCUMENT;
  await writeFile(join(dir, "credentials.json"), JSON.stringify(bad));
  await eventually("the refusal is logged", async () => sidecar.output().includes("credentials refused"), 5_000, 50);
  await sidecar.stop();

  const output = sidecar.output();
  assert.ok(output.split("\n").filter((l) => l.includes('"audit"')).length >= 15, "the audit lines are there");
  const planted: Record<string, string> = {
    ...Object.fromEntries(Object.entries(PASSWORDS).map(([k, v]) => [`password ${k}`, v])),
    jwt,
    "jwt signature": jwt.split(".")[2]!,
    "api key": built.apiKeys.ci!,
    "api key body": built.apiKeys.ci!.slice("dagu_".length),
    "password hash": built.credentials.users[0]!.passwordHash!,
    "password hash (salt and digest)": built.credentials.users[0]!.passwordHash!.split("$").slice(-2).join("$"),
    "signing secret": built.signingSecret,
    "webhook token": built.webhookTokens.hello!,
    "hmac secret": built.hmacSecrets.hello!,
    "api key digest": built.credentials.apiKeys[0]!.digest,
    "value in a refused document": PLANTED_IN_BAD_DOCUMENT,
    "basic credential": Buffer.from(`ann:${PASSWORDS.ann}`).toString("base64"),
  };
  const found = Object.entries(planted).filter(([, secret]) => output.includes(secret)).map(([name]) => name);
  assert.deepEqual(found, [], `secrets found in the sidecar's output:\n${found.join("\n")}`);
});
