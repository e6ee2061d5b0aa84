import { type ChainHead, type ChainLink, GENESIS, type StoreAuditChain } from '../core/chain.ts';
import type { ControlStore } from '../core/control.ts';
import { type Anchor, type ChainProblem, entryLink, LinkCheck, orderProblems, RecordCheck } from './chainCheck.ts';

/**
 * `retention audit verify`: recomputes every chain of the audit trail (invariant 13) and says
 * whether anything was changed, removed or reordered since it was written, naming the first.
 *
 * Per control store chain (one per policy): its entries in seq order (each links to the one
 * before, and hashes to its hash), the head as the store keeps it, the heads runs recorded in
 * their history at their finish, then every record of the chain against the digest of its
 * latest entry. Per store trail (rows: `retention.row_audit` of the policy): its batches the same
 * way, and the heads runs recorded for it. With `since`, a chain is verified from its first link
 * written at or after that instant, the link before it taken as stored.
 */
export interface VerifyOptions {
  /** Chains (policies) to verify; absent: every chain the control store knows and every trail given. */
  policies?: string[];
  since?: Date;
}

export interface TrailSummary {
  trail: string;
  chain: string;
  /** Links verified: control store entries, or store batches. */
  links: number;
  /** Control store records verified against the chain. */
  records?: number;
  head: ChainHead;
  /** Written before the trail had chains: not verifiable. */
  unchained: number;
  /** Records re-chained after an interrupted write (DynamoDB), by run. */
  repaired?: Record<string, number>;
  /** Interrupted writes not repaired yet (the policy's next live run repairs them): their runs. */
  awaitingRepair?: string[];
}

export interface VerifyReport {
  intact: boolean;
  since: string | null;
  verified: { records: number; entries: number; batches: number };
  /** Written before the trails had chains (an upgrade): not verifiable. */
  unchained: { records: number; batches: number };
  trails: TrailSummary[];
  /** In order, the first first; at most MAX_PROBLEMS (`problemCount` has them all). */
  problems: ChainProblem[];
  problemCount: number;
}

export const CONTROL_TRAIL = 'control store';
export const storeTrail = (policy: string) => `retention.row_audit of ${policy}`;

/** Links and records read per request. */
const PAGE = 500;
/** Runs read per policy for the heads they recorded. */
const RUNS_READ = 100_000;
const MAX_PROBLEMS = 100;

export async function verifyAuditTrails(
  control: ControlStore,
  storeChains: Array<{ policy: string; chain: StoreAuditChain }>,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const wanted = (policy: string) => options.policies === undefined || options.policies.includes(policy);
  const known = await control.chains.list();
  const chains = [...new Set([...known.map((head) => head.chain), ...(options.policies ?? [])])].filter(wanted).sort();
  const firstChainedId = await control.chains.firstChainedId();
  const trails: TrailSummary[] = [];
  const problems: ChainProblem[] = [];
  for (const chain of chains) {
    const anchors = await runAnchors(control, chain);
    const result = await verifyControlChain(control, chain, options.since, anchors.control, firstChainedId);
    trails.push(result.summary);
    problems.push(...result.problems);
  }
  for (const { policy, chain } of storeChains.filter((trail) => wanted(trail.policy))) {
    const anchors = await runAnchors(control, policy);
    const result = await verifyStoreChain(policy, chain, options.since, anchors.store);
    trails.push(result.summary);
    problems.push(...result.problems);
  }
  const ordered = orderProblems(problems, [CONTROL_TRAIL, ...storeChains.map((trail) => storeTrail(trail.policy))]);
  const sum = (pick: (trail: TrailSummary) => number, of: (trail: TrailSummary) => boolean) =>
    trails.filter(of).reduce((total, trail) => total + pick(trail), 0);
  const isControl = (trail: TrailSummary) => trail.trail === CONTROL_TRAIL;
  return {
    intact: ordered.length === 0,
    since: options.since?.toISOString() ?? null,
    verified: {
      records: sum((trail) => trail.records ?? 0, isControl),
      entries: sum((trail) => trail.links, isControl),
      batches: sum(
        (trail) => trail.links,
        (trail) => !isControl(trail),
      ),
    },
    unchained: {
      records: sum((trail) => trail.unchained, isControl),
      batches: sum(
        (trail) => trail.unchained,
        (trail) => !isControl(trail),
      ),
    },
    trails,
    problems: ordered.slice(0, MAX_PROBLEMS),
    problemCount: ordered.length,
  };
}

