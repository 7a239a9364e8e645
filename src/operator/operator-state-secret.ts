// Reading the operator state from its Secret (see operator-state.ts). Parsed
// documents are memoized by resourceVersion: a thousand children reading the same
// unchanged Secret parse it once.
import { secretData } from "./context.ts";
import { OPERATOR_STATE_KEY, parseOperatorState, type OperatorState } from "./operator-state.ts";
import type { KubeObject } from "../common/kube/client.ts";

const memo = new WeakMap<KubeObject, OperatorState | Error | undefined>();

export function readOperatorState(secret: KubeObject | undefined): OperatorState | Error | undefined {
  if (!secret) return undefined;
  if (memo.has(secret)) return memo.get(secret);
  const parsed = parseOperatorState(secretData(secret)[OPERATOR_STATE_KEY]);
  memo.set(secret, parsed);
  return parsed;
}
