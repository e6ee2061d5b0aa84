import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';
import { startTcpProxy } from '../support/tcpProxy.ts';

/**
 * The evidence an auditor asks for, through the CLI on a local PostgreSQL control store:
 * governance actions on the record, `verify` for every state (files and rows, by row key and by
 * linked file), `restore --since`, the audit's filters and pages, and answers while one policy's
 * database is down.
 */
const shared = usePostgresAndScratch('retention-governance-');
const DAY = 86_400_000;
const ACTOR = `cli:alice@${os.hostname()}`;
const ago = (days: number) => new Date(Date.now() - days * DAY);

type Json = Record<string, unknown>;

interface Fixture {
  root: string;
  backups: string;
  cli(...args: string[]): ReturnType<typeof runCli>;
  /** The CLI with `--json`, its exit code checked, stdout parsed. */
  json<T = Json>(expectedCode: number, ...args: string[]): Promise<T>;
  /** The CLI on another config (the same control store). */
  cliWith(policies: Json[], ...args: string[]): ReturnType<typeof runCli>;
}

/** A control database and a config; `policies` get the fs root and backup directory of the case. */
async function fixture(policies: (dirs: { root: string; backups: string }) => Json[]): Promise<Fixture> {
  const dir = await mkdtempIn(shared.scratch);
  const root = path.join(dir, 'root');
  const backups = path.join(dir, 'backups');
  await mkdir(root, { recursive: true });
  const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('governance'), RETENTION_ACTOR: 'alice' };
  const cliWith = async (list: Json[], ...args: string[]) => {
    const configPath = path.join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(configPath, JSON.stringify({ policies: list }));
    return runCli(['--config', configPath, ...args], { env });
  };
  const configured = policies({ root, backups });
  const cli = (...args: string[]) => cliWith(configured, ...args);
  const json = async <T = Json>(expectedCode: number, ...args: string[]): Promise<T> => {
    const result = await cli(...args, '--json');
    expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(expectedCode);
    return JSON.parse(result.stdout) as T;
  };
  return { root, backups, cli, json, cliWith };
}

