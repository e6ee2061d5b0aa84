import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { createHealthHandler } from '../../lib/serverless/healthHandler.ts';
import { type CliResult, runCli, seedFiles } from '../support/cli.ts';
import { failingScans, handlerFixture } from '../support/handlerFixture.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { freePort } from '../support/postgres.ts';
import { type SentryIngest, startSentryIngest } from '../support/sentryIngest.ts';

/**
 * Secrets stay secret (issue 11): a config with a secret in every place a config can hold one, and
 * a failure whose cause echoes credentials (as drivers that print their connection string do).
 * Every output is read as raw text: `retention config` (text and JSON), a failing command, run
 * reports, history, audit, status and log lines; a Lambda run's result, log lines, history, the
 * health endpoint and the Sentry event received by a local ingest. No secret string may appear in any of them, while
 * what helps (host, port, database, user) stays.
 */
const shared = usePostgresAndScratch('retention-secrets-');
let ingest: SentryIngest;
beforeAll(async () => {
  ingest = await startSentryIngest();
});
afterAll(async () => {
  await ingest?.stop();
});

const VERCEL_TOKEN = 'vercel_blob_rw_SecretStore42_Zq8NwLp3Vx6TtYk1Hs9Df';
const ROWS_PASSWORD = 'Rows-Pw-7f3e9c2a';
const TOKENS_PASSWORD = 'Tokens-Pw-55c0d1';
const BEARER = 'eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.Sig-d41d8cd9';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY';

/** The test server's password: in the control database URL of every config below. */
function serverPassword(): string {
  return decodeURIComponent(new URL(shared.server.url('postgres')).password);
}

function secrets(): string[] {
  return [serverPassword(), ROWS_PASSWORD, TOKENS_PASSWORD, VERCEL_TOKEN, 'Zq8NwLp3Vx6TtYk1Hs9Df', BEARER, AWS_SECRET];
}

function expectNoSecret(where: string, text: string): void {
  for (const secret of secrets())
    expect(text.includes(secret), `${where} contains the secret ${secret.slice(0, 4)}…:\n${text.slice(0, 2000)}`).toBe(
      false,
    );
}

function expectClean(where: string, result: CliResult): void {
  expectNoSecret(`${where} (stdout)`, result.stdout);
  expectNoSecret(`${where} (stderr)`, result.stderr);
}

const schedule = '0 * * * *';

