// The HS256 keys login tokens are signed with. The newest key signs; a key that
// was replaced (a rotation of the generated key, or a changed referenced Secret)
// keeps verifying until its overlap ends, so logged-in users are not thrown out.
import { createHash } from "node:crypto";
import type { z } from "zod";
import type { SigningKey } from "../api/index.ts";
import { generateSecret } from "../common/tokens.ts";

type Key = z.infer<typeof SigningKey>;

export interface SigningKeysInput {
  /** Keys remembered in the operator state, newest first. */
  remembered: readonly Key[];
  rememberedRotation: number;
  /** Whether the newest remembered key came from a referenced Secret. */
  rememberedReferenced: boolean;
  /** The referenced secret (base64url of its bytes), when spec.builtin.token.secretRef is set. */
  referencedSecret?: string;
  rotationGeneration: number;
  overlapMs: number;
  now: Date;
}

export interface SigningKeysPlan {
  keys: Key[];
  activeKid: string;
  rotation: number;
  referenced: boolean;
}

/** A key id that reveals nothing about the key (a digest prefix). */
export function kidFor(secret: string): string {
  return createHash("sha256").update(`kid\n${secret}`).digest("base64url").slice(0, 16);
}

export function planSigningKeys(input: SigningKeysInput): SigningKeysPlan {
  const nowMs = input.now.getTime();
  const notAfter = new Date(nowMs + input.overlapMs).toISOString();
  const alive = (k: Key) => !k.notAfter || Date.parse(k.notAfter) > nowMs;
  const [newest, ...older] = input.remembered;

  let active: Key;
  let rotation = input.rememberedRotation;
  const retired: Key[] = older.filter(alive);
  if (input.referencedSecret !== undefined) {
    const kid = kidFor(input.referencedSecret);
    active = { kid, secret: input.referencedSecret };
    if (newest && newest.kid !== kid) retired.unshift({ ...newest, notAfter: newest.notAfter ?? notAfter });
  } else if (!newest || newest.notAfter || input.rememberedReferenced || input.rotationGeneration > input.rememberedRotation) {
    const secret = generateSecret();
    active = { kid: kidFor(secret), secret };
    rotation = input.rotationGeneration;
    if (newest && !newest.notAfter) retired.unshift({ ...newest, notAfter });
  } else {
    active = newest;
  }
  const keys = [active, ...retired.filter((k) => k.kid !== active.kid && alive(k))];
  return { keys, activeKid: active.kid, rotation, referenced: input.referencedSecret !== undefined };
}
