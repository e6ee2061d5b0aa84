import { S3_COSTS } from './latencyProxy.ts';
import type { Measured } from './scenarios.ts';

/** What bench/s3.ts prints for one backend: a row per scenario, then the targets. */
export interface BackendFigures {
  backend: string;
  /** Whether the proxy enforced the per-prefix delete rate (S3), so the phase rate means something. */
  rateLimited: boolean;
  figures: Partial<Record<'ideal' | 'per-key' | 'engine' | 'cli', Measured>>;
}

const LABELS = {
  ideal: '(ideal) SDK list + delete ×1000, 5 in flight',
  'per-key': '(per-key) one delete per key, 10 in flight',
  engine: '(engine) runPolicy, audit in PostgreSQL',
  cli: '(cli) retention run, end to end',
} as const;

const rate = (m: Measured) => m.deleted / m.seconds;
/**
 * Net of the CLI's start-up; undefined when there is no fixed cost or it swallows the run (a
 * small --objects: the start-up varies by more than the deletions take).
 */
const netRate = (m: Measured) => {
  const seconds = m.seconds - (m.fixedSeconds ?? Number.POSITIVE_INFINITY);
  return seconds > 0 ? m.deleted / seconds : undefined;
};
/** Keys per second from the first delete request to the last delete response. */
const phase = (m: Measured) => m.proxy.keysDeleted / m.proxy.deletePhaseSeconds;
const per1000 = (count: number, m: Measured) => ((count / m.deleted) * 1000).toFixed(2);

export function printFigures({ backend, rateLimited, figures }: BackendFigures, prefixes: number): void {
  const ceiling = S3_COSTS.keysPerSecond * prefixes;
  const { ideal, 'per-key': perKey, cli } = figures;
  console.log(
    `\n${backend}, through the proxy (${S3_COSTS.roundTripMs} ms a request` +
      (rateLimited
        ? `, ${S3_COSTS.perKeyMs} ms a batch-deleted key, ${S3_COSTS.keysPerSecond} keys/s per prefix)`
        : ')'),
  );
  console.log(
    `${'scenario'.padEnd(46)} deleted  seconds    obj/s  ×ideal  ×per-key  list/1000` +
      (rateLimited ? '  DeleteObjects/1000  DeleteObject/1000' : '      del calls/1000                   ') +
      '  other/1000' +
      (rateLimited ? '  delete phase  of limit' : '') +
      '  peak RSS',
  );
  const row = (label: string, m: Measured, objPerSecond: number, seconds: number) => {
    const ratio = (baseline: Measured | undefined) =>
      baseline ? `${(objPerSecond / rate(baseline)).toFixed(2)}×` : '-';
    const cells = [
      label.padEnd(46),
      String(m.deleted).padStart(7),
      seconds.toFixed(2).padStart(8),
      objPerSecond.toFixed(0).padStart(8),
      ratio(ideal).padStart(7),
      ratio(perKey).padStart(9),
      per1000(m.proxy.requests.list, m).padStart(10),
      per1000(m.proxy.requests.deleteObjects, m).padStart(19),
      (rateLimited ? per1000(m.proxy.requests.deleteObject, m) : '').padStart(18),
      per1000(m.proxy.requests.other, m).padStart(11),
      ...(rateLimited
        ? [`${phase(m).toFixed(0)}/s`.padStart(13), `${((phase(m) / ceiling) * 100).toFixed(0)} %`.padStart(9)]
        : []),
      m.peakRssMb ? `${m.peakRssMb} MB`.padStart(10) : '-'.padStart(10),
    ];
    console.log(cells.join(' '));
  };
  for (const [scenario, m] of Object.entries(figures) as Array<[keyof typeof LABELS, Measured]>)
    row(LABELS[scenario], m, rate(m), m.seconds);
  const cliNet = cli && netRate(cli);
  if (cliNet !== undefined)
    row(`(cli) net of ${cli!.fixedSeconds!.toFixed(2)} s start-up`, cli!, cliNet, cli!.seconds - cli!.fixedSeconds!);
  else if (cli) console.log(`(cli) net: its start-up (${cli.fixedSeconds?.toFixed(2)} s) took as long as the run`);

  console.log('targets:');
  for (const { name, value, goal, met } of targetsOf({ backend, rateLimited, figures }, prefixes))
    console.log(
      `  ${name.padEnd(36)} ${value.toFixed(2).padStart(8)}  target ${goal.padEnd(6)} ${met ? 'met' : 'MISSED'}`,
    );
}

interface Target {
  name: string;
  value: number;
  goal: string;
  met: boolean;
}

/** Issue 16's targets: engine and CLI against both baselines, and the deletion phase or list pages. */
function targetsOf({ rateLimited, figures }: BackendFigures, prefixes: number): Target[] {
  const { ideal, 'per-key': perKey, engine, cli } = figures;
  const targets: Target[] = [];
  const versus = (name: string, value: number, baseline: Measured | undefined, goal: number) => {
    if (baseline)
      targets.push({ name, value: value / rate(baseline), goal: `≥ ${goal}×`, met: value / rate(baseline) >= goal });
  };
  for (const [name, m, value] of [
    ['engine', engine, engine && rate(engine)],
    ['cli end to end', cli, cli && rate(cli)],
    ['cli net', cli, cli && netRate(cli)],
  ] as const) {
    if (!m || value === undefined) continue;
    versus(`${name} vs ideal`, value, ideal, 0.9);
    versus(`${name} vs per-key`, value, perKey, 10);
  }
  const ceiling = S3_COSTS.keysPerSecond * prefixes;
  for (const [name, m] of [
    ['engine', engine],
    ['cli', cli],
  ] as const) {
    if (!m) continue;
    if (rateLimited) {
      const share = phase(m) / ceiling;
      targets.push({
        name: `${name} delete phase of ${ceiling}/s`,
        value: share * 100,
        goal: '≥ 90 %',
        met: share >= 0.9,
      });
    } else {
      const pages = (m.proxy.requests.list / m.deleted) * 1000;
      targets.push({ name: `${name} list pages per 1000 deleted`, value: pages, goal: '≤ 2', met: pages <= 2 });
    }
  }
  return targets;
}

/** After `--runs N` (N ≥ 2) of one backend: the median and range of each rate and target. */
export function printSpread(runs: BackendFigures[], prefixes: number): void {
  if (runs.length < 2) return;
  const spread = (values: number[], digits: number) => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = sorted.length / 2;
    const median = sorted.length % 2 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
    const range = `${sorted[0]!.toFixed(digits)}–${sorted.at(-1)!.toFixed(digits)}`;
    return `${median.toFixed(digits).padStart(8)} (${range})`.padEnd(28);
  };
  console.log(`\n${runs[0]!.backend}, ${runs.length} runs: median (min–max)`);
  for (const scenario of Object.keys(runs[0]!.figures) as Array<keyof typeof LABELS>)
    console.log(
      `  ${LABELS[scenario].padEnd(46)} ${spread(
        runs.map((run) => rate(run.figures[scenario]!)),
        0,
      )} obj/s`,
    );
  const targets = runs.map((run) => targetsOf(run, prefixes));
  // By name: a run may lack one (the CLI's net figures when its start-up swallowed the run).
  for (const [name, goal] of new Map(targets.flat().map((target) => [target.name, target.goal]))) {
    const found = targets.flatMap((run) => run.filter((target) => target.name === name));
    const met = found.filter((target) => target.met).length;
    const values = found.map((target) => target.value);
    console.log(`  ${name.padEnd(46)} ${spread(values, 2)} target ${goal.padEnd(6)} met in ${met} of ${found.length}`);
  }
}
