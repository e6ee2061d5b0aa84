import type { AuditRecord, AuditStatus, Checkpoint, Lease, PauseState, RunRecord } from '../../core/control.ts';
import type { Hold, RunReport } from '../../core/types.ts';

/**
 * Row shapes of the `retention` schema and their mapping to the ControlStore types.
 * bigint columns (tokens, audit ids, sizes) arrive as strings from both drivers (they cannot
 * know the value fits a JS number); they are converted here, where we know it does.
 */
export const LEASE_COLUMNS = 'policy, owner, token, expires_at';
export interface LeaseRow {
  policy: string;
  owner: string;
  token: string;
  expires_at: Date;
}
export const toLease = (row: LeaseRow): Lease => ({
  policy: row.policy,
  owner: row.owner,
  token: Number(row.token),
  expiresAt: row.expires_at,
});

export const CHECKPOINT_COLUMNS = 'policy, cursor, run_id, updated_at';
export interface CheckpointRow {
  policy: string;
  cursor: string;
  run_id: string;
  updated_at: Date;
}
export const toCheckpoint = (row: CheckpointRow): Checkpoint => ({
  policy: row.policy,
  cursor: row.cursor,
  runId: row.run_id,
  updatedAt: row.updated_at,
});

export const PAUSE_COLUMNS = 'scope, paused_by, reason, paused_at';
export interface PauseRow {
  scope: string;
  paused_by: string;
  reason: string;
  paused_at: Date;
}
export const toPause = (row: PauseRow): PauseState => ({
  scope: row.scope,
  by: row.paused_by,
  reason: row.reason,
  at: row.paused_at,
});

export const HOLD_COLUMNS = 'id, policy, key, prefix, reason, created_by, created_at';
export interface HoldRow {
  id: number;
  policy: string | null;
  key: string;
  prefix: boolean;
  reason: string;
  created_by: string;
  created_at: Date;
}
export const toHold = (row: HoldRow): Hold => ({
  id: row.id,
  policy: row.policy,
  key: row.key,
  prefix: row.prefix,
  reason: row.reason,
  createdBy: row.created_by,
  createdAt: row.created_at,
});

export const RUN_COLUMNS = 'run_id, policy, status, dry_run, started_at, finished_at, report';
export interface RunRow {
  run_id: string;
  policy: string;
  status: RunRecord['status'];
  dry_run: boolean;
  started_at: Date;
  finished_at: Date | null;
  report: RunReport | null;
}
export const toRun = (row: RunRow): RunRecord => ({
  runId: row.run_id,
  policy: row.policy,
  status: row.status,
  dryRun: row.dry_run,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  report: row.report,
});

export const AUDIT_COLUMNS =
  'id, run_id, policy, store, key, item_timestamp, size, rule, cutoff, actor, trigger, action, status, created_at, resolved_at, error';
export interface AuditRow {
  id: string;
  run_id: string;
  policy: string;
  store: string;
  key: string;
  item_timestamp: Date;
  size: string | null;
  rule: string;
  cutoff: Date;
  actor: string;
  trigger: AuditRecord['trigger'];
  action: AuditRecord['action'];
  status: AuditStatus;
  created_at: Date;
  resolved_at: Date | null;
  error: string | null;
}
export const toAuditRecord = (row: AuditRow): AuditRecord => ({
  id: Number(row.id),
  runId: row.run_id,
  policy: row.policy,
  store: row.store,
  key: row.key,
  itemTimestamp: row.item_timestamp,
  ...(row.size === null ? {} : { size: Number(row.size) }),
  rule: row.rule,
  cutoff: row.cutoff,
  actor: row.actor,
  trigger: row.trigger,
  action: row.action,
  status: row.status,
  createdAt: row.created_at,
  resolvedAt: row.resolved_at,
  error: row.error,
});
