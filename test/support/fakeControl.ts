import { leaseLost } from '../../lib/control/errorContext.ts';
import { byFailures, nextStreaks } from '../../lib/core/attention.ts';
import { countRecords } from '../../lib/core/auditCounts.ts';
import { type AuditChains, emptyHead } from '../../lib/core/chain.ts';
import type {
  AttentionItem,
  AuditCount,
  AuditCountQuery,
  AuditIntent,
  AuditQuery,
  AuditRecord,
  AuditResolution,
  AuditStatus,
  Checkpoint,
  ControlStore,
  FailureStreakUpdate,
  Lease,
  NewHold,
  PauseState,
  RunRecord,
} from '../../lib/core/control.ts';

import type { Clock, Hold, RunReport } from '../../lib/core/types.ts';

type Resolved = Exclude<AuditStatus, 'pending'>;

/**
 * An in-memory ControlStore (our interface) with the semantics the engine relies on and the
 * contract suite proves for the real ones: leases expire by the store's clock (here the test's),
 * a renewal or a fenced write needs the current token and no pause, a run's own resolution
 * overwrites a recovery's `abandoned` but never another resolution.
 */
export class FakeControl implements ControlStore {
  readonly leases = new Map<string, Lease>();
  readonly checkpoints = new Map<string, Checkpoint>();
  readonly pauses = new Map<string, PauseState>();
  readonly holds: Hold[] = [];
  readonly runs = new Map<string, RunRecord>();
  readonly records: AuditRecord[] = [];
  /** Failure streaks by policy, then key. */
  readonly streaks = new Map<string, Map<string, AttentionItem>>();
  /** Every lease renewal asked for (the engine's fenced round trips). */
  renewals = 0;
  /** No chains: the engine only reads heads (at finish); the real stores' chains are proven by the contract suite. */
  readonly chains: AuditChains = {
    head: async (chain) => emptyHead(chain),
    list: async () => [],
    entries: async () => [],
    records: async () => [],
    firstChainedId: async () => 1,
    unrepaired: async () => [],
  };

  constructor(private readonly clock: Clock) {}

  async migrate(): Promise<void> {}
  async close(): Promise<void> {}

  async acquireLease(policy: string, owner: string, ttlMs: number): Promise<Lease | null> {
    const held = this.leases.get(policy);
    if (held && held.expiresAt > this.clock.now()) return null;
    return this.setLease({ policy, owner, token: (held?.token ?? 0) + 1, expiresAt: this.after(ttlMs) });
  }

  async renewLease(lease: Lease, ttlMs: number): Promise<Lease | null> {
    this.renewals += 1;
    // The token alone decides (an expired lease nobody took since is still ours), and no pause applies.
    if (!this.fenced(lease)) return null;
    return this.setLease({ ...lease, expiresAt: this.after(ttlMs) });
  }

  async releaseLease(lease: Lease): Promise<void> {
    const held = this.leases.get(lease.policy);
    if (held?.owner === lease.owner && held.token === lease.token) this.expire(held);
  }

  async getLease(policy: string): Promise<Lease | null> {
    return this.leases.get(policy) ?? null;
  }

  async breakLease(policy: string): Promise<boolean> {
    const held = this.leases.get(policy);
    if (!held) return false;
    this.expire(this.setLease({ ...held, token: held.token + 1 }));
    return true;
  }

  async getCheckpoint(policy: string): Promise<Checkpoint | null> {
    return this.checkpoints.get(policy) ?? null;
  }

  async saveCheckpoint(lease: Lease, runId: string, cursor: string): Promise<void> {
    if (!this.fenced(lease)) throw leaseLost(lease, 'saveCheckpoint');
    this.checkpoints.set(lease.policy, { policy: lease.policy, cursor, runId, updatedAt: this.clock.now() });
  }

  async clearCheckpoint(lease: Lease): Promise<void> {
    if (!this.fenced(lease)) throw leaseLost(lease, 'clearCheckpoint');
    this.checkpoints.delete(lease.policy);
  }

  async pause(scope: string, by: string, reason: string): Promise<void> {
    this.pauses.set(scope, { scope, by, reason, at: this.clock.now() });
  }

  async resume(scope: string): Promise<boolean> {
    return this.pauses.delete(scope);
  }

  async pausedBy(policy: string): Promise<PauseState | null> {
    return this.pauses.get('*') ?? this.pauses.get(policy) ?? null;
  }

  async listPauses(): Promise<PauseState[]> {
    return [...this.pauses.values()];
  }

  async addHold(hold: NewHold): Promise<Hold> {
    return (await this.addHolds([hold]))[0]!;
  }

  async addHolds(holds: NewHold[]): Promise<Hold[]> {
    const added = holds.map((hold) => ({ ...hold, id: this.holds.length + 1, createdAt: this.clock.now() }));
    for (const hold of added) this.holds.push(hold);
    return added;
  }

  async listHolds(policy?: string): Promise<Hold[]> {
    return this.holds.filter((hold) => policy === undefined || hold.policy === null || hold.policy === policy);
  }

  async removeHold(id: number): Promise<boolean> {
    const index = this.holds.findIndex((hold) => hold.id === id);
    if (index >= 0) this.holds.splice(index, 1);
    return index >= 0;
  }

  async startRun(run: { runId: string; policy: string; dryRun: boolean; startedAt: Date }): Promise<void> {
    if (this.runs.has(run.runId)) throw new Error(`duplicate run id ${run.runId}`);
    this.runs.set(run.runId, { ...run, status: 'running', finishedAt: null, report: null });
  }