/** The heads the policy's runs recorded at their finish, per trail. */
async function runAnchors(control: ControlStore, policy: string): Promise<{ control: Anchor[]; store: Anchor[] }> {
  const runs = await control.listRuns({ policy, limit: RUNS_READ });
  const anchors = { control: [] as Anchor[], store: [] as Anchor[] };
  for (const run of runs) {
    const heads = run.report?.auditChain;
    const by = `run ${run.runId}`;
    if (heads?.control && heads.control.seq > 0) anchors.control.push({ ...heads.control, by });
    if (heads?.store && heads.store.seq > 0) anchors.store.push({ ...heads.store, by });
  }
  return anchors;
}

async function verifyControlChain(
  control: ControlStore,
  chain: string,
  since: Date | undefined,
  anchors: Anchor[],
  firstChainedId: number,
): Promise<{ summary: TrailSummary; problems: ChainProblem[] }> {
  const head = await control.chains.head(chain);
  const entryAt = async (seq: number) => {
    const [entry] = await control.chains.entries(chain, seq, 1);
    return entry?.seq === seq ? entryLink(entry) : undefined;
  };
  const start = since ? await startBefore(head, since, entryAt) : { seq: 0, hash: GENESIS };
  const links = new LinkCheck(CONTROL_TRAIL, chain, start, anchors);
  const records = new RecordCheck(CONTROL_TRAIL, chain);
  let lowestId = Number.MAX_SAFE_INTEGER;
  for (let from = start.seq + 1; ; ) {
    const page = await control.chains.entries(chain, from, PAGE);
    if (page.length === 0) break;
    for (const entry of page) {
      links.next(entryLink(entry));
      records.entry(entry);
      for (const record of entry.records) lowestId = Math.min(lowestId, record.id);
    }
    from = page.at(-1)!.seq + 1;
  }
  links.end({ head, by: 'the head the store keeps' });

  const debts = await control.chains.unrepaired(chain);
  const awaitingRepair = new Set(debts.flatMap((debt) => debt.runIds));
  let unchained = 0;
  // With `since`, records before the first one a verified entry names are out of scope.
  for (let after = since ? Math.min(lowestId, Number.MAX_SAFE_INTEGER - 1) - 1 : 0; ; ) {
    const page = await control.chains.records(chain, after, PAGE);
    if (page.length === 0) break;
    for (const record of page) {
      const beforeChains = record.id < firstChainedId;
      if (beforeChains) unchained += 1;
      records.record(record, {
        unchainedOk: beforeChains || (since !== undefined && record.createdAt < since),
        awaitingRepair: awaitingRepair.has(record.runId),
      });
    }
    after = page.at(-1)!.id;
  }
  records.end();
  return {
    summary: {
      trail: CONTROL_TRAIL,
      chain,
      links: links.links,
      records: records.records,
      head,
      unchained,
      ...(records.repaired.size > 0 ? { repaired: Object.fromEntries(records.repaired) } : {}),
      ...(awaitingRepair.size > 0 ? { awaitingRepair: [...awaitingRepair] } : {}),
    },
    problems: [...links.problems, ...records.problems],
  };
}

async function verifyStoreChain(
  policy: string,
  chain: StoreAuditChain,
  since: Date | undefined,
  anchors: Anchor[],
): Promise<{ summary: TrailSummary; problems: ChainProblem[] }> {
  const trail = storeTrail(policy);
  const head = await chain.head();
  const linkAt = async (seq: number) => {
    const [link] = await chain.links(seq - 1, 1);
    return link?.seq === seq ? link : undefined;
  };
  const start = since ? await startBefore(head, since, linkAt) : { seq: 0, hash: GENESIS };
  const links = new LinkCheck(trail, policy, start, anchors);
  for (let after = start.seq; ; ) {
    const page = await chain.links(after, PAGE);
    if (page.length === 0) break;
    for (const link of page) links.next(link);
    after = page.at(-1)!.seq;
  }
  links.end({ head, by: 'the head row (retention.row_audit_heads)' });
  return {
    summary: { trail, chain: policy, links: links.links, head, unchained: await chain.unchainedBatches() },
    problems: links.problems,
  };
}

/**
 * The link before the first one written at or after `since` (found by bisection over seq: links
 * are written in time order), as stored. The chain's own head when nothing is that recent.
 */
async function startBefore(
  head: ChainHead,
  since: Date,
  linkAt: (seq: number) => Promise<ChainLink | undefined>,
): Promise<{ seq: number; hash: string }> {
  let low = 1;
  let high = head.seq + 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    const link = await linkAt(middle);
    // A missing link: search after it (the walk reports the gap if it is in range).
    if (link === undefined || link.at < since) low = middle + 1;
    else high = middle;
  }
  if (low === 1) return { seq: 0, hash: GENESIS };
  const before = await linkAt(low - 1);
  return { seq: low - 1, hash: before?.hash ?? GENESIS };
}
