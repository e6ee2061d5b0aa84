/**
 * fs store throughput: a full scan, then a scan + delete pass, over files spread across
 * directories (issue 10: the cost of pinned directory handles, compared with the path-based store).
 *
 *   npx tsx bench/fs.ts [--files 20000] [--rounds 3]
 *
 * Each round reseeds a fresh tree; the median round is printed. Store calls only: no engine, no audit.
 */
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Cutoffs, EligibleItem } from '../lib/core/types.ts';
import { createFsStore } from '../lib/stores/fs/store.ts';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : Number(process.argv[at + 1]);
}
const files = option('--files', 20_000);
const rounds = option('--rounds', 3);
const FILES_PER_DIRECTORY = 200;
const PAGE = 500;
const DAY = 86_400_000;

/** `d000/f00000` … with every mtime 60 days ago, so a 30-day cutoff makes all of them eligible. */
async function seed(root: string): Promise<void> {
  const old = new Date(Date.now() - 60 * DAY);
  for (let directory = 0; directory * FILES_PER_DIRECTORY < files; directory += 1) {
    const dir = path.join(root, `d${String(directory).padStart(3, '0')}`);
    await mkdir(dir);
    const count = Math.min(FILES_PER_DIRECTORY, files - directory * FILES_PER_DIRECTORY);
    await Promise.all(
      Array.from({ length: count }, async (_, index) => {
        const file = path.join(dir, `f${String(index).padStart(5, '0')}`);
        await writeFile(file, 'x');
        await utimes(file, old, old);
      }),
    );
  }
}

interface Timed {
  seconds: number;
  /** user + system CPU of the whole process (thread pool included): steadier than wall time on a shared machine. */
  cpuSeconds: number;
}

async function timed(work: () => Promise<void>): Promise<Timed> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  await work();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

async function round(): Promise<{ scan: Timed; sweep: Timed }> {
  const root = await mkdtemp(path.join(tmpdir(), 'retention-bench-fs-'));
  try {
    await seed(root);
    const cutoff = new Date(Date.now() - 30 * DAY);
    const cutoffs: Cutoffs = {
      computedAt: new Date(),
      rules: [],
      fallback: { retention: '30d', retentionMs: 30 * DAY, cutoff },
    };
    const store = createFsStore({ kind: 'fs', root, removeEmptyDirs: false });
    await store.open();

    let scanned = 0;
    const scan = await timed(async () => {
      for (let cursor: string | undefined, done = false; !done; ) {
        const page = await store.scan({ cutoffs, limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
        scanned += page.items.length;
        ({ cursor, done } = page);
      }
    });
    let deleted = 0;
    const sweep = await timed(async () => {
      for (let cursor: string | undefined, done = false; !done; ) {
        const page = await store.scan({ cutoffs, limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
        const items: EligibleItem[] = page.items.map((item) => ({ ...item, cutoff, rule: 'retention: 30d' }));
        deleted += (await store.delete(items)).filter((outcome) => outcome.status === 'deleted').length;
        ({ cursor, done } = page);
      }
    });
    await store.close?.();
    if (scanned !== files || deleted !== files) throw new Error(`scanned ${scanned}, deleted ${deleted} of ${files}`);
    return { scan, sweep };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const results = [];
for (let index = 0; index < rounds; index += 1) results.push(await round());
console.log(
  `fs store, ${files} files in directories of ${FILES_PER_DIRECTORY}, pages of ${PAGE}, median of ${rounds} rounds; node ${process.version}`,
);
for (const phase of ['scan', 'sweep'] as const) {
  const seconds = median(results.map((result) => result[phase].seconds));
  const cpuSeconds = median(results.map((result) => result[phase].cpuSeconds));
  const label = phase === 'scan' ? 'full scan' : 'scan + delete';
  console.log(
    `${label.padEnd(14)} ${seconds.toFixed(3)} s wall (${(files / seconds).toFixed(0)} files/s)  ${cpuSeconds.toFixed(3)} s CPU`,
  );
}
