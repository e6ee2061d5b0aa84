import { execFile } from 'node:child_process';
import { chmod, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../lib/core/types.ts';
import { runCli, seedFiles } from '../support/cli.ts';
import { usePostgresAndScratch } from '../support/lifecycle.ts';

/**
 * The attention queue as an operator meets it, through the CLI on a local PostgreSQL control
 * store: a file the process cannot delete fails three runs in a row, is listed with its last
 * error and run, fails again on retry, is dismissed (a governance record), and once fixed a
 * retry deletes it.
 */
const shared = usePostgresAndScratch('retention-attention-');
const DAY = 86_400_000;
const ACTOR = `cli:alice@${os.hostname()}`;
type Json = Record<string, unknown>;

/**
 * Makes `file` undeletable by this process and returns the undo. Permissions do not stop root:
 * as root the file is made immutable (chattr +i: unlink fails with EPERM); otherwise its
 * directory is made read-only (EACCES).
 */
async function undeletable(file: string): Promise<() => Promise<void>> {
  if (process.getuid?.() === 0) {
    await promisify(execFile)('chattr', ['+i', file]);
    return async () => void (await promisify(execFile)('chattr', ['-i', file]));
  }
  await chmod(path.dirname(file), 0o555);
  return () => chmod(path.dirname(file), 0o755);
}

describe('retention attention', () => {
  let undo: (() => Promise<void>) | undefined;
  afterAll(async () => undo?.());

  it('lists an item that failed in 3 consecutive runs, retries it, dismisses it (audited), and retries it once fixed', async () => {
    const root = path.join(shared.scratch, 'root');
    const old = new Date(Date.now() - 40 * DAY);
    await seedFiles(root, [
      { key: 'a.txt', mtime: old },
      { key: 'stuck/b.txt', mtime: old },
    ]);
    const stuck = path.join(root, 'stuck', 'b.txt');
    undo = await undeletable(stuck);
    const policy = {
      name: 'files',
      class: 'blobs',
      schedule: '0 * * * *',
      store: { kind: 'fs', root },
      retention: '30d',
      limits: { maxDeleteFraction: 1 },
    };
    const env = { RETENTION_DATABASE_URL: await shared.server.createDatabase('attention'), RETENTION_ACTOR: 'alice' };
    const configWith = async (policies: Json[]) => {
      const file = path.join(shared.scratch, `config-${Math.random().toString(36).slice(2)}.json`);
      await writeFile(file, JSON.stringify({ policies }));
      return file;
    };
    const config = await configWith([policy]);
    const cli = (...args: string[]) => runCli(['--config', config, ...args], { env });
    const json = async <T = Json>(code: number, ...args: string[]): Promise<T> => {
      const result = await cli(...args, '--json');
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(code);
      return JSON.parse(result.stdout) as T;
    };

    const reports: RunReport[] = [];
    for (let run = 0; run < 2; run += 1) reports.push(await json<RunReport>(0, 'run'));
    expect(reports.map((report) => [report.deleted, report.failed, report.attention])).toEqual([
      [1, 1, { open: 0, after: 3 }],
      [0, 1, { open: 0, after: 3 }],
    ]);
    const third = await cli('run');
    expect(third.stdout).toContain('files: 1 item failed in 3 or more consecutive runs');
    const [listed, text] = await Promise.all([json<Json[]>(0, 'attention', 'list'), cli('attention', 'list')]);
    expect(listed).toEqual([
      expect.objectContaining({
        policy: 'files',
        key: 'stuck/b.txt',
        failures: 3,
        lastRunId: expect.not.stringMatching(new RegExp(`^(${reports[0]!.runId}|${reports[1]!.runId})$`)),
        lastError: expect.stringMatching(/EPERM|EACCES/),
        dismissed: null,
      }),
    ]);
    expect(text.stdout).toMatch(/files\s+stuck\/b\.txt\s+3\s/);
    expect(text.stdout).toContain('1 open.');

    // Still undeletable: the retry runs the policy and says so, exit 1.
    const retried = await json<{ report: RunReport; items: Json[] }>(1, 'attention', 'retry', '--policy', 'files');
    expect(retried.report).toMatchObject({ status: 'completed', failed: 1, trigger: 'manual' });
    expect(retried.items).toEqual([
      expect.objectContaining({ key: 'stuck/b.txt', outcome: 'failed again', failures: 4 }),
    ]);

    const [noReason, unknown] = await Promise.all([
      cli('attention', 'dismiss', '--policy', 'files', '--key', 'stuck/b.txt'),
      cli('attention', 'dismiss', '--key', 'a.txt', '--reason', 'x'),
    ]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toMatch(/^error: --reason: a dismissal needs a reason/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('error: --key: no failing item "a.txt" in files');
    const dismissed = await cli('attention', 'dismiss', '--key', 'stuck/b.txt', '--reason', 'owned by team X (#123)');
    expect(dismissed.code, dismissed.stderr).toBe(0);

    const [open, all, records, status] = await Promise.all([
      json(0, 'attention', 'list'),
      json<Json[]>(0, 'attention', 'list', '--dismissed'),
      json<Json[]>(0, 'audit', '--action', 'attention_dismissed'),
      json<{ policies: Json[] }>(0, 'status'),
    ]);
    expect(open).toEqual([]);
    expect(all).toEqual([
      expect.objectContaining({ key: 'stuck/b.txt', dismissed: expect.objectContaining({ by: ACTOR }) }),
    ]);
    expect(records).toEqual([
      expect.objectContaining({
        action: 'attention_dismissed',
        status: 'recorded',
        actor: ACTOR,
        scope: 'files',
        subject: 'stuck/b.txt',
        reason: 'owned by team X (#123)',
        runId: retried.report.runId,
        detail: expect.stringMatching(/^failed in 4 consecutive runs \(last /),
      }),
    ]);
    expect(status.policies[0]).toMatchObject({ policy: 'files', attention: { open: 0 } });

    // Fixed: a retry of that key deletes it and the streak ends.
    await undo();
    undo = undefined;
    const fixed = await json<{ report: RunReport; items: Json[] }>(
      0,
      'attention',
      'retry',
      '--policy',
      'files',
      '--key',
      'stuck/b.txt',
    );
    expect(fixed.report).toMatchObject({ deleted: 1, failed: 0, attention: { open: 0 } });
    expect(fixed.items).toEqual([{ key: 'stuck/b.txt', outcome: 'resolved' }]);
    await expect(stat(stuck)).rejects.toThrow(/ENOENT/);
    expect(await json(0, 'attention', 'list', '--dismissed')).toEqual([]);
  });
});
