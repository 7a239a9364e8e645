// Where a standalone source keeps self-service password changes: in `--state-dir` (they survive a
// restart) or, without one, in memory (they last as long as the process; the CLI warns).
import type { PasswordChanges } from "../../api/credentials.ts";
import type { StateDir } from "./state-dir.ts";

export interface PasswordChangeLog {
  all(): PasswordChanges;
  record(userId: string, passwordHash: string, changedAt: string): Promise<void>;
}

export function memoryPasswordChangeLog(): PasswordChangeLog {
  let changes: PasswordChanges = {};
  return {
    all: () => changes,
    record: async (userId, passwordHash, changedAt) => {
      changes = { ...changes, [userId]: { passwordHash, changedAt } };
    },
  };
}

export function stateDirPasswordChangeLog(state: StateDir): PasswordChangeLog {
  return {
    all: () => state.current().passwordChanges,
    record: async (userId, passwordHash, changedAt) => {
      await state.update((s) => ({ ...s, passwordChanges: { ...s.passwordChanges, [userId]: { passwordHash, changedAt } } }));
    },
  };
}
