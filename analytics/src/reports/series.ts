/**
 * Event counts over time, per minute, hour or day (UTC), split by platform, app version, channel
 * and push type. App-wide series sum the aggregates, which is right before merges: split or
 * filtered by at most one dimension, the per-dimension tables (`events_minute_by`,
 * `events_hour_by`); by more, the tables of every combination (`events_minute`, `events_hour`).
 * Hour and day series read the hour tables. A message's series reads its raw events and counts
 * distinct event ids.
 */
import { EventKind } from '@mps/shared';
import { Table } from '../store/schema.js';
import { quote, type EventStore } from '../store/store.js';
import { GRANULARITY_MS, ReportRequestError, type Dimension, type Granularity, type Series, type SeriesRequest } from './protocol.js';

const COLUMN: Record<Dimension, string> = {
  platform: 'platform',
  appVersion: 'app_version',
  channel: 'channel',
  pushType: 'push_type',
};

/** Rows (bucket x series x kind) one report may read, and numbers it may answer with. */
export const MAX_ROWS = 1_000_000;
export const MAX_CELLS = 5_000_000;

const startOf: Record<Granularity, (column: string) => string> = {
  minute: (c) => `toStartOfMinute(${c})`,
  hour: (c) => `toStartOfHour(${c})`,
  day: (c) => `toStartOfDay(${c})`,
};

/** What to read: a table, its time column, the bucket, the count, and how each dimension is found. */
interface Source {
  table: string;
  time: string;
  bucket: string;
  count: string;
  conditions: string[];
  /** The SELECT/GROUP BY expression of each split dimension. */
  split: string[];
}

function source(request: SeriesRequest): Source {
  const { granularity, by, where } = request;
  const filtered = Object.entries(where) as [Dimension, string[]][];
  const values = (list: string[]) => list.map(quote).join(', ');
  if (request.message !== undefined) {
    return {
      table: Table.EVENTS,
      time: 'at',
      bucket: startOf[granularity]('at'),
      count: 'uniqExact(id)',
      conditions: [`message = ${quote(request.message)}`, ...filtered.map(([d, v]) => `${COLUMN[d]} IN (${values(v)})`)],
      split: by.map((d) => COLUMN[d]),
    };
  }
  const time = granularity === 'minute' ? 'minute' : 'hour';
  const bucket = granularity === 'day' ? startOf.day('hour') : time;
  const dimensions = new Set<Dimension>([...by, ...filtered.map(([d]) => d)]);
  if (dimensions.size <= 1) {
    const [dimension] = dimensions;
    return {
      table: granularity === 'minute' ? Table.MINUTE_BY : Table.HOUR_BY,
      time,
      bucket,
      count: 'sum(events)',
      conditions: [`dimension = ${quote(dimension === undefined ? '' : COLUMN[dimension])}`, ...filtered.map(([, v]) => `value IN (${values(v)})`)],
      split: by.length === 1 ? ['value'] : [],
    };
  }
  return {
    table: granularity === 'minute' ? Table.MINUTE : Table.HOUR,
    time,
    bucket,
    count: 'sum(events)',
    conditions: filtered.map(([d, v]) => `${COLUMN[d]} IN (${values(v)})`),
    split: by.map((d) => COLUMN[d]),
  };
}

export function seriesSql(request: SeriesRequest, from: number, to: number): string {
  const src = source(request);
  const conditions = [
    `app = ${quote(request.app)}`,
    ...src.conditions,
    `${src.time} >= toDateTime(${from / 1000}, 'UTC')`,
    `${src.time} < toDateTime(${to / 1000}, 'UTC')`,
  ];
  if (request.kinds.length > 0) conditions.push(`kind IN (${request.kinds.map(quote).join(', ')})`);
  const splits = src.split.map((expression, i) => `${expression} AS d${i}`);
  const keys = ['t', ...src.split.map((_, i) => `d${i}`), 'kind'].join(', ');
  return `SELECT toUnixTimestamp(${src.bucket}) AS t, ${[...splits, 'kind'].join(', ')}, ${src.count} AS n
    FROM ${src.table}
    WHERE ${conditions.join(' AND ')}
    GROUP BY ${keys}
    ORDER BY ${keys}
    LIMIT ${MAX_ROWS + 1}`;
}

export async function timeSeries(store: EventStore, request: SeriesRequest): Promise<Series> {
  const step = GRANULARITY_MS[request.granularity];
  const from = Math.floor(request.from / step) * step;
  const to = Math.ceil(request.to / step) * step;
  const rows = await store.select<Record<string, string | number>>(seriesSql(request, from, to));
  if (rows.length > MAX_ROWS) throw tooLarge();

  const times: string[] = [];
  for (let t = from; t < to; t += step) times.push(new Date(t).toISOString());
  const kinds = request.kinds.length > 0 ? EventKind.filter((k) => request.kinds.includes(k)) : [...EventKind];
  const series = new Map<string, Series['series'][number]>();
  for (const row of rows) {
    const key: Partial<Record<Dimension, string>> = {};
    request.by.forEach((d, i) => (key[d] = String(row[`d${i}`])));
    const id = JSON.stringify(request.by.map((d) => key[d]));
    let entry = series.get(id);
    if (!entry) {
      if ((series.size + 1) * times.length * kinds.length > MAX_CELLS) throw tooLarge();
      entry = { key, counts: Object.fromEntries(kinds.map((k) => [k, new Array<number>(times.length).fill(0)])) };
      series.set(id, entry);
    }
    const index = (Number(row.t) * 1000 - from) / step;
    const counts = entry.counts[row.kind as EventKind];
    if (counts !== undefined && index >= 0 && index < times.length) counts[index] = Number(row.n);
  }
  // One series of zeros rather than none, so that a chart of a quiet range still has its axis.
  if (series.size === 0 && request.by.length === 0) {
    series.set('[]', { key: {}, counts: Object.fromEntries(kinds.map((k) => [k, new Array<number>(times.length).fill(0)])) });
  }
  return {
    granularity: request.granularity,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    times,
    series: [...series.values()],
  };
}

const tooLarge = () => new ReportRequestError('the report is too large: narrow the range, the dimensions or the kinds');
