import type {
  Census,
  CensusQuery,
  DeleteOptions,
  DeleteOutcome,
  LinkedFileIndex,
  Page,
  RunContext,
  ScanQuery,
  Store,
} from '../core/store.ts';
import type { Cutoffs, EligibleItem, Item } from '../core/types.ts';
import { holdFor, isEligible, overdueSeconds } from '../policy/classify.ts';
import { mainFilesOf, type SidecarRule } from '../policy/sidecars.ts';

/**
 * Orphans as a store: the files of a store that nothing needs any more, which `retention
 * reconcile` hands the engine as the store of a run in the policy's name (lease, pause, holds,
 * limits, dry run, write-ahead audit, as for any run). What makes a file an orphan is an
 * OrphanTest: no row names it, or its main file is gone. It is asked for every listed file past
 * the grace period, and again for each batch right before it is deleted, so a file a row came to
 * name in between is kept (`kept`, with the reason).
 */
export interface OrphanTest {
  /** The attribute and value the run's cutoffs are keyed on: the rule in audit records (`orphan=no row in t.c`). */
  readonly attribute: string;
  readonly value: string;
  /** Whether the test applies to a key at all (sidecar patterns); others are never orphans. */
  applies(key: string): boolean;
  /** Of these keys, those that are not orphans now, each with why. */
  needed(keys: string[]): Promise<Map<string, string>>;
}

/** What one listing pass found, for reconcile's summary. */
export interface OrphanCounts {
  /** Files listed in the store's scope. */
  files: number;
  /** Younger than the grace period: never orphans (they may be mid-upload, their row not committed). */
  young: number;
  /** Past the grace period, and still needed (named by a row, main file present). */
  needed: number;
}

export interface OrphanStore extends Store {
  /** Counted by `scan`: what the run's pass went through. */
  readonly counts: OrphanCounts;
}

/** Files listed per census page (each page one reference check). */
const CENSUS_PAGE = 1000;

/**
 * `files`: the store listed and deleted from; `owner`: what opens and closes it (the rows store
 * owns its linked files' store), or the files' store itself.
 */
export function orphanStore(files: Store, test: OrphanTest, owner: Pick<Store, 'open' | 'close'> = files): OrphanStore {
  const counts: OrphanCounts = { files: 0, young: 0, needed: 0 };

  /** The page's orphans past the grace period, as items the run's cutoffs classify. */
  async function orphansOf(items: Item[], cutoffs: Cutoffs, tally?: OrphanCounts): Promise<Item[]> {
    const labelled = items.filter((item) => test.applies(item.key)).map((item) => label(item, test));
    const old = labelled.filter((item) => isEligible(item, cutoffs));
    const needed = await test.needed(old.map((item) => item.key));
    if (tally) {
      tally.files += items.length;
      tally.young += labelled.length - old.length;
      tally.needed += needed.size;
    }
    return old.filter((item) => !needed.has(item.key));
  }

  return {
    kind: files.kind,
    location: files.location,
    order: files.order,
    counts,
    open: (run?: RunContext) => owner.open(run),
    close: () => owner.close(),

    async scan(query: ScanQuery): Promise<Page> {
      const page = await files.scan(query);
      return { ...page, items: await orphansOf(page.items, query.cutoffs, counts) };
    },

    /** Every file in scope is counted in `total`: the fraction limit compares orphans with all files. */
    async census({ cutoffs, holds, bound }: CensusQuery): Promise<Census> {
      const census: Census = { total: 0, eligible: 0, oldestOverdueSeconds: 0, exact: true };
      let cursor: string | undefined;
      for (;;) {
        const page = await files.scan({ cutoffs, limit: CENSUS_PAGE, ...(cursor !== undefined ? { cursor } : {}) });
        census.total += page.items.length;
        for (const orphan of await orphansOf(page.items, cutoffs)) {
          const eligible = isEligible(orphan, cutoffs);
          if (!eligible || holdFor(eligible.key, holds)) continue;
          census.eligible += 1;
          census.oldestOverdueSeconds = Math.max(census.oldestOverdueSeconds, overdueSeconds(eligible));
        }
        cursor = page.cursor;
        if (page.done) return census;
        if (bound !== undefined && census.total >= bound) return { ...census, exact: false };
      }
    },

    async delete(items: EligibleItem[], options?: DeleteOptions): Promise<DeleteOutcome[]> {
      // Asked again just before the delete: a row inserted since the scan keeps its file.
      const needed = await test.needed(items.map((item) => item.key));
      const kept = items
        .filter((item) => needed.has(item.key))
        .map((item): DeleteOutcome => ({ key: item.key, status: 'kept', error: needed.get(item.key)! }));
      const orphans = items.filter((item) => !needed.has(item.key));
      return [...kept, ...(orphans.length > 0 ? await files.delete(orphans, options) : [])];
    },

    present: (keys: string[]) => files.present(keys),
  };
}

function label(item: Item, test: OrphanTest): Item {
  return { ...item, attributes: { ...item.attributes, [test.attribute]: test.value } };
}

/**
 * Files no row of the table names. A declared sidecar (`*.json` beside `*.jpg`) is needed while
 * a row names one of its main files: it belongs to that row's file.
 */
export function unreferencedFiles(links: LinkedFileIndex, sidecars: readonly SidecarRule[] = []): OrphanTest {
  return {
    attribute: 'orphan',
    value: `no row in ${links.column}`,
    applies: () => true,
    async needed(keys) {
      const mains = new Map(keys.map((key) => [key, mainFilesOf(key, sidecars) ?? []]));
      const referenced = await links.referenced([...new Set([...keys, ...[...mains.values()].flat()])]);
      const needed = new Map<string, string>();
      for (const key of keys) {
        if (referenced.has(key)) needed.set(key, `a row of ${links.column} names it`);
        const main = mains.get(key)!.find((candidate) => referenced.has(candidate));
        if (main !== undefined && !needed.has(key))
          needed.set(key, `sidecar of ${main}, which a row of ${links.column} names`);
      }
      return needed;
    },
  };
}

/** Declared sidecars none of whose main files exists. */
export function sidecarsWithoutMain(files: Store, sidecars: readonly SidecarRule[]): OrphanTest {
  return {
    attribute: 'sidecar',
    value: 'main file gone',
    applies: (key) => mainFilesOf(key, sidecars) !== undefined,
    async needed(keys) {
      const mains = new Map(keys.map((key) => [key, mainFilesOf(key, sidecars) ?? []]));
      const present = await files.present([...new Set([...mains.values()].flat())]);
      const needed = new Map<string, string>();
      for (const key of keys) {
        const main = mains.get(key)!.find((candidate) => present.has(candidate));
        if (main !== undefined) needed.set(key, `main file ${main} exists`);
      }
      return needed;
    },
  };
}
