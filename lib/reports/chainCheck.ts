import {
  auditRecordDigest,
  type ChainEntry,
  type ChainedAuditRecord,
  type ChainHead,
  type ChainLink,
  chainLink,
  entryCanonical,
} from '../core/chain.ts';

/**
 * The checks of `retention audit verify`, on values (no I/O): links in seq order (LinkCheck),
 * then a control store's records against the digests the chain holds for them (RecordCheck).
 *
 * - `removed`: a link (seq gap, or missing before a head or a run's recorded head) or a record
 *   the chain lists is gone;
 * - `reordered`: a link does not name the previous one as its predecessor (`prev`);
 * - `changed`: a link's content does not hash to its hash, a record's state is not the state its
 *   latest entry holds, or a head recorded by a run (or the head row) is not what the chain has;
 * - `added`: a record no entry covers (written around the tool, or before a crash, see unrepaired).
 */
export type ProblemKind = 'changed' | 'removed' | 'reordered' | 'added';

export interface ChainProblem {
  /** `control` or the store's trail (`retention.row_audit of <policy>`). */
  trail: string;
  chain: string;
  kind: ProblemKind;
  /** The link the problem is at (for a record: its latest entry's). */
  seq?: number;
  recordId?: number;
  message: string;
}

/** A head recorded elsewhere (a run's history at its finish): the link at `seq` must still have `hash`. */
export interface Anchor {
  seq: number;
  hash: string;
  /** Who recorded it, for the message: `run <id>`. */
  by: string;
}

/** Walks one chain's links in seq order, from `start` (the link before the first one given). */
export class LinkCheck {
  readonly problems: ChainProblem[] = [];
  links = 0;
  private last: { seq: number; hash: string };
  private readonly anchors: Map<number, Anchor[]>;

  constructor(
    readonly trail: string,
    readonly chain: string,
    start: { seq: number; hash: string },
    anchors: Anchor[] = [],
  ) {
    this.last = start;
    this.anchors = new Map();
    for (const anchor of anchors) this.anchors.set(anchor.seq, [...(this.anchors.get(anchor.seq) ?? []), anchor]);
  }

  /** The next link. Its stored hash is what the walk goes on from, so one change is reported once. */
  next(link: ChainLink): void {
    const expected = this.last.seq + 1;
    if (link.seq > expected) {
      this.problem('removed', link.seq, `${range(expected, link.seq - 1)} missing before ${link.label}`);
    } else if (link.prev !== this.last.hash) {
      this.problem(
        'reordered',
        link.seq,
        `${link.label} at seq ${link.seq} does not follow seq ${this.last.seq}: links were reordered or replaced`,
      );
    }
    if (chainLink(link.prev, link.canonical) !== link.hash) {
      this.problem(
        'changed',
        link.seq,
        `${link.label} at seq ${link.seq} was changed: its content no longer hashes to its hash`,
      );
    }
    for (const anchor of this.anchors.get(link.seq) ?? []) {
      if (anchor.hash !== link.hash) {
        this.problem(
          'changed',
          link.seq,
          `${link.label} at seq ${link.seq} is not the link ${anchor.by} recorded at its finish ` +
            `(hash ${short(anchor.hash)}, now ${short(link.hash)})`,
        );
      }
    }
    this.anchors.delete(link.seq);
    this.last = { seq: link.seq, hash: link.hash };
    this.links += 1;
  }

  /** After the last link: heads recorded past it (the head row, runs' heads) mean links were removed. */
  end(head?: { head: ChainHead; by: string }): void {
    for (const anchors of this.anchors.values()) {
      for (const anchor of anchors) {
        if (anchor.seq > this.last.seq)
          this.problem(
            'removed',
            anchor.seq,
            `${anchor.by} recorded seq ${anchor.seq}; the chain ends at ${this.last.seq}`,
          );
      }
    }
    if (!head) return;
    if (head.head.seq > this.last.seq) {
      this.problem(
        'removed',
        head.head.seq,
        `${head.by} is at seq ${head.head.seq}; the chain ends at ${this.last.seq}`,
      );
    } else if (head.head.seq === this.last.seq && head.head.hash !== this.last.hash) {
      this.problem('changed', head.head.seq, `${head.by} does not match the last link (seq ${this.last.seq})`);
    }
  }

  private problem(kind: ProblemKind, seq: number, message: string): void {
    this.problems.push({ trail: this.trail, chain: this.chain, kind, seq, message });
  }
}

