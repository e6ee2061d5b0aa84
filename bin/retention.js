#!/usr/bin/env node
// The CLI is TypeScript run through tsx, so `npx retention` works right after `npm ci`
// with no build step.
import { register } from 'tsx/esm/api';

register();
// `retention history | head`: a reader that stops early is not an error to report.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
const { main } = await import('../lib/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// Everything a command does is awaited by main (reports printed, history written, stores closed).
// What can still hold the process is work abandoned at a deadline: a connection attempt to a
// frozen server waits out its own timeout. Give clean closes a moment, then exit.
setTimeout(() => process.exit(), 500).unref();
