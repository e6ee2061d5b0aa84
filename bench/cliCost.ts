import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { acquireEmbeddedPostgres } from '../lib/control/local/embedded.ts';
import { startTestPostgres } from '../test/support/postgres.ts';
import { type CliRun, cliWorkspace, median, runCli, runTimed } from './cliRun.ts';

/**
 * The fixed cost of a CLI run (issue 16: ≤ 1 s), printed (not a timed test):
 *
 *   npx tsx bench/cliCost.ts [--repeat 7] [--rows 100000] [--before <another checkout>]
 *
 * `node bin/retention.js run --policy docs` on a rows table with nothing due, the control store
 * embedded (default durability) under a home of its own, timed from spawn to exit (wall clock,
 * and CPU time, which a busy machine disturbs less); median of `repeat`. With `--before`, the
 * same command of another checkout (e.g. `git archive <commit>` with node_modules linked) runs
 * alternately with this one's, each round. Where this checkout's time goes, each measured on its own, also medians:
 *   node         `node -e 0`: the runtime alone,
 *   start-up     `retention --help`: node, tsx and the CLI's modules (no config, no server),
 *   server up    acquiring the embedded PostgreSQL when it is not running (pg_ctl start, connect),
 *   server down  releasing it as the last client (pg_ctl stop),
 *   the run      from the run's `run_started` log line to its `run_completed` (lease, census,
 *                history), as the CLI run logged them,
 *   the rest     what is left: config validation, control-store migrations check, closing.
 */
const { values: args } = parseArgs({
  options: {
    repeat: { type: 'string', default: '7' },
    rows: { type: 'string', default: '100000' },
    before: { type: 'string' },
  },
});
const REPEAT = Number(args.repeat);
const ROWS = Number(args.rows);
const BIN = path.join(import.meta.dirname, '..', 'bin', 'retention.js');

/** Wall and CPU seconds of a command that needs no config (node alone, `--help`). */
async function timed(argv: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<[number, number]> {
  const run = await runTimed(argv, env, cwd);
  return [run.seconds, run.cpuSeconds];
}

function span(run: CliRun, from: string, to: string): number {
  const at = (name: string) => Date.parse(String(run.events.find((event) => event.event === name)?.timestamp));
  return (at(to) - at(from)) / 1000;
}

const policy = (url: string) => ({
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

async function seedTable(url: string): Promise<void> {
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
}

type Series = Record<string, number[]>;
const push = (series: Series, name: string, value: number) => (series[name] ??= []).push(value);

async function main(): Promise<void> {
  const server = await startTestPostgres();
  const url = server.url('postgres');
  await seedTable(url);
  // This checkout, and with --before another one (its bin/retention.js), each with a home of its own.
  const checkouts = [
    { name: 'this', bin: BIN },
    ...(args.before ? [{ name: 'before', bin: path.join(path.resolve(args.before), 'bin', 'retention.js') }] : []),
  ];
  const workspaces = await Promise.all(checkouts.map(() => cliWorkspace(policy(url))));
  try {
    // The first command in a new home creates the cluster (initdb, once per home): not measured.
    for (const [index, checkout] of checkouts.entries()) {
      const { env, dir } = workspaces[index]!;
      await runCli(['status'], env, dir, checkout.bin);
    }
    const series: Series = {};
    for (let round = 0; round < REPEAT; round += 1) {
      // Alternated in each round, so that whatever else loads the machine loads both alike.
      for (const [index, checkout] of checkouts.entries()) {
        const { env, dir } = workspaces[index]!;
        const cli = await runCli(['run', '--policy', 'docs', '--json'], env, dir, checkout.bin);
        if (cli.exitCode !== 0) throw new Error(`${checkout.name}: retention run exited ${cli.exitCode}`);
        push(series, `${checkout.name} wall`, cli.seconds);
        push(series, `${checkout.name} cpu`, cli.cpuSeconds);
        if (checkout.name !== 'this') continue;
        push(series, 'run', span(cli, 'run_started', 'run_completed'));
        const [nodeWall, nodeCpu] = await timed([process.execPath, '-e', '0'], dir, env);
        const [helpWall, helpCpu] = await timed([process.execPath, checkout.bin, '--help'], dir, env);
        push(series, 'node wall', nodeWall);
        push(series, 'node cpu', nodeCpu);
        push(series, 'help wall', helpWall);
        push(series, 'help cpu', helpCpu);
        let started = performance.now();
        const embedded = await acquireEmbeddedPostgres(env.RETENTION_HOME!, { ...process.env, ...env });
        push(series, 'up', (performance.now() - started) / 1000);
        started = performance.now();
        await embedded.release();
        push(series, 'down', (performance.now() - started) / 1000);
      }
    }
    const m = (name: string) => median(series[name] ?? []);
    const ms = (value: number) => `${(value * 1000).toFixed(0).padStart(5)} ms`;
    const each = (name: string) => (series[name] ?? []).map((value) => value.toFixed(2)).join(' / ');
    console.log(`retention run, nothing due, ${ROWS} rows in scope; median of ${REPEAT}; node ${process.version}`);
    for (const checkout of checkouts)
      console.log(
        `${checkout.name.padEnd(6)} wall ${m(`${checkout.name} wall`).toFixed(3)} s (${each(`${checkout.name} wall`)})` +
          `  cpu ${m(`${checkout.name} cpu`).toFixed(3)} s (${each(`${checkout.name} cpu`)})  target: wall <= 1 s`,
      );
    const parts: Array<[string, number, number | undefined]> = [
      ['node (node -e 0)', m('node wall'), m('node cpu')],
      ['tsx + CLI modules (--help, less node)', m('help wall') - m('node wall'), m('help cpu') - m('node cpu')],
      ['embedded server up (start, connect)', m('up'), undefined],
      ['the run (run_started → run_completed)', m('run'), undefined],
      ['embedded server down (stop)', m('down'), undefined],
    ];
    const known = parts.reduce((sum, [, wall]) => sum + wall, 0);
    parts.push(['the rest (config, migrations check, closing)', m('this wall') - known, undefined]);
    console.log('where the time of this checkout goes (medians, each measured on its own):      wall      cpu');
    for (const [name, wall, cpu] of parts)
      console.log(`  ${name.padEnd(72)} ${ms(wall)} ${cpu === undefined ? '' : ms(cpu)}`);
  } finally {
    for (const workspace of workspaces) await workspace.remove();
    await server.stop();
  }
}

await main();
