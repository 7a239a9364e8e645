// Fault injection for the fault suite (test/faults): the operator kills itself (SIGKILL, nothing flushed)
// at a named point, so a test can split two API calls a few milliseconds apart, which random kills almost
// never do. Armed only by the environment variable DAGU_AUTH_OPERATOR_FAILPOINT; the chart and the CLI
// have no option for it.
export const FAILPOINTS = ["after-credentials-write"] as const;
export type Failpoint = (typeof FAILPOINTS)[number];

const armed = process.env.DAGU_AUTH_OPERATOR_FAILPOINT;

export function failpoint(name: Failpoint): void {
  if (armed === name) process.kill(process.pid, "SIGKILL");
}
