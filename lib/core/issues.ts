import type { z } from 'zod';
import { ConfigError, clip, type InputIssue } from '../errors.ts';

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

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

/** How a JSON type reads in a message: what a field must be. */
const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  record: 'an object',
};

/** How to write the type a field must be. */
const WRITE: Record<string, string> = {
  string: 'write it in quotes',
  number: 'write a number, without quotes',
  int: 'use a whole number',
  boolean: 'write true or false, without quotes',
  array: 'write a list: [ … ]',
  object: 'write an object: { … }',
  record: 'write an object: { … }',
};

/** What was written instead: numbers and booleans as themselves, text never (it may be a secret). */
function got(input: unknown, received?: string): string {
  if (received) return received;
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  if (typeof input === 'string') return 'a string';
  return typeof input === 'object' ? 'an object' : typeof input;
}

const entries = (count: number | bigint): string => `${count} ${Number(count) === 1 ? 'entry' : 'entries'}`;

/** An option of a union that the value is not even of the type of. */
const wrongType = (option: readonly Issue[]) =>
  option.find((inner) => inner.code === 'invalid_type' && inner.path.length === 0);

/** The types a union takes, when the value is of none of them (not when it fails inside one). */
function unionTypes(errors: readonly (readonly Issue[])[]): string[] | undefined {
  const types = errors.map(wrongType);
  if (types.length === 0 || types.some((type) => type === undefined)) return undefined;
  const expected = types.map((type) => (type as { expected: string }).expected);
  return [...new Set(expected)].map((type) => EXPECTED[type] ?? type);
}

interface Explained {
  message?: string;
  fix?: string;
}

type Bounded = {
  origin: string;
  inclusive?: boolean;
  input: unknown;
  minimum?: number | bigint;
  maximum?: number | bigint;
};

/** A bound of too_small / too_big in words: what the value must be, and how to write one that is. */
function bound(issue: Issue | RawIssue, side: 'min' | 'max'): Explained {
  const { origin, inclusive, input, minimum, maximum } = issue as Bounded;
  const limit = (side === 'min' ? minimum : maximum)!;
  if (origin === 'string' && side === 'min' && Number(limit) === 1)
    return { message: 'must not be empty', fix: 'give a value' };
  if (origin === 'array' && side === 'min' && Number(limit) === 1)
    return { message: 'must not be an empty list', fix: 'add at least one entry' };
  if (origin === 'array' && side === 'min') return { message: `needs at least ${entries(limit)}`, fix: 'add entries' };
  if (origin === 'array') return { message: `has more than ${entries(limit)}`, fix: `keep at most ${entries(limit)}` };
  if (origin === 'string') {
    const length = typeof input === 'string' ? input.length : 0;
    return side === 'min'
      ? { message: `is ${length} characters long, shorter than ${limit}`, fix: `use at least ${limit} characters` }
      : { message: `is ${length} characters long, longer than ${limit}`, fix: `shorten it to ${limit} characters` };
  }
  const [words, fix] =
    side === 'min'
      ? inclusive
        ? [`at least ${limit}`, `use ${limit} or more`]
        : [`above ${limit}`, `use a number above ${limit}`]
      : inclusive
        ? [`at most ${limit}`, `use ${limit} or less`]
        : [`below ${limit}`, `use a number below ${limit}`];
  return { message: `must be ${words}, not ${got(input)}`, fix };
}

/**
 * zod's built-in issues in the tool's words: "Invalid input: expected int, received number"
 * reads "must be a whole number, not 1.5 (use a whole number)". Values are echoed clipped.
 */
