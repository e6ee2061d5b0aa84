import net from 'node:net';
import { expect } from 'vitest';
import type { CliIO } from '../../lib/cli/context.ts';
import { main } from '../../lib/cli/main.ts';
import type { CliResult } from './cli.ts';

/**
 * Helpers for the bad-input tables (test/unit/bad-inputs.test.ts, test/e2e/bad-inputs.test.ts):
 * a tripwire that every backend of a bad config points at, the CLI run in-process, and the bar
 * every refusal must clear.
 */
export interface Tripwire {
  /** Connections accepted so far: any at all means something tried to reach a backend. */
  readonly connections: number;
  /** As an S3, DynamoDB or Vercel Blob endpoint. */
  readonly http: string;
  /** As a PostgreSQL URL (stores and the control store). */
  readonly postgres: string;
  close(): Promise<void>;
}

/** A TCP server that counts and drops every connection: a backend that must never be called. */
export async function startTripwire(): Promise<Tripwire> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    get connections() {
      return connections;
    },
    http: `http://127.0.0.1:${port}`,
    postgres: `postgres://retention:secret@127.0.0.1:${port}/app`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** `main(argv)` with in-memory streams: the same parsing, loading and validation as the binary. */
export async function runInProcess(argv: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = {
    stdout: { write: (text) => void (stdout += text) },
    stderr: { write: (text) => void (stderr += text), isTTY: false },
    env,
    cwd,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** Longest stderr line a refusal may print: the value it echoes is clipped to 200 characters. */
const MAX_LINE = 600;

/**
 * The bar: exit 2, nothing on stdout, and every `error:` line reads `error: <path>: <what> (<fix>)`,
 * one of them naming `path` and starting its message with `says`; no line echoes a long value.
 */
export function expectRefused(result: CliResult, path: string, says: string, what: string): void {
  const lines = result.stderr.split('\n').filter((line) => line.length > 0);
  const context = `${what}\n${result.stderr.slice(0, 2_000)}`;
  expect(result.code, context).toBe(2);
  expect(result.stdout, context).toBe('');
  expect(Math.max(...lines.map((line) => line.length)), context).toBeLessThanOrEqual(MAX_LINE);
  const errors = lines.filter((line) => line.startsWith('error: '));
  expect(errors.length, context).toBeGreaterThan(0);
  for (const line of errors) expect(line, context).toMatch(/^error: \S.*?: .+ \(.+\)$/);
  const named = errors.find((line) => line.startsWith(`error: ${path}: `));
  expect(named, `${context}\nno line names ${path}`).toBeDefined();
  const expected = `error: ${path}: ${says}`;
  expect(named!.slice(0, expected.length), context).toBe(expected);
}
