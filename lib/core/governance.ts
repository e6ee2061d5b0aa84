import type { AuditIntent, AuditRecord, AuditStatus, ControlStore, GovernanceAction } from './control.ts';
import { GOVERNANCE_ACTIONS } from './control.ts';
import type { Trigger } from './types.ts';

/**
 * Governance actions (a hold added or removed, a pause, a resume, a lease broken, the safety
 * limits overridden, a restore) are audit records like deletions (invariant 13), written through
 * `recordEvents`, so they share the trail's storage, queries and integrity. A record's columns
 * are an item's; a governance action fills them as follows, and `governanceView` reads it back:
 *
 *   policy: the scope (a policy name, or `*` for every policy)   key: the subject (a hold's key or
 *   prefix, the scope paused, the policy whose lease broke, the run restored or forced)
 *   rule: the operator's reason    error: what happened (`hold #12 on prefix "legal/"`, …)
 *   runId: the run concerned, or '' (no run)    itemTimestamp, cutoff: when it was done (the actor's clock)
 *
 * The record's own `createdAt` is the control store's clock.
 */
export interface GovernanceEvent {
  action: GovernanceAction;
  actor: string;
  reason: string;
  /** A policy name, or `*` for every policy. */
  scope: string;
  /** What the action applies to within its scope: a hold's key, a paused scope, a run id. */
  subject: string;
  /** What happened, in words: the hold, the limits exceeded, what a restore brought back. */
  detail: string;
  at: Date;
  /** The run it concerns (a forced run, the run restored); none for holds, pauses, leases. */
  runId?: string;
  store?: string;
  trigger?: Trigger;
  /** `restored` is `restored` or `failed` (some items could not come back); the others are `recorded`. */
  status?: Extract<AuditStatus, 'recorded' | 'restored' | 'failed'>;
}

export function isGovernanceAction(action: string): action is GovernanceAction {
  return (GOVERNANCE_ACTIONS as readonly string[]).includes(action);
}

/** The event as the audit record the control store writes. */
export function governanceEntry(
  event: GovernanceEvent,
): AuditIntent & { status: Exclude<AuditStatus, 'pending'>; error: string } {
  return {
    runId: event.runId ?? '',
    policy: event.scope,
    store: event.store ?? '',
    key: event.subject,
    itemTimestamp: event.at,
    rule: event.reason,
    cutoff: event.at,
    actor: event.actor,
    trigger: event.trigger ?? 'manual',
    action: event.action,
    status: event.status ?? 'recorded',
    error: event.detail,
  };
}

/** Records a governance action in the audit trail. */
export function recordGovernance(control: ControlStore, event: GovernanceEvent): Promise<void> {
  return control.recordEvents([governanceEntry(event)]);
}

/** A governance record as operators read it: the item columns it borrowed, named for what they hold. */
export interface GovernanceView {
  id: number;
  action: GovernanceAction;
  status: AuditStatus;
  actor: string;
  at: Date;
  /** Same as `scope`: every record of `retention audit --json` has its `policy`. */
  policy: string;
  scope: string;
  subject: string;
  reason: string;
  detail: string | null;
  runId?: string;
  store?: string;
  source?: string;
}

export function governanceView(record: AuditRecord): GovernanceView | undefined {
  if (!isGovernanceAction(record.action)) return undefined;
  return {
    id: record.id,
    action: record.action,
    status: record.status,
    actor: record.actor,
    at: record.createdAt,
    policy: record.policy,
    scope: record.policy,
    subject: record.key,
    reason: record.rule,
    detail: record.error,
    ...(record.runId !== '' ? { runId: record.runId } : {}),
    ...(record.store !== '' ? { store: record.store } : {}),
    ...(record.source !== undefined ? { source: record.source } : {}),
  };
}
