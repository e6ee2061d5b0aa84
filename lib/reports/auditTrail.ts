import type { AuditQuery, AuditRecord, ControlStore } from '../core/control.ts';
import { type GovernanceView, governanceView, isGovernanceAction } from '../core/governance.ts';
import type { Store } from '../core/store.ts';
import { describeCause } from '../errors.ts';

/**
 * The audit trail as operators and restores read it: the control store's records plus the ones
 * stores keep themselves (rows deleted in one statement are recorded only in the database they
 * were deleted from, in the same transaction). One record per (run, policy, action, key): the control
 * store's wins when both have it, since it carries outcomes and errors. Newest first.
 */
export async function readAuditTrail(
  control: ControlStore,
  stores: Store[],
  query: AuditQuery,
): Promise<AuditRecord[]> {
  const [recorded, ...kept] = await Promise.all([
    control.audit(query),
    ...stores.flatMap((store) => (store.audit ? [store.audit.trail(query)] : [])),
  ]);
  return merged([recorded!, ...kept]).slice(0, query.limit);
}

/** A policy's store, whose own trail (if it keeps one) is read with the control store's. */
export interface TrailSource {
  policy: string;
  store: Store;
}

/** A page of the trail; `unreachable`: policies whose own trail could not be read (the rest answered). */
export interface TrailPage {
  records: AuditRecord[];
  /** Records past this page exist: the next one starts at `offset + records.length`. */
  more: boolean;
  unreachable: Array<{ policy: string; error: string }>;
}

/**
 * `retention audit`: one page of the trail, `offset` records in. Each source is read up to the
 * end of the page (plus one record, to tell whether more follow); a policy's store that cannot
 * be read (its database is down) is reported unreachable instead of failing the whole answer.
 * Asked for one policy, actions over every policy (`pause --all`, global holds) are included.
 */
export async function readAuditPage(
  control: ControlStore,
  sources: TrailSource[],
  query: AuditQuery & { offset: number },
): Promise<TrailPage> {
  const { offset, ...filters } = query;
  const within = { ...filters, limit: offset + query.limit + 1 };
  const global = query.policy !== undefined && query.policy !== '*' && mayBeGovernance(query);
  const unreachable: TrailPage['unreachable'] = [];
  const ownTrail = async ({ policy, store }: TrailSource): Promise<AuditRecord[]> => {
    if (!store.audit || !mayBeInStore(query)) return [];
    try {
      return await store.audit.trail(within);
    } catch (error) {
      unreachable.push({ policy, error: describeCause(error) });
      return [];
    }
  };
  const lists = await Promise.all([
    control.audit(within),
    global ? control.audit({ ...within, policy: '*' }) : Promise.resolve([]),
    ...sources.map(ownTrail),
  ]);
  const all = merged(lists);
  return { records: all.slice(offset, offset + query.limit), more: all.length > offset + query.limit, unreachable };
}

/** A record as `retention audit` prints it: governance actions with their own fields, the others as recorded. */
export function auditView(record: AuditRecord): AuditRecord | GovernanceView {
  return governanceView(record) ?? record;
}

/** Governance records (and `hold` records) live in the control store only. */
function mayBeGovernance(query: AuditQuery): boolean {
  return query.action === undefined || isGovernanceAction(query.action);
}

/** What stores record themselves: row deletions, partition drops and restores, always `deleted` or `restored`. */
function mayBeInStore(query: AuditQuery): boolean {
  const actions = ['delete', 'partition_drop', 'restore'];
  const statuses = ['deleted', 'restored'];
  return (
    (query.action === undefined || actions.includes(query.action)) &&
    (query.status === undefined || statuses.includes(query.status))
  );
}

/** The control store's list first: its record of a (run, policy, action, key) wins. Newest first. */
function merged(lists: AuditRecord[][]): AuditRecord[] {
  const identity = (record: AuditRecord) =>
    `${record.runId}\u0000${record.policy}\u0000${record.action}\u0000${record.key}`;
  const seen = new Set<string>();
  const all: AuditRecord[] = [];
  lists.forEach((list, index) => {
    for (const record of list) {
      // Records of one list are distinct records, even with one identity (a key restored twice).
      if (index > 0 && seen.has(identity(record))) continue;
      all.push(record);
    }
    for (const record of list) seen.add(identity(record));
  });
  const at = (record: AuditRecord) => (record.resolvedAt ?? record.createdAt).getTime();
  return all.sort((a, b) => at(b) - at(a));
}
