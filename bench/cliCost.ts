import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { acquireEmbeddedPostgres } from '../lib/control/local/embedded.ts';
import { startTestPostgres } from '../test/support/postgres.ts';
import { type CliRun, cliWorkspace, median, runCli } from './cliRun.ts';

/**
 * The fixed cost of a CLI run (issue 16: ≤ 1 s), printed (not a timed test):
 *
 *   npx tsx bench/cliCost.ts [--repeat 7] [--rows 100000]
 *
 * `node bin/retention.js run --policy docs` on a rows table with nothing due, the control store
 * embedded (default durability) under a home of its own, timed from spawn to exit; median of
 * `repeat`. Where it goes, each measured on its own, also medians:
 *   node         `node -e 0`: the runtime alone,
 *   start-up     `retention --help`: node, tsx and the CLI's modules (no config, no server),
 *   server up    acquiring the embedded PostgreSQL when it is not running (pg_ctl start, connect),
 *   server down  releasing it as the last client (pg_ctl stop),
 *   the run      from the run's `run_started` log line to its `run_completed` (lease, census,
 *                history), as the CLI run logged them,
 *   the rest     what is left: config validation, control-store migrations check, closing.
 */
const { values: args } = parseArgs({
  options: { repeat: { type: 'string', default: '7' }, rows: { type: 'string', default: '100000' } },
});
const REPEAT = Number(args.repeat);
const ROWS = Number(args.rows);

async function seconds(command: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const started = performance.now();
  const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore' });
  await new Promise((resolve) => child.once('close', resolve));
  return (performance.now() - started) / 1000;
}

function span(run: CliRun, from: string, to: string): number {
  const at = (name: string) => Date.parse(String(run.events.find((event) => event.event === name)?.timestamp));
  return (at(to) - at(from)) / 1000;
}

async function main(): Promise<void> {
  const server = await startTestPostgres();
  const url = server.url('postgres');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('CREATE TABLE documents (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, body text)');
  await client.query(
    `INSERT INTO documents SELECT g, now() - (g % 20) * interval '1 day', 'x' FROM generate_series(1, $1) AS g`,
    [ROWS],
  );
  await client.query('CREATE INDEX documents_created_at ON documents (created_at, id)');
  await client.query('VACUUM ANALYZE documents');
  await client.end();
  const workspace = await cliWorkspace({
    policies: [
      {
        name: 'docs',
        class: 'rows',
        schedule: '0 * * * *',
        store: { kind: 'postgres', url },
        table: 'public.documents',
        timestamp: 'created_at',
        retention: '30d',
      },
    ],
  });
  try {
    const home = workspace.env.RETENTION_HOME!;
    // The first command in a new home creates the cluster (initdb, once per home): not measured.
    await runCli(['status'], workspace.env, workspace.dir);
    const bin = path.join(import.meta.dirname, '..', 'bin', 'retention.js');
    const figures = { total: [] as number[], node: [] as number[], startup: [] as number[] };
    const embeddedTimes = { up: [] as number[], down: [] as number[] };
    const run: number[] = [];
    for (let round = 0; round < REPEAT; round += 1) {
      const cli = await runCli(['run', '--policy', 'docs', '--json'], workspace.env, workspace.dir);
      if (cli.exitCode !== 0) throw new Error(`retention run exited ${cli.exitCode}`);
      figures.total.push(cli.seconds);
      run.push(span(cli, 'run_started', 'run_completed'));
      figures.node.push(await seconds([process.execPath, '-e', '0']));
      figures.startup.push(await seconds([process.execPath, bin, '--help'], workspace.env));
      let started = performance.now();
      const embedded = await acquireEmbeddedPostgres(home, { ...process.env, ...workspace.env });
      embeddedTimes.up.push((performance.now() - started) / 1000);
      started = performance.now();
      await embedded.release();
      embeddedTimes.down.push((performance.now() - started) / 1000);
    }
    const total = median(figures.total);
    const parts: Array<[string, number]> = [
      ['node (node -e 0)', median(figures.node)],
      ['tsx + CLI modules (--help, less node)', median(figures.startup) - median(figures.node)],
      ['embedded server up (start, connect)', median(embeddedTimes.up)],
      ['the run (run_started → run_completed)', median(run)],
      ['embedded server down (stop)', median(embeddedTimes.down)],
    ];
    const known = parts.reduce((sum, [, value]) => sum + value, 0);
    console.log(`retention run, nothing due, ${ROWS} rows in scope; median of ${REPEAT}; node ${process.version}`);
    console.log(
      `total ${total.toFixed(3)} s (each run: ${figures.total.map((value) => value.toFixed(2)).join(' / ')}; target <= 1 s)`,
    );
    for (const [name, value] of [...parts, ['the rest (config, migrations check, closing)', total - known] as const])
      console.log(`  ${name.padEnd(42)} ${(value * 1000).toFixed(0).padStart(5)} ms`);
  } finally {
    await workspace.remove();
    await server.stop();
  }
}

await main();
