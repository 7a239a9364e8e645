#!/usr/bin/env node
// `dagu-auth <command>`: one image, one CLI. Each command lives in its own module and is loaded only
// when called, so `dagu-auth sidecar` never loads the operator's Kubernetes client and vice versa.
type Command = (argv: readonly string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  operator: {
    summary: "the controllers that turn DaguAuth, DaguUser, DaguApiKey and DaguWebhook into credentials",
    load: async () => (await import("./operator/main.ts")).runOperator,
  },
  sidecar: {
    summary: "the authenticating proxy in front of Dagu",
    load: async () => (await import("./sidecar/main.ts")).runSidecar,
  },
  convert: {
    summary: "turn Dagu's auth: configuration (file and/or DAGU_AUTH_* variables) into a DaguAuth and its Secrets",
    load: async () => (await import("./convert/main.ts")).runConvert,
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: dagu-auth <command> [options]\n\ncommands:\n${lines.join("\n")}\n\nRun dagu-auth <command> --help for a command's options.`;
}

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`dagu-auth: unknown command ${JSON.stringify(name)}\n\n${usage()}\n`);
    return 2;
  }
  return (await command.load())(rest);
}

process.exitCode = await main(process.argv.slice(2));
