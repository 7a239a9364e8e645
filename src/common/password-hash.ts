// argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1). The native
// argon2 binding hashes on libuv's thread pool, so the event loop never blocks.
import argon2 from "argon2";

export const ARGON2_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19 * 1024,
  timeCost: 2,
  parallelism: 1,
} as const;

/** Dagu refuses passwords shorter than this (change-password and user creation). */
export const MIN_PASSWORD_LENGTH = 8;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/** False (never a throw) for a malformed hash: a bad stored hash must fail closed. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;
/**
 * Verifies against a fixed hash so that an unknown user costs as much as a known one
 * (no username enumeration by timing). Always false.
 */
export async function verifyDummy(password: string): Promise<false> {
  dummyHash ??= hashPassword("dagu-auth-dummy-password-for-timing");
  await verifyPassword(await dummyHash, password);
  return false;
}
