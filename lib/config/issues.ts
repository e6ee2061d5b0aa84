import type { z } from 'zod';
import { clip, ConfigError, type InputIssue } from '../errors.ts';

/** `['policies', 0, 'store', 'root']` → `policies[0].store.root`. */
export function formatPath(path: readonly PropertyKey[], root = ''): string {
  let out = root;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && /^[A-Za-z_$][\w$]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || '(root)';
}

function fixFor(issue: z.core.$ZodIssue): string | undefined {
  const params = (issue as { params?: { fix?: string } }).params;
  if (params?.fix) return params.fix;
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'remove it or check its spelling';
    case 'invalid_type':
      return issue.input === undefined ? 'this field is required' : `expected ${issue.expected}`;
    case 'invalid_value':
      return `use one of: ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    default:
      return undefined;
  }
}

export function toInputIssues(error: z.ZodError, root = ''): InputIssue[] {
  return error.issues.map((issue) => {
    const path = formatPath(issue.path, root);
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => `"${clip(key)}"`).join(', ')}`
        : issue.code === 'invalid_type' && issue.input === undefined
          ? 'missing'
          : issue.message;
    const fix = fixFor(issue);
    // A path can hold a record key of any length; messages clip what they echo themselves.
    return { path: clip(path), message, ...(fix ? { fix } : {}) };
  });
}

/** Parses `input` with `schema` or throws a ConfigError naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, root = ''): z.output<S> {
  // reportInput: tells a wrong value (`batchSize: 1.5`) from a missing one; the value itself is never printed.
  const result = schema.safeParse(input, { reportInput: true });
  if (!result.success) throw new ConfigError(toInputIssues(result.error, root));
  return result.data;
}
