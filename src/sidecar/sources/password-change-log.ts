// Where a standalone source keeps self-service password changes and the users single sign-on created:
// in `--state-dir` (they survive a restart) or, without one, in memory (they last as long as the
// process; the CLI warns).
import type { PasswordChanges, SsoUsers } from "../../api/credentials.ts";
import type { SsoUsersChange } from "../credentials/credential-source.ts";
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

export interface SsoUserLog {
  all(): SsoUsers;
  update<T>(change: SsoUsersChange<T>): Promise<T>;
}

export function memorySsoUserLog(): SsoUserLog {
  let users: SsoUsers = {};
  return {
    all: () => users,
    update: async (change) => {
      const next = change(users);
      if (next.users) users = next.users;
      return next.result;
    },
  };
}

export function stateDirSsoUserLog(state: StateDir): SsoUserLog {
  return {
    all: () => state.current().ssoUsers,
    update: async (change) => {
      let result: ReturnType<typeof change>["result"] | undefined;
      await state.update((s) => {
        const next = change(s.ssoUsers);
        result = next.result;
        return next.users ? { ...s, ssoUsers: next.users } : s;
      });
      return result as ReturnType<typeof change>["result"];
    },
  };
}
