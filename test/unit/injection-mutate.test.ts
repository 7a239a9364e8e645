// The injection's mutation as a pure function: what changes in a pod and what does not, which pods are
// refused and why, and that a mutated pod mutated again is unchanged (the webhook is reinvoked).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { InjectionConfig } from "../../src/operator/injection/config.ts";
import { daguRole, flagValue, withoutAddressFlags } from "../../src/operator/injection/dagu-container.ts";
import { diffPaths } from "../../src/operator/injection/json-patch.ts";
import { DAGU_HEALTH_PATH, injectPod, SIDECAR_CONTAINER, TOKEN_VOLUME, type InjectionTarget } from "../../src/operator/injection/mutate.ts";
import { Pod, type Container } from "../../src/operator/injection/pod.ts";
import { parseSidecarArgs } from "../../src/sidecar/options.ts";

const config = InjectionConfig.parse({ sidecar: { image: "registry.example.com/dagu-auth:1.0.0" } });
const target: InjectionTarget = { namespace: "dagu", authName: "dagu", serviceAccountName: "dagu-sidecar" };

/** The UI pod of Dagu's own chart (charts/dagu), as its templates render it: standalone start-all. */
function chartPod(): Pod {
  return Pod.parse({
    metadata: { generateName: "dagu-ui-5d9c-", labels: { "app.kubernetes.io/name": "dagu" }, annotations: { "auth.dagu.dev/inject": "dagu" } },
    spec: {
      enableServiceLinks: false,
      serviceAccountName: "rel-dagu",
      serviceAccount: "rel-dagu",
      securityContext: { fsGroup: 1000 },
      containers: [
        {
          name: "ui",
          image: "ghcr.io/dagucloud/dagu:2.15.1",
          args: ["dagu", "start-all", "--config", "/etc/dagu/dagu.yaml"],
          env: [
            { name: "DAGU_HOME", value: "/data" },
            { name: "DAGU_PORT", value: "8080" },
          ],
          ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }],
          volumeMounts: [
            { name: "data", mountPath: "/data" },
            { name: "config", mountPath: "/etc/dagu" },
            { name: "kube-api-access-x7k2p", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true },
          ],
          livenessProbe: { httpGet: { path: "/api/v1/health", port: "http", scheme: "HTTP" }, initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 },
          readinessProbe: { httpGet: { path: "/api/v1/health", port: "http", scheme: "HTTP" }, initialDelaySeconds: 5, periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 },
        },
      ],
      volumes: [
        { name: "data", persistentVolumeClaim: { claimName: "rel-dagu-data" } },
        { name: "config", configMap: { name: "rel-dagu-config" } },
        {
          name: "kube-api-access-x7k2p",
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { path: "token", expirationSeconds: 3607 } },
              { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } },
              { downwardAPI: { items: [{ path: "namespace", fieldRef: { apiVersion: "v1", fieldPath: "metadata.namespace" } }] } },
            ],
          },
        },
      ],
    },
  });
}

function injected(pod: Pod, t: InjectionTarget = target): Pod {
  const r = injectPod(pod, t, config);
  assert.equal(r.kind, "inject", r.kind === "refuse" ? r.reason : "");
  return (r as { pod: Pod }).pod;
}

const container = (pod: Pod, name: string): Container => pod.spec.containers.find((c) => c.name === name)!;
const env = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value;