  async finishRun(report: RunReport): Promise<void> {
    const started = this.runs.get(report.runId);
    this.runs.set(report.runId, {
      runId: report.runId,
      policy: report.policy,
      dryRun: report.dryRun,
      startedAt: started?.startedAt ?? new Date(report.startedAt),
      status: report.status,
      finishedAt: new Date(report.finishedAt),
      report,
    });
  }

  async closeCrashedRuns(policy: string, exceptRunId: string): Promise<string[]> {
    const crashed = [...this.runs.values()].filter(
      (run) => run.policy === policy && run.status === 'running' && !run.dryRun && run.runId !== exceptRunId,
    );
    for (const run of crashed) this.runs.set(run.runId, { ...run, status: 'crashed', finishedAt: this.clock.now() });
    return crashed.map((run) => run.runId);
  }

  async listRuns(query: { policy?: string; limit: number }): Promise<RunRecord[]> {
    const runs = [...this.runs.values()].filter((run) => query.policy === undefined || run.policy === query.policy);
    return runs.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime()).slice(0, query.limit);
  }

  async getRun(runId: string): Promise<RunRecord | null> {
    return this.runs.get(runId) ?? null;
  }

  async recordIntents(intents: AuditIntent[]): Promise<void> {
    for (const intent of intents) this.append({ ...intent, status: 'pending' });
  }

  async resolveIntents(runId: string, resolutions: AuditResolution[]): Promise<void> {
    for (const resolution of resolutions) {
      const open = this.records.filter(
        (record) =>
          record.runId === runId &&
          record.key === resolution.key &&
          (record.status === 'pending' || record.status === 'abandoned'),
      );
      for (const record of open) this.resolve(record, resolution.status, resolution.error);
    }
  }

  async pendingIntents(policy: string, exceptRunId?: string): Promise<AuditRecord[]> {
    return this.records.filter(
      (record) => record.policy === policy && record.status === 'pending' && record.runId !== exceptRunId,
    );
  }

  async resolveStaleIntents(resolutions: Array<{ id: number; status: Resolved }>): Promise<void> {
    for (const { id, status } of resolutions) {
      const record = this.records.find((candidate) => candidate.id === id);
      if (record?.status === 'pending') this.resolve(record, status);
    }
  }

  async recordEvents(events: Array<AuditIntent & { status: Resolved; error?: string }>): Promise<void> {
    for (const event of events) this.append(event);
  }

  async auditCounts(query: AuditCountQuery): Promise<AuditCount[]> {
    return countRecords(this.records, query);
  }

  async audit(query: AuditQuery): Promise<AuditRecord[]> {
    const matches = (wanted: string | undefined, value: string) => wanted === undefined || wanted === value;
    const at = (record: AuditRecord) => (record.resolvedAt ?? record.createdAt).getTime();
    const matching = this.records.filter(
      (record) =>
        matches(query.runId, record.runId) &&
        matches(query.policy, record.policy) &&
        matches(query.key, record.key) &&
        matches(query.action, record.action) &&
        matches(query.status, record.status) &&
        (query.since === undefined || at(record) >= query.since.getTime()) &&
        (query.until === undefined || at(record) < query.until.getTime()),
    );
    return matching.reverse().slice(0, query.limit);
  }

  async noteFailureStreaks(update: FailureStreakUpdate): Promise<void> {
    const streaks = this.streaks.get(update.policy) ?? new Map<string, AttentionItem>();
    const { write, end } = nextStreaks([...streaks.values()], update, this.clock.now());
    for (const key of end) streaks.delete(key);
    for (const item of write) streaks.set(item.key, item);
    this.streaks.set(update.policy, streaks);
  }

  async attentionItems(policy: string, minFailures: number): Promise<AttentionItem[]> {
    const items = [...(this.streaks.get(policy)?.values() ?? [])];
    return items.filter((item) => item.failures >= minFailures).sort(byFailures);
  }

  async dismissAttention(policy: string, key: string, by: string, reason: string): Promise<AttentionItem | null> {
    const item = this.streaks.get(policy)?.get(key);
    if (!item) return null;
    item.dismissed = { by, reason, at: this.clock.now() };
    return { ...item };
  }

  /** Records of `runId` with `action`, as key → status. */
  statuses(runId: string, action: AuditRecord['action'] = 'delete'): Record<string, AuditStatus> {
    const ofRun = this.records.filter((record) => record.runId === runId && record.action === action);
    return Object.fromEntries(ofRun.map((record) => [record.key, record.status]));
  }

  private fenced(lease: Lease): boolean {
    const held = this.leases.get(lease.policy);
    const paused = this.pauses.has('*') || this.pauses.has(lease.policy);
    return held?.owner === lease.owner && held.token === lease.token && !paused;
  }

  private setLease(lease: Lease): Lease {
    this.leases.set(lease.policy, lease);
    return { ...lease };
  }

  private expire(lease: Lease): void {
    const now = this.clock.now();
    if (lease.expiresAt > now) this.leases.set(lease.policy, { ...lease, expiresAt: now });
  }

  private after(ms: number): Date {
    return new Date(this.clock.now().getTime() + ms);
  }

  private append(entry: AuditIntent & { status: AuditStatus; error?: string }): void {
    const now = this.clock.now();
    const { error, ...intent } = entry;
    const resolvedAt = entry.status === 'pending' ? null : now;
    this.records.push({ ...intent, id: this.records.length + 1, createdAt: now, resolvedAt, error: error ?? null });
  }

  private resolve(record: AuditRecord, status: Resolved, error?: string): void {
    Object.assign(record, { status, resolvedAt: this.clock.now(), error: error ?? null });
  }
}
