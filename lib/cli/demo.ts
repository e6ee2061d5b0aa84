import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { acquireEmbeddedPostgres, retentionHome } from '../control/local/embedded.ts';
import { DEMO_HOLDS, DEMO_LOG_TO_RESTORE, demoDocumentHolds, seedDemo, seedDocumentsTable } from '../demo/seed.ts';
import { createSqlClient } from '../sql/client.ts';
import { type CliIO, withSession } from './context.ts';
import { exitCodeFor, printReports, runPolicies } from './run.ts';
import { DEFAULT_PORT } from './serve.ts';

/**
 * `npm start`: seeds demo data, puts a few documents on legal hold, then plans and runs every
 * demo policy through the same code as `retention plan` / `retention run`.
 */
export async function demoCommand(io: CliIO, flags: { json?: boolean }): Promise<number> {
  const home = retentionHome(io.env, io.cwd);
  const dir = path.join(home, 'demo');
  await mkdir(dir, { recursive: true });
  const say = (text: string): void => {
    if (!flags.json) io.stdout.write(`${text}\n`);
  };
  // The demo documents table lives in the control database (embedded unless one is configured),
  // and the demo config names that database's URL: the embedded server keeps its port while it
  // runs (held for the whole demo) and takes the same port again at its next start while free,
  // so the commands the demo suggests find it.
  const embedded = io.env.RETENTION_DATABASE_URL ? undefined : await acquireEmbeddedPostgres(home);
  if (embedded?.notice) io.stderr.write(`notice: ${embedded.notice}\n`);
  try {
    const databaseUrl = io.env.RETENTION_DATABASE_URL || embedded!.url;
    const now = new Date();
    const { config, files } = await seedDemo(dir, now, databaseUrl);
    const sql = createSqlClient({ url: databaseUrl });
    const rows = await seedDocumentsTable(sql, now).finally(() => sql.close());
    const configPath = path.join(dir, 'retention.demo.json');
    // It names the database with its password: readable by its owner only.
    await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await chmod(configPath, 0o600); // an existing file keeps its mode through writeFile
    say(
      `Seeded ${files} demo files under ${path.join(dir, 'data')} and ${rows} rows in demo.documents (config: ${configPath}).`,
    );
    return await runDemo(io, configPath, flags, say);
  } finally {
    await embedded?.release();
  }
}

async function runDemo(
  io: CliIO,
  configPath: string,
  flags: { json?: boolean },
  say: (text: string) => void,
): Promise<number> {
  return withSession(io, configPath, async (session) => {
    const existing = await session.control.listHolds('documents');
    const holds = demoDocumentHolds();
    for (const hold of holds) {
      if (existing.some((current) => current.key === hold.key && current.policy === 'documents')) continue;
      await session.control.addHold({ policy: 'documents', ...hold, createdBy: session.actor });
    }
    say(
      `Legal holds on ${holds.length} documents: ${DEMO_HOLDS.map((hold) => `${hold.key}${hold.prefix ? '*' : ''}`).join(', ')}.\n`,
    );

    const base = { trigger: 'demo' as const, force: false, list: false };
    const planned = await runPolicies(session, session.config.policies, { json: true }, { ...base, dryRun: true });
    const ran = await runPolicies(session, session.config.policies, { json: true }, { ...base, dryRun: false });
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ plan: planned, run: ran }, null, 2)}\n`);
      return exitCodeFor(ran, false);
    }
    say('Plan (dry run: nothing deleted; the "deleted" column shows what a live run would delete):');
    printReports(io, planned, {});
    say('\nRun:');
    printReports(io, ran, {});
    const cli = `npx retention --config ${path.relative(io.cwd, configPath) || configPath}`;
    const runOf = (policy: string): string => ran.find((report) => report.policy === policy)?.runId ?? '<run id>';
    say(
      [
        '',
        `Control store: ${session.controlLocation}`,
        `History:       ${cli} history`,
        `Audit trail:   ${cli} audit --run ${ran.find((report) => report.deleted > 0)?.runId ?? '<run id>'}`,
        `Status:        ${cli} status`,
        `Restore a log: ${cli} restore --run ${runOf('app-logs')} --key ${DEMO_LOG_TO_RESTORE}`,
        // Not a command line the demo's test runs as printed: `serve` runs until stopped.
        `Dashboard:     export RETENTION_API_TOKEN="$(openssl rand -hex 16)"; echo "$RETENTION_API_TOKEN"`,
        `               ${cli} serve   # then open http://127.0.0.1:${DEFAULT_PORT}/ and paste the token`,
      ].join('\n'),
    );
    return exitCodeFor(ran, false);
  });
}
