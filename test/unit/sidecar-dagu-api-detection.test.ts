// Which Dagu API the sidecar fronts, decided by the prefix that answers with a health document (the
// answers below are the shapes real Dagus give; the integration tests detect the real v2.15.1 and v1.30.3).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { detectDaguApi, type HealthProbe } from "../../src/sidecar/routes/dagu-api.ts";

const health = (version?: string) => ({ status: 200, body: JSON.stringify({ status: "healthy", ...(version === undefined ? {} : { version }) }) });
const indexPage = { status: 200, body: "<!DOCTYPE html><html><head><title>Dagu</title></head></html>" };
const notFound = { status: 404, body: "404 page not found" };

/** A probe answering from a table of paths (anything else: not reachable). */
function upstream(answers: Record<string, { status: number; body: string }>): HealthProbe & { asked: string[] } {
  const asked: string[] = [];
  const probe = async (path: string) => {
    asked.push(path);
    return answers[path];
  };
  return Object.assign(probe, { asked });
}

describe("Dagu API detection", () => {
  test("Dagu 2 built from source (version 0.0.0; its UI answers /api/v2/health with the page): /api/v1", async () => {
    assert.equal(await detectDaguApi(upstream({ "/api/v2/health": indexPage, "/api/v1/health": health("0.0.0") })), "v1");
  });

  test("Dagu 2 whatever its version string says, or without one, or headless (404 on /api/v2): /api/v1", async () => {
    for (const version of ["2.15.1", "v2.15.1", "dev", "1.0.0", undefined]) {
      assert.equal(await detectDaguApi(upstream({ "/api/v2/health": indexPage, "/api/v1/health": health(version) })), "v1", String(version));
    }
    assert.equal(await detectDaguApi(upstream({ "/api/v2/health": notFound, "/api/v1/health": health("2.15.1") })), "v1");
  });

  test("Dagu 1 answers on /api/v2 (and on its legacy /api/v1): /api/v2, whatever its version string says", async () => {
    for (const version of ["1.30.3", "0.0.0", "dev", undefined]) {
      const probe = upstream({ "/api/v2/health": health(version), "/api/v1/health": health(version) });
      assert.equal(await detectDaguApi(probe), "v2", String(version));
      assert.deepEqual(probe.asked, ["/api/v2/health"], "the /api/v2 answer decides");
    }
  });

  test("a server answering on both that says 2.x on /api/v2 is taken as Dagu 2; alone on /api/v2 it stays /api/v2", async () => {
    assert.equal(await detectDaguApi(upstream({ "/api/v2/health": health("2.16.0"), "/api/v1/health": health("2.16.0") })), "v1");
    assert.equal(await detectDaguApi(upstream({ "/api/v2/health": health("2.16.0"), "/api/v1/health": notFound })), "v2");
  });

  test("no health document on either prefix: an error naming both, so the sidecar keeps retrying", async () => {
    const cases: Record<string, { status: number; body: string }>[] = [{}, { "/api/v2/health": indexPage, "/api/v1/health": indexPage }, { "/api/v1/health": { status: 503, body: "{}" } }, { "/api/v1/health": { status: 200, body: '{"version":"2.15.1"}' } }];
    for (const answers of cases) {
      await assert.rejects(detectDaguApi(upstream(answers)), /neither \/api\/v2\/health \(Dagu 1\.x\) nor \/api\/v1\/health \(Dagu 2\.x\)/);
    }
  });
});

test("detection probes under the base path, and says so when nothing answers there", async () => {
  const asked: string[] = [];
  const probe: HealthProbe = async (path) => {
    asked.push(path);
    return path === "/dagu/api/v1/health" ? { status: 200, body: JSON.stringify({ status: "healthy", version: "2.15.1" }) } : { status: 404, body: "" };
  };
  assert.equal(await detectDaguApi(probe, "/dagu"), "v1");
  assert.deepEqual(asked, ["/dagu/api/v2/health", "/dagu/api/v1/health"]);
  await assert.rejects(detectDaguApi(probe), /neither \/api\/v2\/health .* --dagu-base-path/);
});
