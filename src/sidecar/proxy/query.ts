// The raw query string, read and edited without re-encoding what the sidecar does not touch.

/** The first value of a query parameter (decoded), from the raw query string. */
export function queryParam(query: string | undefined, name: string): string | undefined {
  if (!query) return undefined;
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (safeDecode(key) !== name) continue;
    return safeDecode(eq < 0 ? "" : part.slice(eq + 1));
  }
  return undefined;
}

/** The raw query without a parameter (other parameters keep their exact encoding). */
export function withoutParam(query: string | undefined, name: string): string | undefined {
  if (query === undefined) return undefined;
  const kept = query.split("&").filter((part) => {
    const eq = part.indexOf("=");
    return safeDecode(eq < 0 ? part : part.slice(0, eq)) !== name;
  });
  return kept.length === 0 ? undefined : kept.join("&");
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value.replaceAll("+", " "));
  } catch {
    return value;
  }
}
