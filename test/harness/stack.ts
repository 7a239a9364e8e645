// A real Dagu, optionally a recording forwarder, and the real sidecar in front, with a credentials file of
// known secrets: what most sidecar integration tests start in `before` and stop in `after`. The API
// prefix is the Dagu's own (`dagu.api`: Dagu 1.x /api/v2, Dagu 2.x /api/v1), so tests stay version-neutral.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDagu, type DaguInstance } from "./dagu.ts";
import { startTcpTap, type TcpTap } from "./raw-http.ts";
import { startRecorder, startSidecar, type Recorder, type SidecarInstance } from "./sidecar.ts";
import { buildCredentials, type TestCredentials } from "../../dev/known-credentials.ts";

export interface SidecarStack {
  readonly dagu: DaguInstance;
  /** Between the sidecar and Dagu when asked for: what reached Dagu. */
  readonly recorder: Recorder | undefined;
  /** Right behind the sidecar when asked for: every byte the sidecar sent towards Dagu. */
  readonly tap: TcpTap | undefined;
  readonly sidecar: SidecarInstance;
  readonly built: TestCredentials;
  /** The credentials file the sidecar reads (in a temporary directory of its own). */
  readonly credentialsFile: string;
  /** Dagu's API prefix, and the --dagu-api value that names it. */
  readonly prefix: "/api/v1" | "/api/v2";
  readonly daguApi: "v1" | "v2";
  stop(): Promise<void>;
}


export async function startSidecarStack(options: {
  credentials: Parameters<typeof buildCredentials>[0];
  dags?: Record<string, string>;
  basePath?: string;
  /** Dagu v1.30.3 instead of v2.15.1 (its API under /api/v2). */
  dagu1?: boolean;
  recorder?: boolean;
  /** A TCP tap between the sidecar and the recorder (or Dagu). */
  tap?: boolean;
  /** More sidecar arguments; `forceApi` adds --dagu-api for the Dagu in use. */
  sidecarArgs?: string[];
  forceApi?: boolean;
}): Promise<SidecarStack> {
  const dagu = await startDagu({ dags: options.dags, basePath: options.basePath, dagu1: options.dagu1 });
  let recorder: Recorder | undefined;
  let tap: TcpTap | undefined;
  let dir: string | undefined;
  try {
    const api = { prefix: dagu.api, daguApi: dagu.api === "/api/v1" ? "v1" : "v2" } as const;
    recorder = options.recorder ? await startRecorder(dagu.url) : undefined;
    tap = options.tap ? await startTcpTap(recorder?.url ?? dagu.url) : undefined;
    dir = await mkdtemp(join(tmpdir(), "sidecar-stack-"));
    const built = await buildCredentials(options.credentials);
    const credentialsFile = join(dir, "credentials.json");
    await writeFile(credentialsFile, JSON.stringify(built.credentials));
    const args = ["--credentials-file", credentialsFile, ...(options.forceApi ? ["--dagu-api", api.daguApi] : []), ...(options.sidecarArgs ?? [])];
    const sidecar = await startSidecar({ upstream: tap?.url ?? recorder?.url ?? dagu.url, args });
    const tmp = dir;
    return {
      dagu,
      recorder,
      tap,
      sidecar,
      built,
      credentialsFile,
      ...api,
      stop: async () => {
        await sidecar.stop();
        await tap?.stop();
        await recorder?.stop();
        await dagu.stop();
        await rm(tmp, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await tap?.stop();
    await recorder?.stop();
    await dagu.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
