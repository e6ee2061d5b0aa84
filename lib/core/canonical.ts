/**
 * JSON with the members of every object sorted by name (code unit order, as RFC 8785) and
 * `undefined` members left out, so equal values always give equal text (and equal hashes),
 * whatever order they were built in. Values are written as `JSON.stringify` writes them (Dates
 * through `toJSON`, non-finite numbers as null).
 */
export function canonicalJson(value: unknown): string {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function')
    return canonicalJson((value as { toJSON(): unknown }).toJSON());
  if (Array.isArray(value))
    return `[${value.map((entry) => (entry === undefined || typeof entry === 'function' ? 'null' : canonicalJson(entry))).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.entries(value as Record<string, unknown>)
      .filter(([, entry]) => entry !== undefined && typeof entry !== 'function')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${members.map(([name, entry]) => `${JSON.stringify(name)}:${canonicalJson(entry)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
