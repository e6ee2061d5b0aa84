import type { AttentionItem, ControlStore } from '../core/control.ts';
import { recordGovernance } from '../core/governance.ts';
import type { Clock, Hold } from '../core/types.ts';
import type { Logger } from '../observe/log.ts';
import { describeHold } from './report.ts';

/**
 * The operator's actions on the tool itself — pause, resume, hold add, hold remove, attention dismiss — each with its
 * log line and its governance record (invariant 13), done once here for every door they come
 * through: the CLI's commands and the REST API's routes.
 */
export interface Operator {
  control: ControlStore;
  clock: Clock;
  log: Logger;
  /** Who acts: `cli:alice@host`, `api:operator:alice`. */
  actor: string;
}

const described = (scope: string): string => (scope === '*' ? 'every policy' : `policy ${scope}`);
const instant = (value: Date): string => value.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Pauses one policy, or every policy with `*` (the kill switch). */
export async function pauseScope(operator: Operator, scope: string, reason: string): Promise<void> {
  const { control, log, actor, clock } = operator;
  await control.pause(scope, actor, reason);
  log.warn('policy_paused', { scope, by: actor, reason });
  const detail = `paused ${described(scope)}`;
  await recordGovernance(control, { action: 'paused', actor, reason, scope, subject: scope, detail, at: clock.now() });
}

/** Lifts a pause; recorded, with what it lifted, only when there was one. Returns whether there was. */
export async function resumeScope(operator: Operator, scope: string, reason: string): Promise<boolean> {
  const { control, log, actor, clock } = operator;
  const lifted = (await control.listPauses()).find((pause) => pause.scope === scope);
  const resumed = await control.resume(scope);
  log.info('policy_resumed', { scope, by: actor, was_paused: resumed });
  if (resumed) {
    const was = lifted ? `: paused by ${lifted.by} at ${instant(lifted.at)} (${lifted.reason})` : '';
    const detail = `resumed ${described(scope)}${was}`;
    await recordGovernance(control, {
      action: 'resumed',
      actor,
      reason,
      scope,
      subject: scope,
      detail,
      at: clock.now(),
    });
  }
  return resumed;
}

/** A legal hold on a key or a prefix, for one policy or (`policy: null`) every policy. */
export async function addHold(
  operator: Operator,
  request: { policy: string | null; key: string; prefix: boolean; reason: string },
): Promise<Hold> {
  const { control, log, actor, clock } = operator;
  const { policy, key, prefix, reason } = request;
  const hold = await control.addHold({ policy, key, prefix, reason, createdBy: actor });
  log.info('hold_added', { hold_id: hold.id, policy, key, prefix, reason, by: actor });
  const detail = `hold #${hold.id} on ${prefix ? 'prefix' : 'key'} "${key}"`;
  await recordGovernance(control, {
    action: 'hold_added',
    actor,
    reason,
    scope: policy ?? '*',
    subject: key,
    detail,
    at: clock.now(),
  });
  return hold;
}

/** Removes a hold (retention may then delete what it kept), recorded with the hold as it was; undefined: no such hold. */
export async function removeHold(operator: Operator, id: number, reason: string): Promise<Hold | undefined> {
  const { control, log, actor, clock } = operator;
  const hold = (await control.listHolds()).find((candidate) => candidate.id === id);
  if (!hold || !(await control.removeHold(id))) return undefined;
  log.warn('hold_removed', { hold_id: id, by: actor });
  await recordGovernance(control, {
    action: 'hold_removed',
    actor,
    reason,
    scope: hold.policy ?? '*',
    subject: hold.key,
    detail: `${describeHold(hold)} removed (added by ${hold.createdBy} at ${instant(hold.createdAt)})`,
    at: clock.now(),
  });
  return hold;
}

/**
 * An operator acknowledges an item that keeps failing (`attention dismiss`): it is no longer
 * counted open while its streak lasts; recorded with the streak as it stood. Undefined: the key
 * has no failure streak in that policy.
 */
export async function dismissAttention(
  operator: Operator,
  request: { policy: string; key: string; reason: string },
): Promise<AttentionItem | undefined> {
  const { control, log, actor, clock } = operator;
  const { policy, key, reason } = request;
  const item = await control.dismissAttention(policy, key, actor, reason);
  if (!item) return undefined;
  log.info('attention_dismissed', { policy, key, failures: item.failures, by: actor, reason });
  const plural = item.failures === 1 ? '' : 's';
  await recordGovernance(control, {
    action: 'attention_dismissed',
    actor,
    reason,
    scope: policy,
    subject: key,
    detail: `failed in ${item.failures} consecutive run${plural} (last ${item.lastRunId}: ${item.lastError})`,
    at: clock.now(),
    runId: item.lastRunId,
  });
  return item;
}
