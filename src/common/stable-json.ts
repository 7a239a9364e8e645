// JSON with object keys sorted, so that equal content always gives equal text
// (comparisons of desired and live state, digests of what was applied).
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function deepEqualJson(a: unknown, b: unknown): boolean {
  return stableStringify(a) === stableStringify(b);
}
