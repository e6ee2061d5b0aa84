/**
 * The one redaction of secrets, applied at every output boundary: log lines, CLI output (text and
 * JSON), `retention config`, error messages and their context, handler results and Sentry events.
 * Imports nothing, so lib/errors.ts can use it too.
 *
 * Two rules, so that what stays is still useful (`postgres://app:***@db:5432/x` keeps the host,
 * port, database and user):
 * - a field whose name says it holds a secret (`password`, `token`, `secret*`, `accessKey*`,
 *   `dsn`, `authorization`, …) loses its string value; numbers stay (a lease's fencing `token`);
 * - inside any string: passwords in URLs, every credential of an http(s) URL (a Sentry DSN key),
 *   `password=…`-style pairs (query strings, libpq keyword strings), `"token": "…"` in embedded
 *   JSON, `Bearer …`, Vercel Blob tokens, AWS access key ids, private keys.
 * Redacting twice changes nothing.
 */
export const REDACTED = '***';

const SECRET_NAME =
  /password|passwd|secret|token|dsn|credential|authorization|cookie|api_?key|access_?key|private_?key|signature/i;
const EXACT_SECRET_NAMES = new Set(['pwd', 'pass', 'sig']);

/** `password`, `secretAccessKey`, `BLOB_READ_WRITE_TOKEN`, `X-Amz-Signature`, `SENTRY_DSN`, … */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) || EXACT_SECRET_NAMES.has(name.toLowerCase());
}

const NAME_CHARS = String.raw`[\w.-]*`;
const SECRET_NAME_SOURCE = `(?:${NAME_CHARS}(?:${SECRET_NAME.source})${NAME_CHARS}|pwd|pass|sig)`;

/** [pattern, replacement] applied in order to every string. */
const TEXT_RULES: Array<[RegExp, string | ((...groups: string[]) => string)]> = [
  // PEM blocks first (up to their end, or the end of a clipped text): their body is not one word.
  [
    /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
    (_match, kind) => `[${kind}PRIVATE KEY ${REDACTED}]`,
  ],
  // http(s) credentials are keys (a Sentry DSN's public key, basic auth): all of the userinfo goes.
  [/\b(https?:\/\/)[^\s/?#@]+@/gi, `$1${REDACTED}@`],
  // Other schemes (postgres://, redis://, …): the user stays, the password goes. Greedy up to the
  // last `@` of the authority, as URL parsers read it.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*:)[^\s/?#]*@/gi, `$1${REDACTED}@`],
  [new RegExp(String.raw`\b(${SECRET_NAME_SOURCE})=[^\s&"',;)\]}>]+`, 'gi'), `$1=${REDACTED}`],
  [new RegExp(String.raw`("(${SECRET_NAME_SOURCE})"\s*:\s*)"(?:[^"\\]|\\.)*"`, 'gi'), `$1"${REDACTED}"`],
  [/\b(aws_secret_access_key|secretAccessKey)(\s*[:=]\s*["']?)[A-Za-z0-9/+=]{16,}/g, `$1$2${REDACTED}`],
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, `$1 ${REDACTED}`],
  [/\bvercel_blob_rw_[A-Za-z0-9_]+/g, `vercel_blob_rw_${REDACTED}`],
  [/\b(AKIA|ASIA)[A-Z0-9]{16}\b/g, `$1${REDACTED}`],
];

/** Something every rule needs (a rule matches nothing without it): most strings skip the rules. */
const MAY_HOLD_SECRET = /:\/\/|=|"|bearer|basic|vercel_blob_rw_|AKIA|ASIA|PRIVATE KEY|secret/i;

export function redactText(text: string): string {
  if (!MAY_HOLD_SECRET.test(text)) return text;
  let out = text;
  for (const [pattern, replacement] of TEXT_RULES) {
    out = out.replace(pattern, replacement as string);
  }
  return out;
}

const MAX_DEPTH = 32;

/**
 * A copy of `value` with every secret replaced: plain objects and arrays are walked, strings
 * redacted, other values (numbers, dates, class instances) kept as they are.
 */
export function redact<T>(value: T): T {
  return walk(value, 0, new WeakSet()) as T;
}

function walk(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (seen.has(value)) return '[circular]';
  if (Array.isArray(value)) {
    seen.add(value);
    const copy = value.map((entry) => walk(entry, depth + 1, seen));
    seen.delete(value);
    return copy;
  }
  if (!isPlainObject(value)) return value;
  seen.add(value);
  const copy: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(value)) {
    const secret = typeof entry === 'string' && isSecretName(name);
    copy[name] = secret ? redactSecretField(entry) : walk(entry, depth + 1, seen);
  }
  seen.delete(value);
  return copy;
}

/** A secret field's value: a URL keeps what the text rules leave of it (host, user); anything else goes whole. */
function redactSecretField(value: string): string {
  if (value === '') return value;
  const redacted = redactText(value);
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(value) && redacted !== value ? redacted : REDACTED;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}
