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
const netRate = (m: Measured) => m.deleted / (m.seconds - (m.fixedSeconds ?? 0));
const per1000 = (count: number, m: Measured) => ((count / m.deleted) * 1000).toFixed(2);

export function printFigures({ backend, rateLimited, figures }: BackendFigures, prefixes: number): void {
  const ceiling = S3_COSTS.keysPerSecond * prefixes;
  const phase = (m: Measured) => m.proxy.keysDeleted / m.proxy.deletePhaseSeconds;
  const { ideal, 'per-key': perKey, engine, cli } = figures;
  console.log(
    `\n${backend}, through the proxy (${S3_COSTS.roundTripMs} ms a request` +
      (rateLimited
        ? `, ${S3_COSTS.perKeyMs} ms a batch-deleted key, ${S3_COSTS.keysPerSecond} keys/s per prefix)`
        : ')'),
  );
  console.log(
    `${'scenario'.padEnd(46)} deleted  seconds    obj/s  ×ideal  ×per-key  list/1000` +
      (rateLimited ? '  DeleteObjects/1000  DeleteObject/1000' : '      del calls/1000                   ') +
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
      ...(rateLimited
        ? [`${phase(m).toFixed(0)}/s`.padStart(13), `${((phase(m) / ceiling) * 100).toFixed(0)} %`.padStart(9)]
        : []),
      m.peakRssMb ? `${m.peakRssMb} MB`.padStart(10) : '-'.padStart(10),
    ];
    console.log(cells.join(' '));
  };
  for (const [scenario, m] of Object.entries(figures) as Array<[keyof typeof LABELS, Measured]>)
    row(LABELS[scenario], m, rate(m), m.seconds);
  if (cli?.fixedSeconds !== undefined)
    row(`(cli) net of ${cli.fixedSeconds.toFixed(2)} s start-up`, cli, netRate(cli), cli.seconds - cli.fixedSeconds);

  const targets: Array<[string, number, string, boolean]> = [];
  const versus = (name: string, value: number, baseline: Measured | undefined, goal: number) => {
    if (baseline) targets.push([name, value / rate(baseline), `≥ ${goal}×`, value / rate(baseline) >= goal]);
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
  for (const [name, m] of [
    ['engine', engine],
    ['cli', cli],
  ] as const) {
    if (!m) continue;
    if (rateLimited) {
      const share = phase(m) / ceiling;
      targets.push([`${name} delete phase of ${ceiling}/s`, share * 100, '≥ 90 %', share >= 0.9]);
    } else {
      const pages = (m.proxy.requests.list / m.deleted) * 1000;
      targets.push([`${name} list pages per 1000 deleted`, pages, '≤ 2', pages <= 2]);
    }
  }
  console.log('targets:');
  for (const [name, value, goal, met] of targets)
    console.log(
      `  ${name.padEnd(36)} ${value.toFixed(2).padStart(8)}  target ${goal.padEnd(6)} ${met ? 'met' : 'MISSED'}`,
    );
}
