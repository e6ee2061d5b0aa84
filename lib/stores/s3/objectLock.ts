import { GetObjectLegalHoldCommand, GetObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RequestDeadline } from '../../core/deadline.ts';
import { describeCause } from '../../errors.ts';

/**
 * Why S3 refused to delete one object version. S3 answers AccessDenied both for a missing
 * permission and for an object under Object Lock (a legal hold, or a retention period not yet
 * over), and does not say which. Rather than guess, the refusal is followed by asking S3 about
 * that version's lock: a lock is the storage keeping the object (`held`, not a failure to retry);
 * no lock means the permission is missing (`failed`). Only refusals pay for these two requests.
 */
export type LockVerdict = { locked: true; reason: string } | { locked: false; unknown?: string };

/** S3's answers that mean "no lock of this kind here" rather than "cannot tell". */
const NO_LOCK_CODES = new Set([
  // No legal hold or retention was ever set on the object.
  'NoSuchObjectLockConfiguration',
  // The bucket has no Object Lock configuration at all ("Bucket is missing Object Lock Configuration").
  'InvalidRequest',
]);

export async function objectLockOf(
  client: S3Client,
  bucket: string,
  target: { key: string; versionId?: string },
  now: Date,
  deadline: RequestDeadline,
): Promise<LockVerdict> {
  const input = { Bucket: bucket, Key: target.key, ...(target.versionId ? { VersionId: target.versionId } : {}) };
  const legalHold = await ask(() => client.send(new GetObjectLegalHoldCommand(input), deadline.sendOptions), deadline);
  if ('unknown' in legalHold) return { locked: false, unknown: `GetObjectLegalHold: ${legalHold.unknown}` };
  if (legalHold.answer?.LegalHold?.Status === 'ON') return { locked: true, reason: 'object_lock: legal hold' };

  const retention = await ask(() => client.send(new GetObjectRetentionCommand(input), deadline.sendOptions), deadline);
  if ('unknown' in retention) return { locked: false, unknown: `GetObjectRetention: ${retention.unknown}` };
  const until = retention.answer?.Retention?.RetainUntilDate;
  // A retention period that is over no longer protects the object: the refusal is about permissions.
  if (until && until.getTime() > now.getTime()) {
    const mode = retention.answer?.Retention?.Mode;
    return {
      locked: true,
      reason: `object_lock: retention until ${until.toISOString()}${mode ? ` (${mode.toLowerCase()} mode)` : ''}`,
    };
  }
  return { locked: false };
}

/** The answer, `{}` when S3 says there is no such lock, or what kept us from knowing (the run's deadline is thrown). */
async function ask<T>(
  request: () => Promise<T>,
  deadline: RequestDeadline,
): Promise<{ answer?: T } | { unknown: string }> {
  try {
    return { answer: await request() };
  } catch (error) {
    deadline.throwIfPassed('reading Object Lock state', error);
    const code = (error as { name?: string; Code?: string }).Code ?? (error as { name?: string }).name;
    if (code !== undefined && NO_LOCK_CODES.has(code)) return {};
    return { unknown: `${code ?? 'error'}: ${describeCause(error)}` };
  }
}