test("Dagu's chart pod: the sidecar takes port http/8080, Dagu moves to 127.0.0.1 with auth off, probes ask Dagu through the sidecar", () => {
  const before = chartPod();
  const pod = injected(before);
  const dagu = container(pod, "ui");
  const sidecar = container(pod, SIDECAR_CONTAINER);
  assert.deepEqual(sidecar.ports?.[0], { name: "http", containerPort: 8080, protocol: "TCP" }, "same name and number: the Service's targetPort is unchanged");
  assert.equal(dagu.ports, undefined, "Dagu declares no port");
  assert.equal(env(dagu, "DAGU_HOST"), "127.0.0.1");
  assert.equal(env(dagu, "DAGU_PORT"), "18080");
  assert.equal(env(dagu, "DAGU_AUTH_MODE"), "none");
  assert.deepEqual(dagu.env?.map((e) => e.name), ["DAGU_HOME", "DAGU_PORT", "DAGU_HOST", "DAGU_AUTH_MODE"], "DAGU_PORT replaced in place");
  assert.deepEqual(dagu.args, ["dagu", "start-all", "--config", "/etc/dagu/dagu.yaml"]);
  assert.ok(sidecar.args?.includes("--upstream") && sidecar.args[sidecar.args.indexOf("--upstream") + 1] === "http://127.0.0.1:18080");
  assert.equal(sidecar.args![sidecar.args!.indexOf("--listen") + 1], "0.0.0.0:8080");
  assert.equal(sidecar.args![sidecar.args!.indexOf("--metrics-listen") + 1], "0.0.0.0:9090");
  assert.deepEqual(dagu.livenessProbe, { httpGet: { path: DAGU_HEALTH_PATH, port: 9090, scheme: "HTTP" }, initialDelaySeconds: 30, periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3, successThreshold: 1 });
  assert.equal(dagu.readinessProbe?.httpGet?.port, 9090);
  assert.equal(sidecar.readinessProbe?.httpGet?.path, "/readyz");
  // Identity: the DaguAuth's ServiceAccount, no automount, the token only in the sidecar.
  assert.equal(pod.spec.serviceAccountName, "dagu-sidecar");
  assert.equal(pod.spec.serviceAccount, "dagu-sidecar");
  assert.equal(pod.spec.automountServiceAccountToken, false);
  assert.ok(!pod.spec.volumes!.some((v) => v.name.startsWith("kube-api-access-")), "the automounted token volume is gone");
  assert.ok(!dagu.volumeMounts!.some((m) => m.mountPath.startsWith("/var/run/secrets")), "Dagu mounts no token");
  assert.deepEqual(sidecar.volumeMounts?.find((m) => m.name === TOKEN_VOLUME), { name: TOKEN_VOLUME, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true });
  const token = pod.spec.volumes!.find((v) => v.name === TOKEN_VOLUME)!;
  assert.deepEqual(JSON.parse(JSON.stringify(token.projected!.sources)).map((s: object) => Object.keys(s)[0]), ["serviceAccountToken", "configMap", "downwardAPI"]);
  assert.equal(pod.metadata.annotations?.["auth.dagu.dev/injected"], "dagu");
  assert.equal(pod.metadata.annotations?.["kubectl.kubernetes.io/default-container"], "ui");
  // The sidecar follows the restricted Pod Security Standard.
  assert.deepEqual(sidecar.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] }, seccompProfile: { type: "RuntimeDefault" } });
  assert.deepEqual(sidecar.command, ["dagu-auth", "sidecar"]);
  assert.equal(sidecar.image, "registry.example.com/dagu-auth:1.0.0");
  // Untouched: the other volumes and fields.
  assert.deepEqual(pod.spec.volumes!.filter((v) => v.name === "data" || v.name === "config"), before.spec.volumes!.filter((v) => v.name === "data" || v.name === "config"));
  assert.equal((pod.spec as Record<string, unknown>)["enableServiceLinks"], false);
  // The input is not modified.
  assert.equal(before.spec.containers.length, 1);
});

test("with spec.tls the sidecar serves the DaguAuth's TLS Secret; its probes stay on the plain metrics port", () => {
  const pod = injected(chartPod(), { ...target, tlsSecretName: "dagu-tls" });
  const sidecar = container(pod, SIDECAR_CONTAINER);
  assert.equal(sidecar.args![sidecar.args!.indexOf("--tls-secret") + 1], "dagu-tls");
  assert.equal(sidecar.readinessProbe?.httpGet?.scheme, "HTTP");
});

