import { type DynamoDBClient, QueryCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoItem } from '../../aws/dynamo.ts';
import type { RequestDeadline } from '../../core/deadline.ts';

/**
 * How the tokens store reads its table. A table is read through "lanes", each a resumable
 * DynamoDB listing read concurrently with the others: a parallel-Scan segment (Scan mode) or one
 * partition value of the expiry index (index mode). A page cursor records where every lane
 * stands as its ExclusiveStartKey, so a checkpoint resumes each lane exactly.
 */

/** Where a lane stands: not started, exhausted, or the ExclusiveStartKey to continue from. */
export type LanePosition = 'start' | 'done' | DynamoItem;

export interface LaneRead {
  items: DynamoItem[];
  /** DynamoDB's LastEvaluatedKey: absent when the lane is exhausted. */
  next?: DynamoItem;
  /** Items DynamoDB evaluated, before the filter (Scan mode filters; index mode does not). */
  evaluated: number;
  consumedUnits: number;
}

export interface ReadRequest {
  /** Epoch seconds (decimal text): only items expiring strictly before; absent = every item in scope (census). */
  before?: string;
  /** Items to evaluate; absent: DynamoDB's 1 MB page. */
  limit?: number;
  /** Extra attributes to read (the per-purpose attribute). */
  attributes: string[];
}

export interface TableLayout {
  table: string;
  partition: string;
  sort?: string;
  expiry: string;
}

export interface Lanes {
  readonly count: number;
  /** Index mode: each lane in expiry order, so merged pages are oldest first. */
  readonly ordered: boolean;
  /** Identifies the lane layout: a cursor saved under another layout restarts the scan. */
  readonly layout: string;
  read(lane: number, position: DynamoItem | undefined, request: ReadRequest): Promise<LaneRead>;
  /** The ExclusiveStartKey that resumes a lane right after `item` (one of its reads). */
  startAfter(item: DynamoItem): DynamoItem;
  expiryOf(item: DynamoItem): number;
}

/** The client lanes read with, and the run's deadline every read carries. */
export interface LaneReader {
  client: DynamoDBClient;
  deadline: RequestDeadline;
}

/** Placeholders for configured attribute names, which need not be valid placeholder text themselves. */
export const NAME = { partition: '#pk', sort: '#sk', expiry: '#e', indexPartition: '#ip' } as const;

function projection(layout: TableLayout, extra: string[], indexPartition?: string) {
  const names: Record<string, string> = { [NAME.partition]: layout.partition, [NAME.expiry]: layout.expiry };
  if (layout.sort !== undefined) names[NAME.sort] = layout.sort;
  if (indexPartition !== undefined) names[NAME.indexPartition] = indexPartition;
  for (const [index, attribute] of extra.entries()) names[`#a${index}`] = attribute;
  return { ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names };
}

function pick(item: DynamoItem, attributes: Array<string | undefined>): DynamoItem {
  return Object.fromEntries(
    attributes.filter((name): name is string => name !== undefined).map((name) => [name, item[name]!]),
  );
}

function laneRead(response: {
  Items?: DynamoItem[];
  LastEvaluatedKey?: DynamoItem;
  ScannedCount?: number;
  ConsumedCapacity?: { CapacityUnits?: number };
}): LaneRead {
  return {
    items: response.Items ?? [],
    ...(response.LastEvaluatedKey ? { next: response.LastEvaluatedKey } : {}),
    evaluated: response.ScannedCount ?? response.Items?.length ?? 0,
    consumedUnits: response.ConsumedCapacity?.CapacityUnits ?? 0,
  };
}

const expiryOf = (layout: TableLayout) => (item: DynamoItem) => Number(item[layout.expiry]?.N);

/**
 * Scan mode: `segments` parallel Scan segments. The expiry condition is a FilterExpression, so a
 * request still reads (and pays for) every item it evaluates; pages come in hash order.
 */
