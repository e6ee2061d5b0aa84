import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectRefused, startTripwire, type Tripwire } from '../support/badInputs.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * A few of test/unit/bad-inputs.test.ts's cases through the real binary, against a real control
 * database: exit 2, `error: <path>: <what> (<fix>)`, and afterwards no control schema in that
 * database, no embedded server under RETENTION_HOME, no connection to any backend, and the
 * expired file the first policy would delete still there.
 */
const shared = usePostgresAndScratch('retention-bad-inputs-e2e-');
let trip: Tripwire;
let root: string;
let env: Record<string, string>;

beforeAll(async () => {
  trip = await startTripwire();
  root = path.join(shared.scratch, 'files');
  await mkdir(root);
  await seedFiles(root, [{ key: 'expired.bin', mtime: new Date(Date.now() - 400 * 86_400_000) }]);
  env = {
    RETENTION_DATABASE_URL: await shared.server.createDatabase('bad_inputs'),
    RETENTION_HOME: path.join(shared.scratch, 'home'),
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_ENDPOINT_URL: trip.http,
  };
});
afterAll(() => trip?.close());

type Doc = Record<string, unknown>;
const when = { retention: '30d', schedule: '0 * * * *' };
const files = (): Doc => ({
  name: 'files',
  class: 'blobs',
  store: { kind: 'fs', root },
  ...when,
  limits: { maxDeleteFraction: 1 },
});
const s3 = (store: Doc): Doc => ({
  name: 'pdfs',
  class: 'blobs',
  store: { kind: 's3', bucket: 'acme-docs', region: 'us-east-1', endpoint: trip.http, ...store },
  ...when,
});
const second = (policy: Doc): Doc => ({ policies: [files(), policy] });

/** [what, config, argv, field path, start of the message]. */
const CASES: Array<[string, () => Doc, string[], string, string]> = [
  [
    'an S3 bucket that is a path',
    () => second(s3({ bucket: '../etc' })),
    ['run', '--all'],
    'policies[1].store.bucket',
    '"../etc" contains "/"',
  ],
  [
    'a file: S3 endpoint',
    () => second(s3({ endpoint: 'file:///etc' })),
    ['run', '--all'],
    'policies[1].store.endpoint',
    '"file:///etc" is not an http(s) URL',
  ],
  [
    'a fractional batch size',
    () => second({ ...files(), name: 'other', batchSize: 1.5 }),
    ['run', '--all'],
    'policies[1].batchSize',
    'must be a whole number, not 1.5',
  ],
  [
    'a policy name of a megabyte',
    () => second({ ...files(), name: 'x'.repeat(1_000_000) }),
    ['run', '--all'],
    'policies[1].name',
    'is 1000000 characters long',
  ],
  [
    'a DynamoDB table with a space',
    () =>
      second({
        name: 't',
        class: 'tokens',
        store: { kind: 'dynamodb', table: 'my table', key: { partition: 'pk' }, endpoint: trip.http },
        ...when,
      }),
    ['plan', '--all'],
    'policies[1].store.table',
    '"my table" contains " "',
  ],
  [
    'a rows database without host',
    () =>
      second({
        name: 'documents',
        class: 'rows',
        store: { kind: 'postgres', url: 'postgres:///app' },
        table: 'documents',
        timestamp: 'created_at',
        ...when,
      }),
    ['run', '--all'],
    'policies[1].store.url',
    'has no host',
  ],
  [
    'a hold without key',
    () => second({ ...files(), name: 'other' }),
    ['hold', 'add', '--reason', 'case 1'],
    '--key',
    'give exactly one of --key',
  ],
  ['a restore without --run', () => second({ ...files(), name: 'other' }), ['restore'], '--run', 'missing'],
  [
    'a lease break of an unknown policy',
    () => second({ ...files(), name: 'other' }),
    ['lease', 'break', 'nope'],
    '<policy>',
    'no policy named "nope"',
  ],
  [
    'a misspelt flag',
    () => second({ ...files(), name: 'other' }),
    ['run', '--polcy', 'files'],
    '--polcy',
    'unknown option (did you mean --policy?)',
  ],
];

async function controlSchema(): Promise<string | null> {
  const client = new pg.Client({ connectionString: env.RETENTION_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ schema: string | null }>(
      "SELECT to_regnamespace('retention')::text AS schema",
    );
    return rows[0]!.schema;
  } finally {
    await client.end();
  }
}

describe('bad inputs through the real CLI', () => {
  it('exit 2 with the field path and a fix, and touch nothing: no control schema, server, backend or file', async () => {
    const results = await Promise.all(
      CASES.map(async ([what, config, argv], index) => {
        const file = path.join(shared.scratch, `case-${index}.json`);
        await writeFile(file, JSON.stringify(config()));
        return { what, result: await runCli(['--config', file, ...argv], { env }) };
      }),
    );
    for (const [index, { what, result }] of results.entries())
      expectRefused(result, CASES[index]![3], CASES[index]![4], what);

    expect(await controlSchema()).toBeNull();
    expect({
      connections: trip.connections,
      home: existsSync(env.RETENTION_HOME!),
      expired: existsSync(path.join(root, 'expired.bin')),
    }).toEqual({
      connections: 0,
      home: false,
      expired: true,
    });

    // The same check sees a command that does open the control store.
    const valid = path.join(shared.scratch, 'valid.json');
    await writeFile(valid, JSON.stringify({ policies: [files()] }));
    expect((await runCli(['--config', valid, 'status'], { env })).code).toBe(0);
    expect(await controlSchema()).toBe('retention');
  });
});
