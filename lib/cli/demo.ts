import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { retentionHome } from '../control/embedded.ts';
import { DEMO_HOLDS, seedDemo } from '../demo/seed.ts';
import { withSession, type CliIO } from './context.ts';
import { exitCodeFor, printReports, runPolicies } from './run.ts';

/**
 * `npm start`: seeds demo data, puts a few documents on legal hold, then plans and runs every
 * demo policy through the same code as `retention plan` / `retention run`.
 */
export async function demoCommand(io: CliIO, flags: { json?: boolean }): Promise<number> {
  const home = retentionHome(io.env, io.cwd);
  const dir = path.join(home, 'demo');
  await mkdir(dir, { recursive: true });
  const { config, files } = await seedDemo(dir, new Date());
  const configPath = path.join(dir, 'retention.demo.json');
  await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
  const say = (text: string): void => {
    if (!flags.json) io.stdout.write(`${text}\n`);
  };
  say(`Seeded ${files} demo files under ${path.join(dir, 'data')} (config: ${configPath}).`);

  return withSession(io, configPath, async (session) => {
    const existing = await session.control.listHolds('documents');
    for (const hold of DEMO_HOLDS) {
      if (existing.some((current) => current.key === hold.key && current.policy === 'documents')) continue;
      await session.control.addHold({ policy: 'documents', ...hold, createdBy: session.actor });
    }
    say(`Legal holds on: ${DEMO_HOLDS.map((hold) => hold.key).join(', ')}.\n`);

    const base = { trigger: 'demo' as const, force: false, list: false };
    const planned = await runPolicies(session, { all: true, json: true }, { ...base, dryRun: true });
    const ran = await runPolicies(session, { all: true, json: true }, { ...base, dryRun: false });
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ plan: planned, run: ran }, null, 2)}\n`);
      return exitCodeFor(ran, false);
    }
    say('Plan (dry run: nothing deleted; the "deleted" column shows what a live run would delete):');
    printReports(io, planned, {});
    say('\nRun:');
    printReports(io, ran, {});
    const cli = `npx retention --config ${path.relative(io.cwd, configPath) || configPath}`;
    say(
      [
        '',
        `Control store: ${session.controlLocation}`,
        `History:       ${cli} history`,
        `Audit trail:   ${cli} audit --run ${ran.find((report) => report.deleted > 0)?.runId ?? '<run id>'}`,
        `Status:        ${cli} status`,
        `Restore logs:  ${cli} restore --run ${ran.find((report) => report.policy === 'app-logs')?.runId ?? '<run id>'}`,
      ].join('\n'),
    );
    return exitCodeFor(ran, false);
  });
}