function explain(issue: Issue | RawIssue): Explained {
  const input: unknown = issue.input;
  switch (issue.code) {
    case 'invalid_type': {
      if (input === undefined) return { message: 'missing', fix: 'this field is required' };
      const received = (issue as { received?: string }).received;
      const fix = WRITE[issue.expected] ?? `use ${EXPECTED[issue.expected] ?? issue.expected}`;
      return { message: `must be ${EXPECTED[issue.expected] ?? issue.expected}, not ${got(input, received)}`, fix };
    }
    case 'too_small':
      return bound(issue, 'min');
    case 'too_big':
      return bound(issue, 'max');
    case 'invalid_value': {
      const shown = typeof input === 'string' ? JSON.stringify(clip(input)) : got(input);
      const choices = issue.values.map((value) => JSON.stringify(value)).join(', ');
      return { message: `${shown} is not one of the choices`, fix: `use one of: ${choices}` };
    }
    case 'unrecognized_keys': {
      const keys = issue.keys.map((key) => `"${clip(key)}"`).join(', ');
      return {
        message: `unknown field${issue.keys.length > 1 ? 's' : ''} ${keys}`,
        fix: 'remove it or check its spelling',
      };
    }
    case 'invalid_format': {
      const shown = typeof input === 'string' ? JSON.stringify(clip(input)) : 'it';
      return { message: `${shown} is not a valid ${issue.format}`, fix: `write a valid ${issue.format}` };
    }
    case 'invalid_union': {
      if (input === undefined) return { message: 'missing', fix: 'this field is required' };
      // A discriminated union's value matched no option: its own message lists the known ones.
      if (issue.errors.length === 0) return { fix: 'check its spelling' };
      const types = unionTypes(issue.errors)?.join(' or ');
      return types
        ? { message: `must be ${types}, not ${got(input)}`, fix: `write ${types}` }
        : { fix: 'see the documentation of this field' };
    }
    default:
      return {};
  }
}

/** The per-parse error map: only for issues whose schema gave no message of its own. */
export function describeIssue(issue: RawIssue): string | undefined {
  return explain(issue).message;
}

function fixFor(issue: Issue): string | undefined {
  return (issue as { params?: { fix?: string } }).params?.fix ?? explain(issue).fix;
}

/**
 * The issues an operator can act on. A union (`retention`: a duration or a map; `key`: a name or
 * a list) reports one issue at its own path, which hides which rule of a map is wrong: when the
 * value has the shape of exactly one option, that option's issues are reported instead. A bad
 * record key (`rules: { "": "30d" }`) is reported at the key, with what is wrong with it.
 */
function flatten(issue: Issue): Issue[] {
  const under = (inner: Issue): Issue[] => flatten({ ...inner, path: [...issue.path, ...inner.path] } as Issue);
  if (issue.code === 'invalid_key' && issue.issues[0]) return under(issue.issues[0]);
  if (issue.code !== 'invalid_union') return [issue];
  const shaped = issue.errors.filter((option) => wrongType(option) === undefined);
  return shaped.length === 1 ? shaped[0]!.flatMap((inner) => under(inner)) : [issue];
}

export function toInputIssues(error: z.ZodError, root = ''): InputIssue[] {
  return error.issues.flatMap(flatten).map((issue) => {
    const path = formatPath(issue.path, root);
    const fix = fixFor(issue);
    // Parses without PARSE_OPTIONS still name unknown and missing fields in these terms.
    const ours = issue.code === 'unrecognized_keys' || (issue.code === 'invalid_type' && issue.input === undefined);
    const message = (ours && describeIssue(issue as RawIssue)) || issue.message;
    // A path can hold a record key of any length; messages clip what they echo themselves.
    return { path: clip(path), message, ...(fix ? { fix } : {}) };
  });
}

/** What is wrong with a value and how to fix it: the result of a check a schema runs. */
/** Adds a custom issue whose fix `describeIssue` appends: `<message> (<fix>)`. */
export function issue(ctx: z.RefinementCtx, message: string, fix: string, path: PropertyKey[] = []): void {
  ctx.addIssue({ code: 'custom', message, path, params: { fix } });
}

export interface Problem {
  message: string;
  fix: string;
}

/** A zod refinement from a check: the problem it finds is reported at the field, with its fix. */
export function problemCheck<T>(check: (value: T) => Problem | undefined): (value: T, ctx: z.RefinementCtx) => void {
  return (value, ctx) => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem.message, params: { fix: problem.fix } });
  };
}

/**
 * Options for every parse of operator input: `reportInput` tells a wrong value (`batchSize: 1.5`)
 * from a missing one, and `describeIssue` words what zod would say in its own terms.
 */
export const PARSE_OPTIONS = { reportInput: true, error: describeIssue } as const;

/** Parses `input` with `schema` or throws a ConfigError naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, input: unknown, root = ''): z.output<S> {
  const result = schema.safeParse(input, PARSE_OPTIONS);
  if (!result.success) throw new ConfigError(toInputIssues(result.error, root));
  return result.data;
}
