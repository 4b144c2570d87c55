/**
 * The per-minute and per-hour counts of the events the ingest stores, computed here and written by
 * the ingest itself (the views count only rows inserted by other means, schema.ts).
 *
 * Why not the views: ClickHouse has no transaction over several tables. An insert into `events`
 * writes the raw part first and then one part per view, so a crash in between leaves events stored
 * but not counted everywhere, and nothing tells which tables got them (issue #7). The only write
 * ClickHouse makes atomically is one part: the rows of one insert into one partition of one table.
 * So each aggregate table gets a batch's counts in one insert, together with a marker row that
 * names the batch, in every partition the batch touches: where the marker is, the counts are, and
 * where it is not, they are not. The raw rows carry the batch's id (`events.batch`), which is how a
 * redelivered event finds the markers of the write that stored it (../write.ts).
 *
 * Marker rows are never read by reports: in `events_minute`/`events_hour` their app is '' (no app
 * has that id); in the per-dimension tables their dimension is '#batches' (reports ask for '' or a
 * column name), under an app of the batch so that a list of apps shows no extra one. The bucket is
 * the day, which lies in the same partition as the batch's counts of that day. Batch ids are
 * consecutive in a process, and 32 of them share a row, each adding its own bit: SummingMergeTree
 * adds them up, so a marker row per 32 batches and day survives merges as a 32-bit mask. That
 * keeps the markers of 800 days of hours to about a million rows even when every batch is small.
 */
import type { TrackingEvent } from '@mps/shared';
import { tsvField } from './batch.js';
import { DIMENSION_COLUMNS, Table } from './schema.js';

export interface Aggregate {
  table: string;
  /** This table's bit in `events.counted`. */
  bit: number;
  bucket: 'minute' | 'hour';
  /** Counts per one dimension at a time (`dimension`, `value`) rather than per combination. */
  perDimension: boolean;
}

export const AGGREGATES: readonly Aggregate[] = [
  { table: Table.MINUTE, bit: 1, bucket: 'minute', perDimension: false },
  { table: Table.HOUR, bit: 2, bucket: 'hour', perDimension: false },
  { table: Table.MINUTE_BY, bit: 4, bucket: 'minute', perDimension: true },
  { table: Table.HOUR_BY, bit: 8, bucket: 'hour', perDimension: true },
];

/** `events.counted` of an event that every aggregate counts. */
export const COUNTED_EVERYWHERE = AGGREGATES.reduce((mask, a) => mask | a.bit, 0);

/** The per-dimension tables' dimension of marker rows. */
export const MARKER_DIMENSION = '#batches';

const BATCHES_PER_MARKER = 32n;
const DAY_S = 86_400;

/** The marker row a batch shares with its neighbours (as stored), and its bit in that row's count. */
export function markerOf(batch: bigint): { group: string; bit: number } {
  return { group: String(batch / BATCHES_PER_MARKER), bit: 2 ** Number(batch % BATCHES_PER_MARKER) };
}

/** The day (UTC, seconds) of an event: the bucket of its batch's marker row. */
export const dayOf = (atMs: number): number => Math.floor(atMs / 86_400_000) * DAY_S;

/** Events of one app, minute and combination of kind and dimensions. */
export interface MinuteCount {
  app: string;
  /** Seconds since the epoch, a whole minute. */
  minute: number;
  kind: string;
  platform: string;
  appVersion: string;
  channel: string;
  pushType: string;
  events: number;
}

/** Maps keyed by one field of the count each, down to the count of a minute. */
type Level = Map<string | number, Level | MinuteCount>;

const below = (level: Level, key: string): Level => {
  let next = level.get(key) as Level | undefined;
  if (next === undefined) level.set(key, (next = new Map()));
  return next;
};

/**
 * One pass over the events; every table's rows derive from these counts. Nested maps, one field a
 * level, rather than one key string per event: about five times cheaper here (no string is built,
 * and each field's hash is computed once per string).
 */
export function countPerMinute(events: Iterable<TrackingEvent>): MinuteCount[] {
  const root: Level = new Map();
  const counts: MinuteCount[] = [];
  for (const e of events) {
    const minute = Math.floor(e.at / 60_000) * 60;
    const leaf = below(below(below(below(below(below(root, e.app), e.kind), e.channel), e.platform), e.appVersion), e.pushType);
    const count = leaf.get(minute) as MinuteCount | undefined;
    if (count) count.events++;
    else {
      const { app, kind, platform, appVersion, channel, pushType } = e;
      const created = { app, minute, kind, platform, appVersion, channel, pushType, events: 1 };
      leaf.set(minute, created);
      counts.push(created);
    }
  }
  return counts;
}

export function aggregateColumns(a: Aggregate): string[] {
  return a.perDimension
    ? ['app', a.bucket, 'kind', 'dimension', 'value', 'events']
    : ['app', a.bucket, 'kind', ...DIMENSION_COLUMNS, 'events'];
}

/**
 * The TabSeparated rows (aggregateColumns order) of batch `batch`'s counts in `a`, with its marker
 * row in each day it touches: written in one insert, they land together or not at all. Rows with
 * the same key are left for the table to add up (SummingMergeTree), which it does faster than this.
 */
export function aggregateTsv(a: Aggregate, counts: Iterable<MinuteCount>, batch: bigint): Buffer {
  const days = new Map<number, string>();
  let text = '';
  for (const c of counts) {
    const day = c.minute - (c.minute % DAY_S);
    if (!days.has(day)) days.set(day, c.app);
    const head = `${tsvField(c.app)}\t${a.bucket === 'minute' ? c.minute : c.minute - (c.minute % 3600)}\t${c.kind}`;
    const [platform, appVersion, pushType, n] = [tsvField(c.platform), tsvField(c.appVersion), tsvField(c.pushType), c.events];
    if (a.perDimension) {
      text += `${head}\t\t\t${n}\n${head}\tplatform\t${platform}\t${n}\n${head}\tapp_version\t${appVersion}\t${n}\n`;
      text += `${head}\tchannel\t${c.channel}\t${n}\n${head}\tpush_type\t${pushType}\t${n}\n`;
    } else {
      text += `${head}\t${platform}\t${appVersion}\t${c.channel}\t${pushType}\t${n}\n`;
    }
  }
  const { group, bit } = markerOf(batch);
  for (const [day, app] of days) {
    text += a.perDimension ? `${tsvField(app)}\t${day}\t\t${MARKER_DIMENSION}\t${group}\t${bit}\n` : `\t${day}\t\t${group}\t\t\t\t${bit}\n`;
  }
  return Buffer.from(text);
}

/**
 * The marker rows of `groups` (markerOf) in the given days, as `g` (group), `day` (seconds) and
 * `bits` (the batches of the group whose counts of that day are in `a`).
 */
export function markerQuery(a: Aggregate, groups: readonly string[], days: readonly number[]): string {
  const list = (values: readonly string[]) => values.map((v) => `'${v}'`).join(', ');
  const inDays = `${a.bucket} IN (${days.map((d) => `toDateTime(${d}, 'UTC')`).join(', ')})`;
  // Groups and days are numbers: nothing to escape.
  const where = a.perDimension
    ? `dimension = '${MARKER_DIMENSION}' AND ${inDays} AND value IN (${list(groups)})`
    : `app = '' AND ${inDays} AND platform IN (${list(groups)})`;
  return `SELECT ${a.perDimension ? 'value' : 'platform'} AS g, toUnixTimestamp(${a.bucket}) AS day, sum(events) AS bits
    FROM ${a.table} WHERE ${where} GROUP BY g, day`;
}
