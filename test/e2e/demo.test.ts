import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

/** `npm start` on a fresh machine: embedded PostgreSQL, demo data, plan + run; twice. */
const home = await mkdtemp(path.join(os.tmpdir(), 'retention-demo-home-'));
// As root, PostgreSQL runs as the postgres user, which must be able to traverse the home.
await chmod(home, 0o755);
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('demo (npm start)', () => {
  it('runs on embedded defaults, shows deletions and holds, and works twice', async () => {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const result = await runCli(['demo', '--json'], { env: { RETENTION_HOME: home, RETENTION_DATABASE_URL: '' }, cwd: home });
      expect(result.code, result.stderr).toBe(0);
      const { plan, run } = JSON.parse(result.stdout) as { plan: Array<{ policy: string; eligible: number; held: number }>; run: Array<{ policy: string; status: string; deleted: number; held: number }> };
      expect(run.map((report) => report.policy)).toEqual(['temp-audio', 'app-logs', 'thumbnail-cache', 'documents']);
      for (const report of run) {
        expect(report.status).toBe('completed');
        expect(report.deleted).toBeGreaterThan(0);
        const planned = plan.find((candidate) => candidate.policy === report.policy)!;
        expect(report.deleted).toBe(planned.eligible - planned.held);
      }
      expect(run.find((report) => report.policy === 'documents')!.held).toBeGreaterThan(0);
    }
    const history = await runCli(['--config', path.join(home, 'demo', 'retention.demo.json'), 'history', '--json'], { env: { RETENTION_HOME: home, RETENTION_DATABASE_URL: '' }, cwd: home });
    expect(JSON.parse(history.stdout)).toHaveLength(16);
  });
});