export function scanLanes({ client, deadline }: LaneReader, layout: TableLayout, segments: number): Lanes {
  return {
    count: segments,
    ordered: false,
    layout: `scan/${segments}`,
    async read(lane, position, request) {
      const { ProjectionExpression, ExpressionAttributeNames } = projection(layout, request.attributes);
      const response = await client.send(
        new ScanCommand({
          TableName: layout.table,
          Segment: lane,
          TotalSegments: segments,
          ...(position ? { ExclusiveStartKey: position } : {}),
          ...(request.limit === undefined ? {} : { Limit: request.limit }),
          ProjectionExpression,
          // Without a number expiry an item never expires: out of scope, not even counted.
          FilterExpression:
            request.before === undefined ? `attribute_type(${NAME.expiry}, :number)` : `${NAME.expiry} < :before`,
          ExpressionAttributeNames,
          ExpressionAttributeValues:
            request.before === undefined ? { ':number': { S: 'N' } } : { ':before': { N: request.before } },
          ReturnConsumedCapacity: 'TOTAL',
        }),
        deadline.sendOptions,
      );
      return laneRead(response);
    },
    startAfter: (item) => pick(item, [layout.partition, layout.sort]),
    expiryOf: expiryOf(layout),
  };
}

/**
 * Index mode: one Query per partition value of a GSI whose sort key is the expiry attribute. The
 * expiry condition is a key condition, so only candidates are read; each lane is in expiry order.
 */
export function indexLanes(
  { client, deadline }: LaneReader,
  layout: TableLayout,
  index: { name: string; partition: string; values: Array<{ S: string } | { N: string }> },
): Lanes {
  return {
    count: index.values.length,
    ordered: true,
    layout: `index/${index.name}/${JSON.stringify(index.values)}`,
    async read(lane, position, request) {
      const { ProjectionExpression, ExpressionAttributeNames } = projection(
        layout,
        request.attributes,
        index.partition,
      );
      const response = await client.send(
        new QueryCommand({
          TableName: layout.table,
          IndexName: index.name,
          ...(position ? { ExclusiveStartKey: position } : {}),
          ...(request.limit === undefined ? {} : { Limit: request.limit }),
          ProjectionExpression,
          KeyConditionExpression:
            request.before === undefined
              ? `${NAME.indexPartition} = :lane`
              : `${NAME.indexPartition} = :lane AND ${NAME.expiry} < :before`,
          ExpressionAttributeNames,
          ExpressionAttributeValues: {
            ':lane': index.values[lane]!,
            ...(request.before === undefined ? {} : { ':before': { N: request.before } }),
          },
          ReturnConsumedCapacity: 'TOTAL',
        }),
        deadline.sendOptions,
      );
      return laneRead(response);
    },
    startAfter: (item) => pick(item, [layout.partition, layout.sort, index.partition, layout.expiry]),
    expiryOf: expiryOf(layout),
  };
}

export function encodeCursor(lanes: Lanes, positions: LanePosition[]): string {
  return JSON.stringify({
    layout: lanes.layout,
    lanes: positions.map((position) => (position === 'start' ? null : position)),
  });
}

/**
 * A cursor from a checkpoint: each lane's ExclusiveStartKey. One saved under another lane
 * layout (segments or index changed) or unreadable restarts the scan, which only costs a rescan.
 */
export function decodeCursor(cursor: string | undefined, lanes: Lanes): LanePosition[] {
  const fresh = (): LanePosition[] => Array.from({ length: lanes.count }, () => 'start');
  if (cursor === undefined) return fresh();
  let saved: { layout?: unknown; lanes?: unknown };
  try {
    saved = JSON.parse(cursor) as typeof saved;
  } catch {
    return fresh();
  }
  if (saved?.layout !== lanes.layout || !Array.isArray(saved.lanes) || saved.lanes.length !== lanes.count)
    return fresh();
  return saved.lanes.map(
    (position: unknown): LanePosition =>
      position === 'done'
        ? 'done'
        : typeof position === 'object' && position !== null
          ? (position as DynamoItem)
          : 'start',
  );
}

/**
 * A Scan page keeps reading until it has `limit` candidates, but stops after evaluating this
 * many items per requested candidate (then it returns a short page that is not done): in a
 * table of mostly live tokens, one page must not turn into a full table scan past the budget.
 */
const MAX_EVALUATED_PER_CANDIDATE = 50;

/** Spreads DynamoDB reads so that they consume at most `unitsPerSecond` read capacity units on average. */
export class ReadPacer {
  private nextReadAt = 0;

