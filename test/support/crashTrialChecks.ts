import { isGovernanceAction } from '../../lib/core/governance.ts';
import type { ItemClass, Subject } from './crashTrialSubjects.ts';

/**
 * The checks of a crash trial, on what the trial saw: the items (and linked files) present right
 * after the kill and after recovery, and the audit trail as `retention audit --json` prints it.
 * Each broken promise is one line naming the key, so a failing trial says what went wrong where.
 */
export interface AuditEntry {
  runId: string;
  key: string;
  action: string;
  status: string;
  cutoff: string;
  itemTimestamp: string;
}

/** Cutoffs are fixed at run start, so wall-clock times around the runs bound them (ms). */
export interface CutoffBounds {
  /** Latest cutoff the killed run can have used: kill time − retention (or the exact `--before`). */
  killedRunMax: number;
  /** Latest cutoff any run of the trial can have used: anything newer is young throughout. */
  anyRunMax: number;
  /** Earliest cutoff of both runs: anything older must be gone at the end. */
  dueForBoth: number;
}

export interface PresentSets {
  items: Set<string>;
  files: Set<string>;
}

export interface Observed {
  subject: Subject;
  afterKill: PresentSets;
  final: PresentSets;
  records: AuditEntry[];
  linked: Awaited<ReturnType<Subject['linkedFileAudit']>>;
  killedRunId: string | undefined;
  bounds: CutoffBounds;
}

const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const floorMs = (timeNs: bigint): number => Number(timeNs / 1_000_000n);

export function findViolations(observed: Observed): string[] {
  const { subject, final, records, bounds } = observed;
  const problems: string[] = [];
  const deletedRecords = new Map<string, AuditEntry[]>();
  for (const record of records) {
    // What operators did (the `lease break` of every trial) is on record too, about no item.
    if (isGovernanceAction(record.action)) continue;
    if (record.status === 'pending')
      problems.push(`${record.key}: intent of run ${record.runId} still pending after recovery`);
    if (!subject.items.has(record.key))
      problems.push(`${record.key}: audit record (${record.status}, run ${record.runId}) for an item never seeded`);
    if (record.action === 'delete' && record.status === 'deleted')
      deletedRecords.set(record.key, [...(deletedRecords.get(record.key) ?? []), record]);
  }
  for (const [key, truth] of subject.items) {
    const audited = deletedRecords.get(key) ?? [];
    const at = `${key} (${truth.class}, ${new Date(floorMs(truth.timeNs)).toISOString()})`;
    if (final.items.has(key)) {
      if (audited.length > 0) problems.push(`${at}: still present but audited deleted by run ${audited[0]!.runId}`);
      if (truth.timeNs < ns(bounds.dueForBoth))
        problems.push(`${at}: expired and still present after the recovery run`);
    } else {
      if (truth.timeNs >= ns(bounds.anyRunMax))
        problems.push(`${at}: younger than every cutoff of the trial, yet deleted`);
      if (audited.length !== 1) {
        const runs = audited.map((record) => record.runId).join(', ') || 'none';
        problems.push(`${at}: gone with ${audited.length} deleted records (${runs})`);
      }
      for (const record of audited) problems.push(...recordProblems(at, truth.timeNs, record, observed));
    }
    if (truth.file) problems.push(...linkedFileProblems(at, key, truth.file, truth.timeNs, observed));
  }
  return problems;
}

/** A deleted record must state a cutoff the run can have had, that the item was strictly older than. */
function recordProblems(at: string, timeNs: bigint, record: AuditEntry, observed: Observed): string[] {
  const problems: string[] = [];
  const cutoff = new Date(record.cutoff).getTime();
  const killed = record.runId === observed.killedRunId;
  const latest = killed ? observed.bounds.killedRunMax : observed.bounds.anyRunMax;
  if (!(timeNs < ns(cutoff)))
    problems.push(`${at}: deleted by run ${record.runId} under cutoff ${record.cutoff}, which it was not older than`);
  if (cutoff > latest) {
    const bound = new Date(latest).toISOString();
    problems.push(
      `${at}: run ${record.runId} recorded cutoff ${record.cutoff}, later than it can have been (${bound})`,
    );
  }
  // Within the ms: the store may round the stored time (ns) either way; a cutoff is a whole ms.
  const recordedNs = ns(new Date(record.itemTimestamp).getTime());
  if (recordedNs - timeNs >= 1_000_000n || timeNs - recordedNs >= 1_000_000n)
    problems.push(`${at}: record gives its time as ${record.itemTimestamp}`);
  if (killed && observed.afterKill.items.has(record.key))
    problems.push(`${at}: the killed run's record says deleted, but it was there after the kill`);
  return problems;
}

