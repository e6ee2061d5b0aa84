import { main } from '../../lib/cli/main.ts';
import type { RunReport } from '../../lib/core/types.ts';
import { type CliResult, runCli } from './cli.ts';
import type { AuditEntry } from './crashTrialChecks.ts';

/**
 * The operator's side of a crash trial: the CLI commands that follow a kill, run either as child
 * processes or through the CLI's `main()` in this process (the same code path, without the
 * ~0.7 s start of a process).
 */
export type CliRunner = (args: string[], env: Record<string, string>) => Promise<CliResult>;

export const childProcessCli: CliRunner = (args, env) => runCli(args, { env });

export const inProcessCli: CliRunner = async (args, env) => {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: { write: (text) => void (stdout += text) },
    stderr: { write: (text) => void (stderr += text) },
    env: { ...process.env, RETENTION_LOG_LEVEL: 'info', ...env },
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
};

/** One policy's commands, as an operator types them: `--config <file>`, the control store in `env`. */
export class Operator {
  constructor(
    private readonly cli: CliRunner,
    private readonly configPath: string,
    private readonly policy: string,
    private readonly env: Record<string, string>,
    /** Flags every `run` gets (`--before`). */
    private readonly runFlags: string[],
  ) {}

  private command(...args: string[]): Promise<CliResult> {
    return this.cli(['--config', this.configPath, ...args], this.env);
  }

  private async json<T>(...args: string[]): Promise<T> {
    const result = await this.command(...args, '--json');
    try {
      return JSON.parse(result.stdout) as T;
    } catch {
      throw new Error(
        `retention ${args.join(' ')} printed no JSON (exit ${result.code}): ${result.stderr.slice(-2000)}`,
      );
    }
  }

  /** The arguments of `retention run` for this policy, for the process a trial kills. */
  runArgs(): string[] {
    return ['--config', this.configPath, 'run', '--json', ...this.runFlags];
  }

  /**
   * After a crash: `run`, which the dead run's lease refuses (it would expire on its own after
   * 60 s); `lease break`; `run`, which resolves the dead run's intents and resumes its pass.
   */
  async recover(): Promise<{ firstStatus: RunReport['status']; last: RunReport }> {
    const first = await this.json<RunReport>('run', ...this.runFlags);
    if (first.status !== 'skipped_locked') return { firstStatus: first.status, last: first };
    const broken = await this.command('lease', 'break', this.policy);
    if (broken.code !== 0) throw new Error(`lease break failed (${broken.code}): ${broken.stderr}`);
    return { firstStatus: first.status, last: await this.json<RunReport>('run', ...this.runFlags) };
  }

  /** Whether `runId` is still `running` in the history: it released no lease (that comes after its report). */
  async isRunning(runId: string | undefined): Promise<boolean> {
    if (runId === undefined) return false;
    const runs = await this.json<Array<{ runId: string; status: string }>>('history', '--policy', this.policy);
    return runs.find((run) => run.runId === runId)?.status === 'running';
  }

  audit(): Promise<AuditEntry[]> {
    return this.json<AuditEntry[]>('audit', '--policy', this.policy, '--limit', '1000000');
  }

  /** `retention audit verify` of the policy: its chains recomputed (invariant 13); the problems, if any. */
  async verifyAudit(): Promise<string[]> {
    const report = await this.json<{ intact: boolean; problems: Array<{ trail: string; message: string }> }>(
      'audit',
      'verify',
      '--policy',
      this.policy,
    );
    return report.problems.map((problem) => `audit verify: ${problem.trail}: ${problem.message}`);
  }
}