describe('secrets never reach an output', () => {
  it('the CLI: config (text and --json), a failing command, reports, history, audit, status and logs', async () => {
    const dir = path.join(shared.scratch, 'cli');
    const root = path.join(dir, 'files');
    await mkdir(root, { recursive: true });
    await seedFiles(
      root,
      [1, 2, 3].map((n) => ({ key: `old-${n}.txt`, mtime: new Date(Date.now() - 90 * 86_400_000) })),
    );
    const controlUrl = await shared.server.createDatabase('secrets');
    const deadPort = await freePort();
    const config = {
      control: { kind: 'postgres', url: controlUrl },
      policies: [
        {
          name: 'files',
          class: 'blobs',
          store: { kind: 'fs', root },
          retention: '30d',
          schedule,
          limits: { maxDeleteFraction: 1 },
        },
        {
          name: 'docs',
          class: 'blobs',
          store: { kind: 'vercel-blob', prefix: 'docs/', token: VERCEL_TOKEN },
          retention: '30d',
          schedule,
        },
        {
          name: 'events',
          class: 'rows',
          table: 'events',
          timestamp: 'created_at',
          retention: '30d',
          schedule,
          store: { kind: 'postgres', url: `postgresql://app:${ROWS_PASSWORD}@rows.internal:6543/app?sslmode=require` },
          blob: { column: 'file', store: { kind: 'vercel-blob', prefix: 'files/', token: VERCEL_TOKEN } },
        },
        {
          name: 'sessions',
          class: 'tokens',
          retention: '1d',
          schedule,
          store: { kind: 'postgres', url: `postgres://auth:${TOKENS_PASSWORD}@auth.internal/auth`, table: 'sessions' },
        },
        {
          name: 'archive',
          class: 'blobs',
          retention: '30d',
          schedule,
          store: { kind: 's3', bucket: 'archive', region: 'us-east-1', endpoint: `http://127.0.0.1:${deadPort}` },
        },
      ],
    };
    const configPath = path.join(dir, 'retention.json');
    await writeFile(configPath, JSON.stringify(config));
    // AWS credentials in the environment: the SDK fails at the connection, not after probing for credentials.
    const env = { RETENTION_LOG_LEVEL: 'debug', AWS_ACCESS_KEY_ID: 'AKIDSECRETS', AWS_SECRET_ACCESS_KEY: AWS_SECRET };
    const cli = (...args: string[]) => runCli(['--config', configPath, ...args], { env });

    const text = await cli('config');
    expect(text.code, text.stderr).toBe(0);
    expectClean('config', text);
    // What helps stays: scheme, user, host, port, database, parameters.
    expect(text.stdout).toContain(
      `url: postgres://postgres:***@${new URL(controlUrl).host}${new URL(controlUrl).pathname}`,
    );
    expect(text.stdout).toContain('url: postgresql://app:***@rows.internal:6543/app?sslmode=require');
    expect(text.stdout).toContain('token: ***');

    const json = await cli('config', '--json');
    expect(json.code, json.stderr).toBe(0);
    expectClean('config --json', json);
    const printed = JSON.parse(json.stdout) as typeof config;
    expect(printed.policies.find((policy) => policy.name === 'sessions')?.store).toMatchObject({
      url: 'postgres://auth:***@auth.internal/auth',
    });

    // An endpoint with credentials in it is refused at parse time (test/unit/bad-inputs.test.ts);
    // an unreachable one fails the run, with the AWS credentials of the environment nowhere in it.
    const failing = await cli('run', '--policy', 'archive', '--json');
    expect(failing.code, failing.stderr).toBe(1);
    expect(failing.stderr).toContain(`cannot reach bucket archive at http://127.0.0.1:${deadPort}`);
    expectClean('a failing run', failing);

    const run = await cli('run', '--policy', 'files', '--json', '--list');
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as RunReport).deleted).toBe(3);
    expectClean('run', run);
    const reads = [
      ['history', '--json'],
      ['audit', '--policy', 'files', '--json'],
      ['status', '--json'],
    ];
    for (const [index, result] of (await Promise.all(reads.map((args) => cli(...args)))).entries()) {
      expect(result.code, `${reads[index]!.join(' ')}: ${result.stderr}`).toBe(0);
      expectClean(reads[index]!.join(' '), result);
    }
  });

  it('a Lambda run failing with credentials in its cause: the result, logs, health, history and Sentry event', async () => {
    const cause = `connection to postgres://app:${serverPassword()}@db.internal:5432/app lost (Authorization: Bearer ${BEARER}; token=${VERCEL_TOKEN})`;
    const f = await handlerFixture(shared.server, shared.scratch, {
      sentryDsn: ingest.dsn,
      wrapStore: failingScans(cause),
    });
    ingest.clear();
    const result = (await f.handler({ policy: 'files', trigger: 'scheduled' })) as RunReport;
    expect(result.status).toBe('failed');
    // The cause is still told, without its secrets.
    expect(result.error?.message).toBe(
      'connection to postgres://app:***@db.internal:5432/app lost (Authorization: Bearer ***; token=***)',
    );
    expectNoSecret('handler result', JSON.stringify(result));
    expect(f.lines.some((line) => line.event === 'error')).toBe(true);
    expectNoSecret('handler log lines', JSON.stringify(f.lines));

    const events = ingest.events();
    expect(events.find((event) => event.fingerprint?.[1] === 'run_failed')?.message).toEqual(
      expect.stringContaining('postgres://app:***@db.internal'),
    );
    expectNoSecret('Sentry envelopes', JSON.stringify(ingest.items));

    // The health endpoint quotes the failed run's error.
    const health = await createHealthHandler(f.runtime, { token: 'health-token' })({
      headers: { authorization: 'Bearer health-token' },
      requestContext: { http: { method: 'GET' } },
    });
    expect(health.body).toContain('postgres://app:***@db.internal');
    expectNoSecret('health response', health.body);

    const history = await runCli(['--config', f.configPath, 'history', '--json'], {
      env: { RETENTION_DATABASE_URL: f.databaseUrl },
    });
    expect(history.code, history.stderr).toBe(0);
    expect((JSON.parse(history.stdout) as RunReport[])[0]).toMatchObject({ runId: result.runId, status: 'failed' });
    expectClean('history of the Lambda run', history);
    await f.runtime.close();
  });
});
