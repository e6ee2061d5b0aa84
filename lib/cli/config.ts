import { redact } from '../redact.ts';

/**
 * `retention config`: the effective config (defaults filled in) with every secret redacted —
 * passwords in database URLs, tokens, keys — so it can be pasted into a ticket. Text is an
 * indented `field: value` outline; `--json` is the same document as JSON.
 */
export function printConfig(document: Record<string, unknown>, json: boolean): string {
  const redacted = redact(document);
  return json ? `${JSON.stringify(redacted, null, 2)}\n` : `${outline(redacted, '').join('\n')}\n`;
}

function outline(value: unknown, indent: string): string[] {
  if (Array.isArray(value)) {
    return value.flatMap((entry) => {
      if (!isNested(entry)) return [`${indent}- ${scalar(entry)}`];
      const [first = '', ...rest] = outline(entry, `${indent}  `);
      return [`${indent}- ${first.trimStart()}`, ...rest];
    });
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([name, entry]) =>
      isNested(entry) && !isEmpty(entry)
        ? [`${indent}${name}:`, ...outline(entry, `${indent}  `)]
        : [`${indent}${name}: ${scalar(entry)}`],
    );
  }
  return [`${indent}${scalar(value)}`];
}

function isNested(value: unknown): value is object {
  return value !== null && typeof value === 'object';
}

function isEmpty(value: object): boolean {
  return Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0;
}

/** Strings as they are unless they would read as something else (empty, padded, multi-line). */
function scalar(value: unknown): string {
  if (Array.isArray(value)) return '[]';
  if (value !== null && typeof value === 'object') return '{}';
  if (typeof value !== 'string') return String(value);
  return value === '' || value.trim() !== value || value.includes('\n') ? JSON.stringify(value) : value;
}