/**
 * Rows with a linked file: the file goes first, then the row (never the row alone); after
 * recovery both are gone or both stay; and the row's one record in the store's trail names the
 * file, `deleted` if that run deleted it, `missing` if an earlier (killed) run had.
 */
function linkedFileProblems(at: string, key: string, file: string, timeNs: bigint, observed: Observed): string[] {
  const { afterKill, final, linked, killedRunId, bounds } = observed;
  const problems: string[] = [];
  if (!afterKill.items.has(key) && afterKill.files.has(file))
    problems.push(`${at}: row deleted by the killed run while its file ${file} stayed`);
  if (!afterKill.files.has(file) && afterKill.items.has(key) && timeNs >= ns(bounds.killedRunMax)) {
    problems.push(`${at}: linked file ${file} of a row younger than the killed run's cutoff was deleted`);
  }
  const state = (present: boolean): string => (present ? 'present' : 'gone');
  if (final.items.has(key) !== final.files.has(file)) {
    problems.push(
      `${at}: after recovery the row is ${state(final.items.has(key))}, its file ${file} ${state(final.files.has(file))}`,
    );
  }
  if (final.items.has(key)) return problems;
  const entries = linked.get(key) ?? [];
  if (entries.length !== 1) return [...problems, `${at}: ${entries.length} entries in the store's own trail`];
  const entry = entries[0]!;
  const expected = entry.runId !== killedRunId && !afterKill.files.has(file) ? 'missing' : 'deleted';
  if (entry.file !== file || entry.status !== expected) {
    problems.push(`${at}: trail says linked file ${entry.file} ${entry.status}, expected ${file} ${expected}`);
  }
  return problems;
}

/** What a trial did, for the figures. */
export interface TrialCounts {
  items: number;
  byClass: Record<ItemClass, number>;
  deletedByKilledRun: number;
  deletedInTotal: number;
  keptAtEnd: number;
  boundaryDeleted: number;
  boundaryKept: number;
  records: number;
  abandoned: number;
  /** Rows: files the killed run deleted whose row it did not (deleted by the recovery run). */
  filesAheadOfRows: number;
}

/** The counts of a trial that failed before it could count anything. */
export const NO_COUNTS: TrialCounts = {
  items: 0,
  byClass: { expired: 0, young: 0, boundary: 0 },
  deletedByKilledRun: 0,
  deletedInTotal: 0,
  keptAtEnd: 0,
  boundaryDeleted: 0,
  boundaryKept: 0,
  records: 0,
  abandoned: 0,
  filesAheadOfRows: 0,
};

export function countTrial(observed: Observed): TrialCounts {
  const { subject, afterKill, final, records } = observed;
  const byClass: Record<ItemClass, number> = { expired: 0, young: 0, boundary: 0 };
  let boundaryDeleted = 0;
  let filesAheadOfRows = 0;
  for (const [key, truth] of subject.items) {
    byClass[truth.class] += 1;
    if (truth.class === 'boundary' && !final.items.has(key)) boundaryDeleted += 1;
    if (truth.file && afterKill.items.has(key) && !afterKill.files.has(truth.file)) filesAheadOfRows += 1;
  }
  const keys = [...subject.items.keys()];
  return {
    items: subject.items.size,
    byClass,
    deletedByKilledRun: keys.filter((key) => !afterKill.items.has(key)).length,
    deletedInTotal: keys.filter((key) => !final.items.has(key)).length,
    keptAtEnd: final.items.size,
    boundaryDeleted,
    boundaryKept: byClass.boundary - boundaryDeleted,
    records: records.length,
    abandoned: records.filter((record) => record.status === 'abandoned').length,
    filesAheadOfRows,
  };
}