test("with spec.basePath: the sidecar gets --dagu-base-path (args it parses), Dagu gets DAGU_BASE_PATH; idempotent", () => {
  const based = { ...target, basePath: "/dagu" };
  const pod = injected(chartPod(), based);
  const sidecar = container(pod, SIDECAR_CONTAINER);
  assert.equal(sidecar.args![sidecar.args!.indexOf("--dagu-base-path") + 1], "/dagu");
  assert.equal(parseSidecarArgs(sidecar.args!, { POD_NAMESPACE: "dagu" }).daguBasePath, "/dagu");
  assert.equal(env(container(pod, "ui"), "DAGU_BASE_PATH"), "/dagu");
  assert.deepEqual(injected(pod, based), pod);
  // Without it: neither.
  const plain = injected(chartPod());
  assert.equal(container(plain, SIDECAR_CONTAINER).args!.includes("--dagu-base-path"), false);
  assert.equal(env(container(plain, "ui"), "DAGU_BASE_PATH"), undefined);
});

test("a container's own DAGU_BASE_PATH that is not the DaguAuth's spec.basePath is refused, naming both", () => {
  const withEnv = (value: string) => {
    const pod = chartPod();
    pod.spec.containers[0]!.env!.push({ name: "DAGU_BASE_PATH", value });
    return pod;
  };
  for (const [pod, t] of [[withEnv("/dagu"), target], [withEnv("/other"), { ...target, basePath: "/dagu" }]] as const) {
    const r = injectPod(pod, t, config);
    assert.equal(r.kind, "refuse");
    assert.match((r as { reason: string }).reason, /container ui sets DAGU_BASE_PATH=\/(dagu|other): Dagu's base path is DaguAuth dagu's spec.basePath \((none|\/dagu)\)/);
  }
  assert.equal(injectPod(withEnv("/dagu"), { ...target, basePath: "/dagu" }, config).kind, "inject");
  assert.equal(injectPod(withEnv(""), target, config).kind, "inject");
});

test("idempotent: a mutated pod mutated again is the same pod, and gives an empty patch", () => {
  const once = injected(chartPod());
  const twice = injected(once);
  assert.deepEqual(twice, once);
  assert.deepEqual(diffPaths(once, twice), []);
});

test("idempotent for any port layout, flag form and probe (property)", () => {
  const portArb = fc.integer({ min: 1024, max: 20000 });
  fc.assert(
    fc.property(portArb, fc.array(portArb, { maxLength: 3 }), fc.constantFrom("declared", "env", "--port", "--port=", "-p", "-p="), fc.boolean(), (port, more, form, named) => {
      // With one declared port, that is Dagu's; with more, the flag or DAGU_PORT tells.
      const others = form === "declared" ? [] : more.filter((o) => o !== port);
      const args = ["dagu", "start-all"];
      if (form === "--port" || form === "-p") args.push(form, String(port));
      else if (form === "--port=" || form === "-p=") args.push(`${form}${port}`);
      const variables = form === "env" ? [{ name: "DAGU_PORT", value: String(port) }] : [];
      const ports = [{ ...(named ? { name: "web" } : {}), containerPort: port, protocol: "TCP" }, ...others.map((o, i) => ({ name: `p${i}`, containerPort: o, protocol: "TCP" }))];
      const pod = Pod.parse({
        metadata: { labels: { "auth.dagu.dev/inject": "dagu" } },
        spec: { containers: [{ name: "dagu", image: "x/dagu:2", args, env: variables, ports, readinessProbe: { tcpSocket: { port: named ? "web" : port } } }] },
      });
      const once = injected(pod);
      const s = container(once, SIDECAR_CONTAINER);
      const d = container(once, "dagu");
      const daguPort = Number(env(d, "DAGU_PORT"));
      const metrics = s.ports![1]!.containerPort;
      assert.equal(s.ports![0]!.containerPort, port, "the sidecar listens where Dagu did");
      assert.ok(![port, metrics, ...others].includes(daguPort), "Dagu's new port collides with nothing declared");
      assert.ok(![port, ...others].includes(metrics));
      const egress = Number(s.args![s.args!.indexOf("--egress-listen") + 1]!.split(":")[1]);
      assert.ok(![port, metrics, daguPort, ...others].includes(egress), "the egress port collides with nothing");
      assert.equal(flagValue(d, "port"), undefined, "no --port flag left to outrank DAGU_PORT");
      assert.equal(d.readinessProbe?.httpGet?.port, metrics);
      assert.deepEqual(injected(once), once);
    }),
    { numRuns: 200 },
  );
});

