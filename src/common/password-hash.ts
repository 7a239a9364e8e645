// argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1). The native
// argon2 binding hashes on libuv's thread pool, so the event loop never blocks.
import argon2 from "argon2";
import pLimit from "p-limit";

export const ARGON2_OPTIONS = {
  type: argon2.argon2id,
  memoryCost: 19 * 1024,
  timeCost: 2,
  parallelism: 1,
} as const;

/** Dagu refuses passwords shorter than this (change-password and user creation). */
export const MIN_PASSWORD_LENGTH = 8;
/**
 * The longest username and password a login may present (the login body, HTTP Basic). Longer ones are
 * refused before the throttle: its keys hold the username, and a Basic header may carry kilobytes.
 */
export const MAX_USERNAME_LENGTH = 256;
export const MAX_PASSWORD_LENGTH = 1024;

export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, ARGON2_OPTIONS);
}

/**
 * False (never a throw) for a malformed hash: a bad stored hash must fail closed. No hash (a user who
 * only signs in through SSO) costs the dummy's time and is false, like an unknown user.
 */
export async function verifyPassword(hash: string | undefined, password: string): Promise<boolean> {
  if (hash === undefined) return verifyDummy(password);
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | undefined;
const dummy = () => (dummyHash ??= hashPassword("dagu-auth-dummy-password-for-timing"));

/** Computes the dummy hash now (at sidecar start), so the first unknown-user login costs one hash like any other. */
export async function prepareDummyHash(): Promise<void> {
  await dummy();
}

/**
 * Verifies against a fixed hash so that an unknown user costs as much as a known one
 * (no username enumeration by timing). Always false.
 */
export async function verifyDummy(password: string): Promise<false> {
  await verifyPassword(await dummy(), password);
  return false;
}

// Process-wide bound on password verifications. Two at a time leaves libuv's pool (4 threads by
// default) to the file reads and DNS lookups that share it; at most 32 wait (~1 s of work), so a flood
// of distinct usernames, which the per-key throttle cannot stop, cannot queue hashes without bound.
export const VERIFY_CONCURRENCY = 2;
export const VERIFY_QUEUE_LIMIT = 32;
/** Retry-After for a check turned away because the queue is full: it drains in about a second. */
export const VERIFY_BUSY_RETRY_SECONDS = 1;
const verifications = pLimit(VERIFY_CONCURRENCY);

/**
 * Runs `verify` (a password check) when one of the process's verification slots is free; undefined,
 * decided at once and without running it, when VERIFY_QUEUE_LIMIT checks already wait.
 */
export function boundedVerification<T>(verify: () => Promise<T>): Promise<T> | undefined {
  // Full when every slot is busy and VERIFY_QUEUE_LIMIT more already wait.
  if (verifications.activeCount + verifications.pendingCount >= VERIFY_CONCURRENCY + VERIFY_QUEUE_LIMIT) return undefined;
  return verifications(verify);
}
