import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/load.ts';
import { ConfigError } from '../../lib/errors.ts';

const tempFiles = {
  name: 'temp-files',
  class: 'blobs',
  store: { kind: 'fs', root: '/tmp/retention-demo/temp' },
  retention: '1h',
  schedule: '0 * * * *',
};

function issuesOf(document: unknown): string[] {
  try {
    parseConfig(document);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message.split('\n');
  }
  throw new Error('expected the config to be rejected');
}

describe('config validation', () => {
  it('accepts the documented minimal JSON policy and fills in safe defaults', () => {
    const config = parseConfig({ policies: [tempFiles] });
    const [policy] = config.policies;
    expect(policy).toMatchObject({
      name: 'temp-files',
      enabled: true,
      budget: '10m',
      limits: { maxDeletesPerRun: 10_000, maxDeleteFraction: 0.5 },
      sla: { maxOverdue: '1d', maxFailureRate: 0.01, warnAt: 0.8 },
      allowShortRetention: false,
    });
    // No batchSize: batches are sized by how long they take where the store sweeps in one statement.
    expect(policy).not.toHaveProperty('batchSize');
  });

  it('accepts per-purpose retention with a default', () => {
    const retention = {
      by: 'purpose_code',
      rules: { 'System Testing': '24h', General: '30d', Financial: '1y', Legal: '7y', Medical: '10y' },
      default: '30d',
    };
    expect(parseConfig({ policies: [{ ...tempFiles, retention }] }).policies[0]!.retention).toEqual(retention);
  });

  it.each([
    [{ ...tempFiles, retention: '30' }, 'error: policies[0].retention: "30" has no unit (add one: "30d"'],
    [{ ...tempFiles, name: 'Temp Files' }, 'error: policies[0].name: must be kebab-case'],
    [{ ...tempFiles, schedule: '0 * * *' }, 'error: policies[0].schedule: "0 * * *" has 4 fields, not 5'],
    [{ ...tempFiles, store: { kind: 'ftp', root: '/x' } }, 'error: policies[0].store.kind: unknown store kind'],
    [{ ...tempFiles, store: { kind: 'fs' } }, 'error: policies[0].store.root: missing (this field is required)'],
    [
      { ...tempFiles, retention: '30m' },
      'error: policies[0].retention: retention 30m is under 1h (if that is intended, set "allowShortRetention": true',
    ],
    [
      { ...tempFiles, retention: { by: 'purpose', rules: { Test: '5m' } } },
      'error: policies[0].retention.rules.Test: retention 5m is under 1h',
    ],
    [{ ...tempFiles, limits: { maxDeleteFraction: 2 } }, 'error: policies[0].limits.maxDeleteFraction:'],
    [
      { ...tempFiles, retentoin: '1d' },
      'error: policies[0]: unknown field "retentoin" (remove it or check its spelling)',
    ],
    [{ ...tempFiles, class: 'files' }, 'error: policies[0].class: unknown data class'],
    [
      { ...tempFiles, backup: { to: '/tmp/retention-demo/temp/.backups', keepFor: '7d' } },
      'error: policies[0].backup.to: /tmp/retention-demo/temp/.backups is inside the store root',
    ],
  ])('rejects %j with the field path and the fix', (policy, expected) => {
    expect(issuesOf({ policies: [policy] }).some((line) => line.startsWith(expected))).toBe(true);
  });

  const rowsPolicy = {
    name: 'documents',
    class: 'rows',
    store: { kind: 'postgres', url: 'postgres://localhost/app' },
    table: 'documents',
    timestamp: 'created_at',
    retention: '30d',
    schedule: '0 2 * * *',
  };
  const pgTokens = {
    name: 'pg-tokens',
    class: 'tokens',
    store: { kind: 'postgres', url: 'postgres://localhost/app', table: 'sessions' },
    retention: '7d',
    schedule: '0 * * * *',
  };
  const short = { ...tempFiles, allowShortRetention: true };

  // Every duration field of a policy, as written in a config file: the message names the field,
  // says what is wrong and how to fix it.
  it.each([
    [
      { ...short, retention: '0.0001ms' },
      'policies[0].retention: "0.0001ms" is shorter than 1s, the shortest duration this field takes (use at least "1s")',
    ],
    [
      { ...short, retention: '999999999999999y' },
      'policies[0].retention: "999999999999999y" is longer than 1000y, the longest duration the tool takes (use at most "1000y")',
    ],
    [{ ...tempFiles, retention: '10000y' }, 'policies[0].retention: "10000y" is longer than 1000y'],
    [
      { ...short, retention: '1.0005s' },
      'policies[0].retention: "1.0005s" is not a whole number of milliseconds (write "1000ms" or "1001ms")',
    ],
    [
      { ...short, retention: { by: 'purpose', rules: { Test: '0.5s' } } },
      'policies[0].retention.rules.Test: "0.5s" is shorter than 1s',
    ],
    [
      { ...short, retention: { by: 'purpose', rules: { 'System Testing': '1d' }, default: '10000y' } },
      'policies[0].retention.default: "10000y" is longer than 1000y',
    ],
    [
      { ...short, retention: { by: 'purpose', rules: { 'System Testing': '1001y' } } },
      'policies[0].retention.rules["System Testing"]: "1001y" is longer than 1000y',
    ],
    [
      { ...tempFiles, budget: '0.0001ms' },
      'policies[0].budget: "0.0001ms" is shorter than 1s, the shortest duration this field takes (use at least "1s")',
    ],
    [{ ...tempFiles, budget: '500ms' }, 'policies[0].budget: "500ms" is shorter than 1s'],
    [{ ...tempFiles, budget: '10000y' }, 'policies[0].budget: "10000y" is longer than 1000y'],
    [{ ...tempFiles, sla: { maxDuration: '0.1s' } }, 'policies[0].sla.maxDuration: "0.1s" is shorter than 1s'],
    [
      { ...tempFiles, sla: { maxOverdue: '999999999999999y' } },
      'policies[0].sla.maxOverdue: "999999999999999y" is longer than 1000y',
    ],
    [
      { ...tempFiles, backup: { to: '/tmp/backups', keepFor: '0.001s' } },
      'policies[0].backup.keepFor: "0.001s" is shorter than 1s',
    ],
    [
      { ...tempFiles, backup: { to: '/tmp/backups', keepFor: '10000y' } },
      'policies[0].backup.keepFor: "10000y" is longer than 1000y',
    ],
    [
      { ...rowsPolicy, statementTimeout: '0.5ms' },
      'policies[0].statementTimeout: "0.5ms" is shorter than 1ms, the shortest duration this field takes (use at least "1ms")',
    ],
    [
      { ...rowsPolicy, lockTimeout: '1.5ms' },
      'policies[0].lockTimeout: "1.5ms" is not a whole number of milliseconds (write "1ms" or "2ms")',
    ],
    [
      { ...rowsPolicy, statementTimeout: '30d' },
      'policies[0].statementTimeout: "30d" is longer than 2147483647ms, PostgreSQL\'s limit for a timeout (use at most "2147483647ms")',
    ],
    [
      { ...pgTokens, store: { ...pgTokens.store, lockTimeout: '0.1ms' } },
      'policies[0].store.lockTimeout: "0.1ms" is shorter than 1ms',
    ],
  ])('refuses a duration it cannot represent: %j', (policy, expected) => {
    const issues = issuesOf({ policies: [policy] });
    expect(
      issues.some((line) => line.startsWith(`error: ${expected}`)),
      issues.join('\n'),
    ).toBe(true);
  });

  it('accepts every duration field at its bounds, as exact milliseconds', () => {
    const [files, rows] = parseConfig({
      policies: [
        {
          ...short,
          retention: { by: 'purpose', rules: { Test: '1s', Legal: '1000y' }, default: '1.001s' },
          budget: '1s',
          sla: { maxDuration: '1000y', maxOverdue: '1s' },
          backup: { to: '/tmp/backups', keepFor: '1000y' },
        },
        { ...rowsPolicy, statementTimeout: '1ms', lockTimeout: '2147483647ms' },
      ],
    }).policies;
    expect(files).toMatchObject({
      retention: { rules: { Test: '1s', Legal: '1000y' }, default: '1.001s' },
      budget: '1s',
      sla: { maxDuration: '1000y', maxOverdue: '1s' },
    });
    expect(rows).toMatchObject({ statementTimeout: '1ms', lockTimeout: '2147483647ms' });
  });

  it('accepts a DynamoDB control store and a tokens policy over a DynamoDB table', () => {
    const config = parseConfig({
      control: { kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' },
      policies: [
        {
          name: 'refresh-tokens',
          class: 'tokens',
          store: { kind: 'dynamodb', table: 'sessions', key: { partition: 'pk', sort: 'sk' } },
          retention: '7d',
          schedule: '*/15 * * * *',
        },
      ],
    });
    expect(config.control).toEqual({ kind: 'dynamodb', table: 'retention-control', region: 'eu-west-1' });
    expect(config.policies[0]).toMatchObject({
      class: 'tokens',
      store: { kind: 'dynamodb', expiresAttribute: 'expiresAt', conditional: true },
    });
    expect(
      issuesOf({
        policies: [
          {
            name: 't',
            class: 'tokens',
            store: { kind: 'dynamodb', table: 'sessions', key: { partition: 'pk' } },
            retention: '7d',
            schedule: '0 * * * *',
            backup: { to: '/b', keepFor: '1d' },
          },
        ],
      }),
    ).toContain(
      'error: policies[0].backup: tokens are never backed up (a copy of a credential defeats deleting it) (remove backup from this policy)',
    );
    expect(issuesOf({ control: { kind: 'redis' }, policies: [tempFiles] })[0]).toContain(
      'control.kind: unknown control store kind',
    );
  });

  it('accepts short retention when explicitly allowed', () => {
    expect(
      parseConfig({ policies: [{ ...tempFiles, retention: '30m', allowShortRetention: true }] }).policies[0]!.retention,
    ).toBe('30m');
  });

  it('rejects duplicate policy names and an empty policy list', () => {
    expect(issuesOf({ policies: [tempFiles, tempFiles] })).toContain(
      'error: policies[1].name: duplicate policy name "temp-files" (also policies[0]) (give each policy a unique name)',
    );
    expect(issuesOf({ policies: [] })[0]).toContain('policies: needs at least one policy');
  });
});
