import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { quoteIdent, quoteQualified } from '../../lib/sql/identifiers.ts';

describe('quoteIdent', () => {
  it.each([
    ['sessions', '"sessions"'],
    ['Events', '"Events"'],
    ['we"ird', '"we""ird"'],
    ['drop table x; --', '"drop table x; --"'],
    ['é'.repeat(31), `"${'é'.repeat(31)}"`],
  ])('quotes %j as %s', (name, quoted) => {
    expect(quoteIdent(name)).toBe(quoted);
  });

  it.each([
    ['empty', ''],
    ['NUL', 'a\0b'],
    ['longer than 63 bytes', 'x'.repeat(64)],
    ['longer than 63 bytes in UTF-8', 'é'.repeat(32)],
  ])('rejects an identifier that is %s', (_, name) => {
    expect(() => quoteIdent(name)).toThrow(ConfigError);
  });
});

describe('quoteQualified', () => {
  it.each([
    ['public.sessions', '"public"."sessions"'],
    ['sessions', '"sessions"'],
  ])('quotes %j as %s', (name, quoted) => {
    expect(quoteQualified(name)).toBe(quoted);
  });

  it.each(['a.b.c', 'public.', '.sessions', ''])('rejects %j', (name) => {
    expect(() => quoteQualified(name)).toThrow(ConfigError);
  });
});