let cases = 0;
async function mkdtempIn(parent: string): Promise<string> {
  cases += 1;
  const dir = path.join(parent, `case-${cases}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

function filesPolicy(dirs: { root: string; backups: string }, overrides: Json = {}): Json {
  return {
    name: 'files',
    class: 'blobs',
    schedule: '0 * * * *',
    store: { kind: 'fs', root: dirs.root },
    retention: '30d',
    backup: { to: dirs.backups, keepFor: '30d' },
    limits: { maxDeleteFraction: 1 },
    ...overrides,
  };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe('governance actions are audit records', () => {
  it('holds, pauses, resumes, a lease break, --force and a restore: each with actor, reason and scope, by --action, page by page', async () => {
    const f = await fixture((dirs) => [filesPolicy(dirs, { limits: { maxDeleteFraction: 0.4 } })]);
    const old = ago(40);
    await seedFiles(f.root, [
      { key: 'tmp/a.txt', mtime: old },
      { key: 'tmp/b.txt', mtime: old },
      { key: 'tmp/c.txt', mtime: old },
      { key: 'tmp/young.txt', mtime: ago(1) },
    ]);
    const added = await f.cli('hold', 'add', '--policy', 'files', '--key', 'tmp/c.txt', '--reason', 'case 1');
    expect(added.code, added.stderr).toBe(0);
    const holdId = /hold (\d+) added/.exec(added.stdout)![1]!;
    for (const args of [
      ['pause', '--policy', 'files', '--reason', 'incident 7'],
      ['resume', '--policy', 'files', '--reason', 'incident 7 over'],
      ['pause', '--all', '--reason', 'freeze'],
      ['resume', '--all', '--reason', 'thaw'],
    ]) {
      const result = await f.cli(...args);
      expect(result.code, result.stderr).toBe(0);
    }
    // Half of what is in scope is due: past maxDeleteFraction 0.4, so only --force deletes.
    expect((await f.json<RunReport>(3, 'run')).status).toBe('aborted_limit');
    const forced = await f.json<RunReport>(0, 'run', '--force');
    expect(forced).toMatchObject({
      status: 'completed',
      deleted: 2,
      policyHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    for (const args of [
      ['lease', 'break', 'files', '--reason', 'stuck after the deploy'],
      ['restore', '--run', forced.runId, '--reason', 'deleted too much'],
      ['hold', 'remove', holdId, '--reason', 'case closed'],
    ]) {
      const result = await f.cli(...args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
    }

    const trail = await f.json<Json[]>(0, 'audit', '--policy', 'files');
    const governance = trail.filter((record) => 'scope' in record);
    const expected = [
      { action: 'hold_removed', scope: 'files', subject: 'tmp/c.txt', reason: 'case closed' },
      { action: 'restored', scope: 'files', subject: forced.runId, reason: 'deleted too much', status: 'restored' },
      { action: 'lease_broken', scope: 'files', subject: 'files', reason: 'stuck after the deploy' },
      { action: 'limit_overridden', scope: 'files', subject: forced.runId, reason: '--force', runId: forced.runId },
      { action: 'resumed', scope: '*', subject: '*', reason: 'thaw' },
      { action: 'paused', scope: '*', subject: '*', reason: 'freeze' },
      { action: 'resumed', scope: 'files', subject: 'files', reason: 'incident 7 over' },
      { action: 'paused', scope: 'files', subject: 'files', reason: 'incident 7' },
      { action: 'hold_added', scope: 'files', subject: 'tmp/c.txt', reason: 'case 1' },
    ];
    expect(governance).toEqual(
      expected.map((record) =>
        expect.objectContaining({ status: 'recorded', ...record, actor: ACTOR, at: expect.any(String) }),
      ),
    );
    expect(governance.find((record) => record.action === 'limit_overridden')!.detail).toMatch(
      /maxDeleteFraction.*the run went ahead/,
    );
    expect(governance.find((record) => record.action === 'restored')!.detail).toBe(
      `2 of 2 item(s) deleted by run ${forced.runId} back`,
    );

    // Pages of 5 until the trail ends: no record lost or repeated, and each page says where the next starts.
    const offsets = Array.from({ length: Math.ceil(trail.length / 5) }, (_, page) => page * 5);
    expect(offsets.length).toBeGreaterThanOrEqual(3);
    const [removals, breaks, text, ...pages] = await Promise.all([
      f.json<Json[]>(0, 'audit', '--action', 'hold_removed'),
      f.json<Json[]>(0, 'audit', '--action', 'lease_broken', '--policy', 'files'),
      f.cli('audit', '--policy', 'files', '--limit', '5'),
      ...offsets.map((offset) =>
        f.cli('audit', '--policy', 'files', '--limit', '5', '--offset', String(offset), '--json'),
      ),
    ]);
    expect(removals.map((record) => [record.action, record.reason])).toEqual([['hold_removed', 'case closed']]);
    expect(breaks.map((record) => record.detail)).toEqual([expect.stringMatching(/^lease of \S+ \(token \d+, /)]);
    expect(pages.flatMap((page) => JSON.parse(page.stdout) as Json[])).toEqual(trail);
    for (const [index, page] of pages.slice(0, -1).entries())
      expect(page.stderr).toContain(
        `more: retention audit --policy files --limit 5 --offset ${5 * (index + 1)} --json`,
      );
    expect(pages.at(-1)!.stderr).not.toContain('more:');
    expect(text.stdout).toContain('5 record(s)\nmore: retention audit --policy files --limit 5 --offset 5\n');
  });
});

describe('retention verify', () => {
  it('answers deleted, held, retained, overdue, unclassified and absent for files', async () => {
    const rules = { by: 'prefix', rules: { 'tmp/': '30d' } };
    const f = await fixture((dirs) => [filesPolicy(dirs, { retention: rules })]);
    await seedFiles(f.root, [
      { key: 'tmp/gone.txt', mtime: ago(40) },
      { key: 'tmp/held.txt', mtime: ago(40) },
      { key: 'tmp/young.txt', mtime: ago(5) },
      { key: 'misc/other.txt', mtime: ago(400) },
    ]);
    expect((await f.cli('hold', 'add', '--key', 'tmp/held.txt', '--reason', 'case 9')).code).toBe(0);
    const run = await f.json<RunReport>(0, 'run');
    expect(run).toMatchObject({ deleted: 1, held: 1, unclassified: 1 });
    await seedFiles(f.root, [{ key: 'tmp/late.txt', mtime: ago(45) }]);

    const verify = (key: string) => f.json(0, 'verify', '--policy', 'files', '--key', key);
    const [gone, held, young, late, other, never, text] = await Promise.all([
      verify('tmp/gone.txt'),
      verify('tmp/held.txt'),
      verify('tmp/young.txt'),
      verify('tmp/late.txt'),
      verify('misc/other.txt'),
      verify('tmp/never.txt'),
      f.cli('verify', '--key', 'tmp/gone.txt'),
    ]);
    expect(gone).toMatchObject({
      policy: 'files',
      key: 'tmp/gone.txt',
      state: 'deleted',
      runId: run.runId,
      rule: 'prefix=tmp/: 30d',
      cutoff: run.cutoffs[0]!.cutoff,
      actor: ACTOR,
      backup: {
        location: `${f.backups} (run ${run.runId})`,
        restore: `retention restore --run ${run.runId} --key tmp/gone.txt`,
      },
      policyHash: run.policyHash,
      configChanged: false,
    });
    expect(Date.parse(gone.deletedAt as string)).toBeGreaterThanOrEqual(Date.parse(run.startedAt));
    expect(held).toMatchObject({ state: 'held', holds: [{ id: expect.any(Number), reason: 'case 9', by: ACTOR }] });
    expect(young).toMatchObject({ state: 'retained', rule: 'prefix=tmp/: 30d' });
    expect(Math.abs(Date.parse(young.eligibleAt as string) - ago(-25).getTime())).toBeLessThan(60_000);
    expect(late).toMatchObject({ state: 'overdue', rule: 'prefix=tmp/: 30d' });
    expect(Math.abs(Date.parse(late.overdueSince as string) - ago(15).getTime())).toBeLessThan(60_000);
    expect(other).toMatchObject({ state: 'unclassified', attribute: { name: 'prefix', value: 'misc/other.txt' } });
    expect(never).toMatchObject({ state: 'absent' });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^files: deleted: deleted at \\S+ by run ${run.runId} \\(${ACTOR}\\)`));

    // The rule changed since: the answer still names the rule and hash the deletion ran under.
    const changed = await f.cliWith(
      [filesPolicy({ root: f.root, backups: f.backups }, { retention: { by: 'prefix', rules: { 'tmp/': '20d' } } })],
      'verify',
      '--policy',
      'files',
      '--key',
      'tmp/gone.txt',
      '--json',
    );
    expect(JSON.parse(changed.stdout)).toMatchObject({ rule: 'prefix=tmp/: 30d', configChanged: true });
  });

  it('answers for rows by row key and by linked file; a policy whose database is down is unreachable, the rest answer', async () => {
    const docs = await shared.server.createDatabase('documents');
    const events = await shared.server.createDatabase('events');
    await sqlIn(docs, [
      'CREATE TABLE documents (id bigint PRIMARY KEY, file_path text, purpose text, created_at timestamptz NOT NULL)',
      'CREATE INDEX documents_created_at ON documents (created_at, id)',
      'CREATE TABLE refs (doc_id bigint NOT NULL REFERENCES documents (id))',
      `INSERT INTO documents VALUES
         (1, 'docs/d1.pdf', 'General', now() - interval '40 days'), (2, 'docs/d2.pdf', 'General', now() - interval '40 days'),
         (3, 'docs/d3.pdf', 'General', now() - interval '5 days'), (4, 'docs/d4.pdf', 'General', now() - interval '40 days'),
         (5, 'docs/d5.pdf', 'General', now() - interval '40 days'), (6, 'docs/d6.pdf', 'Legal', now() - interval '40 days')`,
      'INSERT INTO refs VALUES (5)',
    ]);
    await sqlIn(events, [
      'CREATE TABLE events (id bigint PRIMARY KEY, created_at timestamptz NOT NULL)',
      'CREATE INDEX events_created_at ON events (created_at, id)',
      `INSERT INTO events VALUES (1, now() - interval '40 days'), (2, now() - interval '40 days')`,
    ]);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(events).port) });
    const remote = new URL(events);
    remote.port = String(proxy.port);
    try {
      const f = await fixture((dirs) => [
        {
          name: 'documents',
          class: 'rows',
          schedule: '0 2 * * *',
          store: { kind: 'postgres', url: docs },
          table: 'public.documents',
          timestamp: 'created_at',
          retention: { by: 'purpose', rules: { General: '30d' } },
          blob: { column: 'file_path', store: { kind: 'fs', root: dirs.root } },
          batchSize: 1,
          limits: { maxDeleteFraction: 1 },
        },
        {
          name: 'events',
          class: 'rows',
          schedule: '0 2 * * *',
          store: { kind: 'postgres', url: remote.toString() },
          table: 'public.events',
          timestamp: 'created_at',
          retention: '30d',
          limits: { maxDeleteFraction: 1 },
        },
      ]);
      await seedFiles(
        f.root,
        [1, 2, 3, 4, 5, 6].map((id) => ({ key: `docs/d${id}.pdf`, mtime: ago(id === 3 ? 5 : 40) })),
      );
      expect((await f.cli('hold', 'add', '--key', 'docs/d4.pdf', '--reason', 'case 4')).code).toBe(0);
      const reports = await f.json<RunReport[]>(0, 'run', '--all');
      expect(reports.map((report) => [report.policy, report.deleted, report.failed])).toEqual([
        ['documents', 2, 1],
        ['events', 2, 0],
      ]);
      proxy.cut();

      const verify = (key: string) => f.json(0, 'verify', '--policy', 'documents', '--key', key);
      const [everywhere, byFile, young, held, failing, legal, none, trail, failures, failuresText] = await Promise.all([
        f.cli('verify', '--key', '1', '--json'),
        verify('docs/d2.pdf'),
        verify('3'),
        verify('docs/d4.pdf'),
        verify('5'),
        verify('docs/d6.pdf'),
        verify('99'),
        f.cli('audit', '--key', '1', '--json'),
        f.json<Json[]>(0, 'audit', '--policy', 'documents', '--outcome', 'failed'),
        f.cli('audit', '--policy', 'documents', '--outcome', 'failed'),
      ]);
      expect(everywhere.code).toBe(1);
      expect(JSON.parse(everywhere.stdout)).toEqual([
        expect.objectContaining({ policy: 'documents', key: '1', state: 'deleted', actor: ACTOR }),
        expect.objectContaining({ policy: 'events', state: 'unreachable', error: expect.any(String) }),
      ]);
      expect(everywhere.stderr).toContain('error: policy events: could not answer:');
      expect(byFile).toMatchObject({
        state: 'deleted',
        item: { key: '2', linkedKey: 'docs/d2.pdf' },
        rule: 'purpose=General: 30d',
      });
      expect(young).toMatchObject({ state: 'retained', item: { key: '3', linkedKey: 'docs/d3.pdf' } });
      expect(held).toMatchObject({
        state: 'held',
        item: { key: '4' },
        holds: [{ key: 'docs/d4.pdf', reason: 'case 4' }],
      });
      expect(failing).toMatchObject({
        state: 'overdue',
        lastAttempt: { status: 'failed', error: expect.stringContaining('still referenced by a foreign key') },
      });
      expect(legal).toMatchObject({
        state: 'unclassified',
        item: { key: '6' },
        attribute: { name: 'purpose', value: 'Legal' },
      });
      expect(none).toMatchObject({ state: 'absent' });

      // `audit --key` across policies: what answered is printed, the unreachable policy named, exit 1.
      expect(trail.code).toBe(1);
      expect(JSON.parse(trail.stdout)).toEqual([
        expect.objectContaining({ policy: 'documents', key: '1', action: 'delete', status: 'deleted' }),
      ]);
      expect(trail.stderr).toContain('error: policy events: its own audit trail could not be read');
      expect(failures).toEqual([
        expect.objectContaining({ key: '5', status: 'failed', error: expect.stringContaining('foreign key') }),
      ]);
      expect(failuresText.stdout).toMatch(/failed\s+documents\s+5 .*still referenced by a foreign key/);
    } finally {
      await proxy.stop();
    }
  });
});

