// Plans the content of a Secret whose values the operator generates once and hands to
// a consumer: an API key for a CI job, a webhook token and HMAC secret for a sender, a
// generated user password. Values are generated only when missing or when the spec's
// rotation generation moves past the one recorded on the Secret; a rotated-out value
// stays (as `previous.<key>`) until its overlap ends, so both keep working meanwhile.
export const ROTATION_GENERATION_ANNOTATION = "auth.dagu.dev/rotation-generation";
export const ISSUED_AT_ANNOTATION = "auth.dagu.dev/issued-at";
export const PREVIOUS_NOT_AFTER_ANNOTATION = "auth.dagu.dev/previous-not-after";
export const PREVIOUS_PREFIX = "previous.";

export interface ExistingSecret {
  /** Decoded values. */
  data: Record<string, string>;
  annotations: Record<string, string>;
}

export interface GeneratedSecretPlan {
  data: Record<string, string>;
  annotations: Record<string, string>;
  /** False when the existing Secret already is the plan (nothing to write). */
  changed: boolean;
  /** The values in force. */
  current: Record<string, string>;
  /** Rotated-out values still accepted until `notAfter`. */
  previous?: { values: Record<string, string>; notAfter: string };
  issuedAt: string;
  rotationGeneration: number;
}

export interface PlanOptions {
  existing: ExistingSecret | undefined;
  /** The keys to hold and how to generate each. */
  fields: Record<string, () => string>;
  rotationGeneration: number;
  overlapMs: number;
  now: Date;
}

export function planGeneratedSecret(opts: PlanOptions): GeneratedSecretPlan {
  const { existing, fields, now } = opts;
  const nowIso = now.toISOString();
  const recordedGeneration = Number.parseInt(existing?.annotations[ROTATION_GENERATION_ANNOTATION] ?? "0", 10) || 0;
  const rotate = existing !== undefined && opts.rotationGeneration > recordedGeneration;
  let changed = existing === undefined || rotate;

  const current: Record<string, string> = {};
  for (const [key, generate] of Object.entries(fields)) {
    const kept = rotate ? undefined : existing?.data[key];
    if (kept !== undefined && kept !== "") current[key] = kept;
    else {
      current[key] = generate();
      changed = true;
    }
  }

  let previous: GeneratedSecretPlan["previous"];
  if (rotate) {
    const values = Object.fromEntries(Object.keys(fields).flatMap((k) => (existing.data[k] ? [[k, existing.data[k]]] : [])));
    if (Object.keys(values).length > 0) previous = { values, notAfter: new Date(now.getTime() + opts.overlapMs).toISOString() };
  } else if (existing) {
    const notAfter = existing.annotations[PREVIOUS_NOT_AFTER_ANNOTATION];
    const values = Object.fromEntries(
      Object.entries(existing.data)
        .filter(([k]) => k.startsWith(PREVIOUS_PREFIX))
        .map(([k, v]) => [k.slice(PREVIOUS_PREFIX.length), v]),
    );
    if (notAfter && Date.parse(notAfter) > now.getTime() && Object.keys(values).length > 0) previous = { values, notAfter };
    else if (notAfter || Object.keys(values).length > 0) changed = true; // the overlap is over: drop it
  }

  const data: Record<string, string> = { ...current };
  const annotations: Record<string, string> = {
    [ROTATION_GENERATION_ANNOTATION]: String(rotate || !existing ? opts.rotationGeneration : recordedGeneration),
    [ISSUED_AT_ANNOTATION]: rotate || !existing ? nowIso : (existing.annotations[ISSUED_AT_ANNOTATION] ?? nowIso),
  };
  if (previous) {
    for (const [k, v] of Object.entries(previous.values)) data[PREVIOUS_PREFIX + k] = v;
    annotations[PREVIOUS_NOT_AFTER_ANNOTATION] = previous.notAfter;
  }
  // Keys we no longer manage (a mode change dropped the HMAC secret) are removed.
  if (existing && !changed) {
    const want = new Set(Object.keys(data));
    if (Object.keys(existing.data).some((k) => !want.has(k))) changed = true;
  }
  return {
    data,
    annotations,
    changed,
    current,
    previous,
    issuedAt: annotations[ISSUED_AT_ANNOTATION]!,
    rotationGeneration: Number(annotations[ROTATION_GENERATION_ANNOTATION]),
  };
}

/** The next moment the plan changes by itself (an overlap ending), to requeue then. */
export function nextTransition(plan: GeneratedSecretPlan, now: Date): number | undefined {
  if (!plan.previous) return undefined;
  return Math.max(0, Date.parse(plan.previous.notAfter) - now.getTime()) + 1000;
}
