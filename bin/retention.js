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
