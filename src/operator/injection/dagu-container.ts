// Which container of a pod is Dagu's server, read from how it is started: the `dagu` executable (any
// path, possibly behind an init such as tini) followed by `start-all` or `server`, in the container's
// command and args, or the Dagu image's own default command (`dagu start-all`) when neither is set.
// A shell wrapper (`sh -c "dagu start-all"`) is not read: what runs cannot be known, so such a pod is
// refused rather than guessed at.
import type { Container } from "./pod.ts";

/** Dagu's subcommands that serve the web UI and the API (the ones the sidecar protects). */
const SERVER_COMMANDS = new Set(["start-all", "server"]);
/** Dagu's subcommands that run beside a server and serve no UI or API of their own. */
const COMPONENT_COMMANDS = new Set(["scheduler", "worker", "coordinator"]);

export type DaguRole = { kind: "server"; subcommand: string } | { kind: "component"; subcommand: string } | { kind: "other" };

const basename = (token: string) => token.slice(token.lastIndexOf("/") + 1);

/** The image's repository name without registry, tag or digest: `ghcr.io/dagucloud/dagu:2.15.1` -> `dagu`. */
function imageName(image: string | undefined): string {
  const noDigest = (image ?? "").split("@")[0]!;
  const last = noDigest.slice(noDigest.lastIndexOf("/") + 1);
  return last.split(":")[0]!;
}

/** The tokens a container starts with, and where the `dagu` executable is among them. */
export function daguInvocation(c: Container): { tokens: string[]; at: number } | undefined {
  const tokens = [...(c.command ?? []), ...(c.args ?? [])];
  if (tokens.length === 0) return imageName(c.image) === "dagu" ? { tokens: ["dagu", "start-all"], at: 0 } : undefined;
  const at = tokens.findIndex((t) => basename(t) === "dagu");
  return at < 0 ? undefined : { tokens, at };
}

export function daguRole(c: Container): DaguRole {
  const inv = daguInvocation(c);
  if (!inv) return { kind: "other" };
  // The subcommand is the first known one after the executable (global flags may come first).
  for (const token of inv.tokens.slice(inv.at + 1)) {
    if (SERVER_COMMANDS.has(token)) return { kind: "server", subcommand: token };
    if (COMPONENT_COMMANDS.has(token)) return { kind: "component", subcommand: token };
  }
  return { kind: "other" };
}

const FLAG_FORMS = { host: ["--host", "-s"], port: ["--port", "-p"] } as const;

/**
 * The value of Dagu's `--host`/`-s` or `--port`/`-p` flag after the executable, in any of pflag's
 * forms (`--port 8080`, `--port=8080`, `-p 8080`, `-p=8080`, `-p8080`); the last one wins, as in pflag.
 */
export function flagValue(c: Container, flag: keyof typeof FLAG_FORMS): string | undefined {
  const inv = daguInvocation(c);
  if (!inv) return undefined;
  let value: string | undefined;
  walkFlags(inv.tokens.slice(inv.at + 1), flag, (v) => (value = v));
  return value;
}

/**
 * Removes Dagu's `--host` and `--port` flags (any form) from command and args: flags outrank the
 * environment in Dagu's configuration, and the pod's Dagu must listen where DAGU_HOST and DAGU_PORT say.
 */
export function withoutAddressFlags(c: Container): Pick<Container, "command" | "args"> {
  const inv = daguInvocation(c);
  if (!inv || (c.command === undefined && c.args === undefined)) return { command: c.command, args: c.args };
  const drop = new Set<number>();
  for (const flag of ["host", "port"] as const) walkFlags(inv.tokens, flag, (_v, indexes) => indexes.forEach((i) => drop.add(i)), inv.at + 1);
  const commandLength = c.command?.length ?? 0;
  const keep = (list: string[] | undefined, offset: number) => list?.filter((_t, i) => !drop.has(i + offset));
  return { command: keep(c.command, 0), args: keep(c.args, commandLength) };
}

function walkFlags(tokens: string[], flag: keyof typeof FLAG_FORMS, found: (value: string | undefined, indexes: number[]) => void, start = 0): void {
  const [long, short] = FLAG_FORMS[flag];
  for (let i = start; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === "--") return; // pflag stops reading flags here
    if (t === long || t === short) {
      const next = tokens[i + 1];
      const hasValue = next !== undefined && !next.startsWith("-");
      found(hasValue ? next : undefined, hasValue ? [i, i + 1] : [i]);
      if (hasValue) i++;
    } else if (t.startsWith(`${long}=`) || t.startsWith(`${short}=`)) {
      found(t.slice(t.indexOf("=") + 1), [i]);
    } else if (t.startsWith(short) && !t.startsWith("--") && t.length > short.length) {
      found(t.slice(short.length), [i]);
    }
  }
}