describe('restore --since', () => {
  it('undoes every live run of a bad policy since a time, newest first, and lists what could not come back', async () => {
    const f = await fixture((dirs) => [filesPolicy(dirs)]);
    const runOn = async (key: string): Promise<RunReport> => {
      await seedFiles(f.root, [{ key, mtime: ago(40) }]);
      const report = await f.json<RunReport>(0, 'run');
      expect(report.deleted).toBe(1);
      return report;
    };
    await runOn('tmp/before.txt');
    const since = new Date();
    const first = await runOn('tmp/a.txt');
    const second = await runOn('tmp/b.txt');
    const third = await runOn('tmp/c.txt');
    await rm(path.join(f.backups, 'files', third.runId, 'tmp/c.txt'));

    const restore = await f.cli('restore', '--policy', 'files', '--since', since.toISOString(), '--reason', 'bad rule');
    expect(restore.code).toBe(1);
    expect(restore.stdout).toContain(`3 live run(s) of files since ${since.toISOString().replace(/\.\d{3}Z$/, 'Z')}`);
    expect(restore.stderr).toMatch(
      new RegExp(
        `^error: restore --policy files --since \\S+: run ${third.runId}: 1 item\\(s\\) could not be restored: tmp/c.txt`,
        'm',
      ),
    );
    expect(await exists(path.join(f.root, 'tmp/a.txt'))).toBe(true);
    expect(await exists(path.join(f.root, 'tmp/b.txt'))).toBe(true);
    expect(await exists(path.join(f.root, 'tmp/c.txt'))).toBe(false);
    expect(await exists(path.join(f.root, 'tmp/before.txt'))).toBe(false);

    const [restores, beforeSince, afterSince] = await Promise.all([
      f.json<Json[]>(0, 'audit', '--policy', 'files', '--action', 'restored'),
      f.json<Json[]>(0, 'audit', '--policy', 'files', '--action', 'delete', '--until', since.toISOString()),
      f.json<Json[]>(0, 'audit', '--policy', 'files', '--outcome', 'deleted', '--since', since.toISOString()),
    ]);
    expect(restores.map((record) => [record.subject, record.status, record.reason])).toEqual([
      [first.runId, 'restored', 'bad rule'],
      [second.runId, 'restored', 'bad rule'],
      [third.runId, 'failed', 'bad rule'],
    ]);
    expect(beforeSince.map((record) => record.key)).toEqual(['tmp/before.txt']);
    expect(afterSince.map((record) => record.key)).toEqual(['tmp/c.txt', 'tmp/b.txt', 'tmp/a.txt']);
  });
});

async function sqlIn(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}