/** A control store's entries as links (their canonical text rendered from the stored fields). */
export function entryLink(entry: ChainEntry): ChainLink {
  return {
    seq: entry.seq,
    prev: entry.prev,
    hash: entry.hash,
    canonical: entryCanonical(entry),
    at: entry.at,
    label: `entry ${entry.seq} (${entry.kind}, ${entry.records.length} record${entry.records.length === 1 ? '' : 's'})`,
  };
}

/**
 * A record's states only move forward: pending, then `abandoned` (a recovery found the item
 * still there), then an outcome (deleted, missing, kept, failed; events are written with one).
 * The state a record must be in is its most advanced chained state, the latest among equals.
 * Not simply its latest entry: on DynamoDB a recovery's `abandoned` and the stalled run's own
 * `deleted` over it are two writers without a common lock, so their entries can land in either
 * order; a record set back to an earlier state is still caught.
 */
const stateRank = (status: string): number => (status === 'pending' ? 0 : status === 'abandoned' ? 1 : 2);

/**
 * A control store's records against the digests the chain holds for them: feed every entry (in
 * seq order), then every record of the chain; what the chain lists and no record answered is `removed`.
 */
export class RecordCheck {
  readonly problems: ChainProblem[] = [];
  records = 0;
  /** Records re-chained by a `repair` entry, by run: listed for the operator. */
  readonly repaired = new Map<string, number>();
  /** Per record, the chained state it must be in (see stateRank). */
  private readonly latest = new Map<number, { digest: string; seq: number; kind: ChainEntry['kind']; rank: number }>();

  constructor(
    readonly trail: string,
    readonly chain: string,
  ) {}

  entry(entry: ChainEntry): void {
    for (const record of entry.records) {
      const rank = stateRank(record.status);
      if ((this.latest.get(record.id)?.rank ?? -1) > rank) continue;
      this.latest.set(record.id, { digest: record.digest, seq: entry.seq, kind: entry.kind, rank });
    }
  }

  /**
   * `unchainedOk`: a record no entry covers is not a problem (written before the chains, or
   * before `--since`). `awaitingRepair`: a write of its run was interrupted and not re-chained
   * yet (DynamoDB), so its state may be newer than its latest entry.
   */
  record(record: ChainedAuditRecord, options: { unchainedOk: boolean; awaitingRepair: boolean }): void {
    const latest = this.latest.get(record.id);
    this.latest.delete(record.id);
    if (!latest) {
      if (!options.unchainedOk && !options.awaitingRepair) {
        this.problem(
          'added',
          undefined,
          record,
          `${describe(record)} is in no chain entry: it was not written by a chained write`,
        );
      }
      return;
    }
    this.records += 1;
    if (latest.kind === 'repair') this.repaired.set(record.runId, (this.repaired.get(record.runId) ?? 0) + 1);
    if (auditRecordDigest(record) !== latest.digest && !options.awaitingRepair) {
      this.problem(
        'changed',
        latest.seq,
        record,
        `${describe(record)} was changed since entry ${latest.seq} chained it`,
      );
    }
  }

  /** Records the chain lists that were never seen. */
  end(): void {
    for (const [id, { seq }] of this.latest) {
      this.problems.push({
        trail: this.trail,
        chain: this.chain,
        kind: 'removed',
        seq,
        recordId: id,
        message: `record ${id}, chained by entry ${seq}, is gone`,
      });
    }
  }

  private problem(kind: ProblemKind, seq: number | undefined, record: ChainedAuditRecord, message: string): void {
    this.problems.push({
      trail: this.trail,
      chain: this.chain,
      kind,
      ...(seq === undefined ? {} : { seq }),
      recordId: record.id,
      message,
    });
  }
}

/** First by trail order as given, then by link, then by record. */
export function orderProblems(problems: ChainProblem[], trails: string[]): ChainProblem[] {
  const trailOrder = (problem: ChainProblem) => trails.indexOf(problem.trail);
  return [...problems].sort(
    (a, b) =>
      trailOrder(a) - trailOrder(b) ||
      (a.chain < b.chain ? -1 : a.chain > b.chain ? 1 : 0) ||
      (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER) ||
      (a.recordId ?? 0) - (b.recordId ?? 0),
  );
}

const describe = (record: ChainedAuditRecord) =>
  `record ${record.id} (${record.action} ${record.status}, key ${JSON.stringify(record.key)}, run ${record.runId})`;
const range = (from: number, to: number) => (from === to ? `seq ${from}` : `seq ${from}–${to}`);
const short = (hash: string) => hash.slice(0, 12);