  constructor(
    private readonly unitsPerSecond: number | undefined,
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Reads start at once (concurrent lanes may burst one request each); each response's
   * consumed capacity then delays the next read by `units / rate` seconds.
   */
  async read(call: () => Promise<LaneRead>): Promise<LaneRead> {
    if (this.unitsPerSecond === undefined) return call();
    const wait = this.nextReadAt - this.now();
    if (wait > 0) await this.sleep(wait);
    const result = await call();
    this.nextReadAt = Math.max(this.nextReadAt, this.now()) + (result.consumedUnits / this.unitsPerSecond) * 1000;
    return result;
  }
}

/**
 * One page of at most `limit` candidates from the lanes at `positions` (updated in place).
 * Ordered lanes are merged oldest first; unordered lanes are read in rounds until the page is
 * full, every lane is done, or the evaluation cap is reached. A lane cut mid-response resumes
 * after the last item taken (a Scan or Query may start after any item key).
 */
export async function readPage(
  lanes: Lanes,
  pacer: ReadPacer,
  positions: LanePosition[],
  limit: number,
  request: Omit<ReadRequest, 'limit'>,
): Promise<DynamoItem[]> {
  const taken: DynamoItem[] = [];
  let evaluated = 0;
  while (taken.length < limit && evaluated < limit * MAX_EVALUATED_PER_CANDIDATE) {
    const active = positions.flatMap((position, lane) => (position === 'done' ? [] : [lane]));
    if (active.length === 0) break;
    const remaining = limit - taken.length;
    // Scan mode reads ahead by the match rate seen so far: a 2% match rate reads 50 items per wanted one.
    const matchRate = evaluated === 0 ? 1 : Math.max(taken.length / evaluated, 1 / MAX_EVALUATED_PER_CANDIDATE);
    const perLane = lanes.ordered ? remaining : Math.ceil(remaining / active.length / matchRate);
    const reads = await Promise.all(
      active.map((lane) => {
        const position = positions[lane]!;
        return pacer.read(() =>
          lanes.read(lane, typeof position === 'object' ? position : undefined, { ...request, limit: perLane }),
        );
      }),
    );
    evaluated += reads.reduce((sum, read) => sum + read.evaluated, 0);
    const used = lanes.ordered ? mergeOldestFirst(lanes, reads, remaining) : fillInLaneOrder(reads, remaining);
    reads.forEach((read, index) => {
      const lane = active[index]!;
      const count = used[index]!;
      taken.push(...read.items.slice(0, count));
      if (count === read.items.length) positions[lane] = read.next ?? 'done';
      else if (count > 0) positions[lane] = lanes.startAfter(read.items[count - 1]!);
    });
    // Ordered lanes read `remaining` each, so one round fills the page unless a lane came back short.
    if (lanes.ordered) break;
  }
  return lanes.ordered ? taken.sort((a, b) => lanes.expiryOf(a) - lanes.expiryOf(b)) : taken;
}

/**
 * How many items of each lane's response to take so that the taken ones are the oldest across
 * lanes. Merging stops where a lane's response ran out while the lane has more: its next item,
 * unread, could be older than anything still to take.
 */
function mergeOldestFirst(lanes: Lanes, reads: LaneRead[], limit: number): number[] {
  const used = reads.map(() => 0);
  for (let total = 0; total < limit; total += 1) {
    let oldest = -1;
    for (let index = 0; index < reads.length; index += 1) {
      const read = reads[index]!;
      if (used[index]! === read.items.length) {
        if (read.next) return used;
        continue;
      }
      if (
        oldest === -1 ||
        lanes.expiryOf(read.items[used[index]!]!) < lanes.expiryOf(reads[oldest]!.items[used[oldest]!]!)
      )
        oldest = index;
    }
    if (oldest === -1) return used;
    used[oldest]! += 1;
  }
  return used;
}

/** Unordered lanes: take whole responses in lane order while there is room; the last one may be cut. */
function fillInLaneOrder(reads: LaneRead[], room: number): number[] {
  let left = room;
  return reads.map((read) => {
    const count = Math.min(read.items.length, left);
    left -= count;
    return count;
  });
}