test("the Dagu server container is recognized by its command, through an init, or by the image's default", () => {
  const c = (o: Partial<Container>): Container => ({ name: "c", ...o });
  assert.deepEqual(daguRole(c({ command: ["dagu", "start-all"] })), { kind: "server", subcommand: "start-all" });
  assert.deepEqual(daguRole(c({ command: ["/usr/local/bin/tini", "--", "/usr/bin/dagu"], args: ["server", "-d", "/dags"] })), { kind: "server", subcommand: "server" });
  assert.deepEqual(daguRole(c({ args: ["dagu", "--config", "/etc/dagu.yaml", "start-all"] })), { kind: "server", subcommand: "start-all" });
  assert.deepEqual(daguRole(c({ image: "ghcr.io/dagucloud/dagu:2.15.1" })), { kind: "server", subcommand: "start-all" }, "the image's CMD is dagu start-all");
  assert.deepEqual(daguRole(c({ image: "ghcr.io/dagucloud/dagu@sha256:abc" })), { kind: "server", subcommand: "start-all" });
  assert.deepEqual(daguRole(c({ args: ["dagu", "scheduler"] })), { kind: "component", subcommand: "scheduler" });
  assert.deepEqual(daguRole(c({ command: ["sh", "-c", "dagu start-all"] })), { kind: "other" }, "a shell wrapper is not read");
  assert.deepEqual(daguRole(c({ image: "registry/workflows:1" })), { kind: "other" });
  assert.deepEqual(daguRole(c({ command: ["dagu", "start", "hello.yaml"] })), { kind: "other" });
});

test("--host and --port flags are removed in every pflag form, with their values, and nothing else", () => {
  const cases: [string[], string[]][] = [
    [["dagu", "start-all", "--host", "0.0.0.0", "--port", "9000", "-d", "/dags"], ["dagu", "start-all", "-d", "/dags"]],
    [["dagu", "server", "--host=0.0.0.0", "--port=9000"], ["dagu", "server"]],
    [["dagu", "server", "-s", "::", "-p9000", "--dags", "/d"], ["dagu", "server", "--dags", "/d"]],
    [["dagu", "server", "-s=0.0.0.0", "-p", "9000"], ["dagu", "server"]],
  ];
  for (const [args, want] of cases) assert.deepEqual(withoutAddressFlags({ name: "d", args }).args, want, args.join(" "));
  // Split between command and args.
  const split = withoutAddressFlags({ name: "d", command: ["dagu", "start-all", "--port"], args: ["9000", "--dags", "/d"] });
  assert.deepEqual(split, { command: ["dagu", "start-all"], args: ["--dags", "/d"] });
  assert.equal(flagValue({ name: "d", args: ["dagu", "start-all", "-p", "9000", "--port=9100"] }, "port"), "9100", "the last one wins");
});

