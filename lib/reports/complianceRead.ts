import type { PolicyConfig } from '../config/schema.ts';
import type { StoreAuditChain } from '../core/chain.ts';
import type { AuditCount, AuditCountQuery, ControlStore, GovernanceAction, RunRecord } from '../core/control.ts';
import type { Store } from '../core/store.ts';
import { describeCause } from '../errors.ts';
import { type VerifyReport, verifyAuditTrails } from './auditVerify.ts';
import { assessPeriod, governanceCounts, type PolicyPeriodReport } from './compliance.ts';
import type { Period } from './period.ts';
import { mergeSources } from './reconcile.ts';

/**
 * Reads what the compliance report needs, for each policy: its run history over the period
 * (read back until it is whole: no cap), the audit counts of the period from the control store
 * and the store's own trail, and each run's own records whole where the run crosses the
 * period's edge; then the audit chains from the period's start. Read-only.
 */
export interface ChainVerification {
  intact: boolean;
  /** Verified from the first link written at or after this instant (the period's start). */
  since: string;
  verified_records: number;
  verified_batches: number;
  problem_count: number;
  /** The first problem, as `retention audit verify` names it. */
  first_problem: string | null;
}

export interface ComplianceReport {
  period: { from: string; to: string; label: string };
  generated_at: string;
  policies: PolicyPeriodReport[];
  /** Governance actions over every policy (`pause --all`, global holds), in the period. */
  global_governance: Partial<Record<GovernanceAction, number>>;
  chains: ChainVerification;
  summary: { compliant: number; attention: number; disabled: number; findings: number };
}

export interface PolicySource {
  policy: PolicyConfig;
  store: Store;
}

const FIRST_RUNS_READ = 1000;
/** Records are stamped by the control store's clock, runs by the runner's: a run this close to an edge is read whole. */
const EDGE_MARGIN_MS = 5 * 60_000;
/** How far around a run its own records are looked for (the control store counts by period). */
const RUN_MARGIN_MS = 3_600_000;

export async function buildComplianceReport(
  control: ControlStore,
  sources: PolicySource[],
  period: Period,
  now: Date,
): Promise<ComplianceReport> {
  const policies: PolicyPeriodReport[] = [];
  for (const source of sources) policies.push(await policyReport(control, source, period, now));
  const chains = await verifyChains(control, sources, period);
  const global = await control.auditCounts({ policy: '*', from: period.from, to: period.to });
  const count = (verdict: string) => policies.filter((policy) => policy.verdict === verdict).length;
  return {
    period: { from: period.from.toISOString(), to: period.to.toISOString(), label: period.label },
    generated_at: now.toISOString(),
    policies,
    global_governance: governanceCounts(global),
    chains,
    summary: {
      compliant: count('compliant'),
      attention: count('attention'),
      disabled: count('disabled'),
      findings: policies.reduce((sum, policy) => sum + policy.reconciliation.findings.length, 0),
    },
  };
}

async function policyReport(
  control: ControlStore,
  { policy, store }: PolicySource,
  period: Period,
  now: Date,
): Promise<PolicyPeriodReport> {
  let storeError: string | null = null;
  // A store trail that cannot be read is a finding of its own; the control store must answer.
  const ownCounts = async (query: AuditCountQuery): Promise<AuditCount[] | null> => {
    if (!store.audit) return null;
    try {
      return await store.audit.counts(query);
    } catch (error) {
      storeError = describeCause(error);
      return null;
    }
  };
  const counts = async (query: AuditCountQuery) => {
    const [recorded, own] = await Promise.all([control.auditCounts(query), ownCounts(query)]);
    return mergeSources({ control: recorded, store: own });
  };
  const runs = await readRuns(control, policy.name, period);
  const inPeriod = await counts({ policy: policy.name, from: period.from, to: period.to });
  const known = new Map(runs.map((run) => [run.runId, run]));
  const wanted = new Set([
    ...runs.filter((run) => !run.dryRun && run.startedAt >= period.from).map((run) => run.runId),
    ...inPeriod.counts.map((count) => count.runId).filter((runId) => runId !== ''),
  ]);
  const runCounts = new Map<string, AuditCount[]>();
  for (const runId of wanted) {
    const run = known.get(runId) ?? null;
    const own = (list: AuditCount[]) => list.filter((count) => count.runId === runId);
    if (run === null || within(run, period)) runCounts.set(runId, own(inPeriod.counts));
    else {
      const from = new Date(run.startedAt.getTime() - RUN_MARGIN_MS);
      const to = new Date((run.finishedAt ?? now).getTime() + RUN_MARGIN_MS);
      runCounts.set(runId, own((await counts({ policy: policy.name, from, to })).counts));
    }
  }
  return assessPeriod(
    policy,
    { runs, periodCounts: inPeriod.counts, runCounts, disagreements: inPeriod.disagreements, storeError, now },
    period,
  );
}

/** Whether all of a run's records were written inside the period (a finished run well inside it). */
function within(run: RunRecord, period: Period): boolean {
  return (
    run.finishedAt !== null &&
    run.status !== 'crashed' &&
    run.startedAt.getTime() - EDGE_MARGIN_MS >= period.from.getTime() &&
    run.finishedAt.getTime() + EDGE_MARGIN_MS < period.to.getTime()
  );
}

/** Newest first, every run started before the period's end, back past its start: read again, wider, until whole. */
async function readRuns(control: ControlStore, policy: string, period: Period): Promise<RunRecord[]> {
  for (let limit = FIRST_RUNS_READ; ; limit *= 10) {
    const runs = await control.listRuns({ policy, limit });
    if (runs.length < limit || runs.at(-1)!.startedAt < period.from) {
      return runs.filter((run) => run.startedAt < period.to);
    }
  }
}

async function verifyChains(
  control: ControlStore,
  sources: PolicySource[],
  period: Period,
): Promise<ChainVerification> {
  const storeChains: Array<{ policy: string; chain: StoreAuditChain }> = sources.flatMap(({ policy, store }) =>
    store.audit?.chain ? [{ policy: policy.name, chain: store.audit.chain }] : [],
  );
  const since = period.from.toISOString();
  let verified: VerifyReport;
  try {
    verified = await verifyAuditTrails(control, storeChains, {
      policies: sources.map(({ policy }) => policy.name),
      since: period.from,
    });
  } catch (error) {
    // The rest of the report stands; evidence that could not be checked is said so, not left out.
    const first_problem = `could not be verified: ${describeCause(error)} (run \`retention audit verify\` once it is reachable)`;
    return { intact: false, since, verified_records: 0, verified_batches: 0, problem_count: 1, first_problem };
  }
  const first = verified.problems[0];
  return {
    intact: verified.intact,
    since,
    verified_records: verified.verified.records,
    verified_batches: verified.verified.batches,
    problem_count: verified.problemCount,
    first_problem: first ? `${first.trail}, policy ${first.chain}: ${first.message}` : null,
  };
}