test("refused with the reason: no Dagu server, two, a shell wrapper, hostNetwork, shared PIDs, Dagu's own TLS, a foreign token", () => {
  const base = (spec: Record<string, unknown>) => Pod.parse({ metadata: {}, spec: { containers: [{ name: "dagu", args: ["dagu", "start-all"] }], ...spec } });
  const cases: [string, Pod, RegExp][] = [
    ["no server", base({ containers: [{ name: "web", image: "nginx" }] }), /no container runs Dagu's server.*web/],
    ["a shell wrapper", base({ containers: [{ name: "d", image: "img", command: ["sh", "-c", "dagu start-all"] }] }), /not through a shell/],
    ["two servers", base({ containers: [{ name: "a", args: ["dagu", "start-all"] }, { name: "b", args: ["dagu", "server"] }] }), /more than one container runs Dagu's server \(a, b\)/],
    ["hostNetwork", base({ hostNetwork: true }), /hostNetwork/],
    ["shareProcessNamespace", base({ shareProcessNamespace: true }), /process namespace/],
    ["Dagu's TLS", base({ containers: [{ name: "dagu", args: ["dagu", "start-all"], env: [{ name: "DAGU_CERT_FILE", value: "/tls/c" }] }] }), /sets DAGU_CERT_FILE/],
    [
      "a token mounted into Dagu",
      base({
        containers: [{ name: "dagu", args: ["dagu", "start-all"], volumeMounts: [{ name: "mine", mountPath: "/t" }] }],
        volumes: [{ name: "mine", projected: { sources: [{ serviceAccountToken: { path: "t" } }] } }],
      }),
      /container dagu mounts a ServiceAccount token \(volume mine\)/,
    ],
  ];
  for (const [what, pod, reason] of cases) {
    const r = injectPod(pod, target, config);
    assert.equal(r.kind, "refuse", what);
    assert.match((r as { reason: string }).reason, reason, what);
  }
  // A token for another audience (not the API server's) is not the sidecar's identity.
  const vault = base({
    containers: [{ name: "dagu", args: ["dagu", "start-all"], volumeMounts: [{ name: "vault", mountPath: "/t" }] }],
    volumes: [{ name: "vault", projected: { sources: [{ serviceAccountToken: { path: "t", audience: "vault" } }] } }],
  });
  assert.equal(injectPod(vault, target, config).kind, "inject");
});

test("Dagu's scheduler, worker and coordinator pods are skipped with a warning: they serve no UI or API", () => {
  const pod = Pod.parse({ metadata: {}, spec: { containers: [{ name: "scheduler", args: ["dagu", "scheduler", "--config", "/etc/dagu/dagu.yaml"] }] } });
  const r = injectPod(pod, target, config);
  assert.equal(r.kind, "skip");
  assert.match((r as { warnings: string[] }).warnings[0]!, /dagu scheduler` serves no web UI or API/);
});

test("ports: Dagu's declared port moves to the sidecar; others stay; the new ports avoid every declared one", () => {
  const pod = Pod.parse({
    metadata: {},
    spec: {
      containers: [
        { name: "dagu", image: "dagu:2", args: ["dagu", "start-all"], env: [{ name: "DAGU_PORT", value: "9090" }], ports: [{ name: "web", containerPort: 9090 }, { name: "grpc", containerPort: 50055 }] },
        { name: "exporter", image: "e", ports: [{ containerPort: 18080 }] },
      ],
    },
  });
  const out = injected(pod);
  const s = container(out, SIDECAR_CONTAINER);
  assert.deepEqual(s.ports![0], { name: "web", containerPort: 9090, protocol: "TCP" });
  assert.equal(s.ports![1]!.containerPort, 9091, "9090 is taken by Dagu's (now the sidecar's) port");
  assert.equal(env(container(out, "dagu"), "DAGU_PORT"), "18081", "18080 is the exporter's");
  assert.deepEqual(container(out, "dagu").ports, [{ name: "grpc", containerPort: 50055 }]);
  // Without DAGU_PORT, a --port flag or a single declared port: Dagu's default 8080.
  const bare = injected(Pod.parse({ metadata: {}, spec: { containers: [{ name: "d", args: ["dagu", "start-all"] }] } }));
  assert.deepEqual(container(bare, SIDECAR_CONTAINER).ports![0], { containerPort: 8080, protocol: "TCP" });
});

test("the JSON patch names only the fields that changed", () => {
  const before = chartPod();
  const after = injected(before);
  const ops = diffPaths(before, after);
  assert.deepEqual(ops.map((o) => o.path).sort(), ["/metadata/annotations", "/spec/automountServiceAccountToken", "/spec/containers", "/spec/serviceAccount", "/spec/serviceAccountName", "/spec/volumes"]);
  assert.ok(ops.every((o) => o.op === "add"));
});
