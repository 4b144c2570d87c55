/**
 * How the ingest writes a batch, so that a crash between any two of its inserts is completed by
 * the next delivery of the same events, and nothing is counted twice.
 *
 * A write inserts the raw events into `events`, tagged with a fresh batch id, then the batch's
 * counts into each aggregate table, one insert per table with the batch's marker row
 * (store/aggregates.ts). Before writing events that may be stored already (redelivered, or retried
 * after a failure), the ingest asks which aggregates count each of them: an event is counted in a
 * table when one of its raw rows has that table's bit in `counted`, or was written by a batch
 * whose marker the table holds for the event's day. An event counted everywhere is skipped. One
 * counted somewhere but not everywhere is written again, tagged with the new batch and with what
 * already counts it, and counted only where it was missing; its new raw row replaces the old one
 * when ClickHouse merges them (reports on raw rows count distinct ids meanwhile), and it carries
 * everything a later delivery needs, so a crash in the middle of this write is completed the same way.
 */
import { randomBytes } from 'node:crypto';
import type { TrackingEvent } from '@mps/shared';
import {
  AGGREGATES,
  aggregateColumns,
  aggregateTsv,
  COUNTED_EVERYWHERE,
  countPerMinute,
  dayOf,
  markerOf,
  markerQuery,
  type MinuteCount,
} from './store/aggregates.js';
import type { EventBatch } from './store/batch.js';
import { Table } from './store/schema.js';
import { quote, type EventStore } from './store/store.js';

/** Ids checked per existence query: keeps the SQL text far below max_query_size (256 KiB). */
const CHECK_CHUNK = 1000;

/**
 * Batch ids of one process: consecutive (32 of them share a marker row) from a random start, so
 * that two processes' ranges do not meet. 0 is left for rows the ingest did not write.
 */
export class BatchIds {
  private last = randomBytes(8).readBigUInt64BE();

  next(): bigint {
    this.last = BigInt.asUintN(64, this.last + 1n);
    return this.last === 0n ? this.next() : this.last;
  }
}

export interface WriteResult {
  /** Events new to the store. */
  inserted: number;
  /** Events in `events` already that some aggregate was missing, counted there now. */
  recounted: number;
  /** Events already stored and counted everywhere. */
  duplicates: number;
}

/**
 * For the events that `events` already holds: which aggregates count them (bits of
 * store/aggregates.ts). Events it does not hold are not in the map.
 */
export async function countedAlready(store: EventStore, events: readonly TrackingEvent[]): Promise<Map<string, number>> {
  const tags = await rawTags(store, events);
  const counted = new Map<string, number>();
  if (tags.size === 0) return counted;

  // The marker rows of the batches that wrote those rows, by aggregate, group and day.
  const wanted = new Map<string, { group: string; day: number }>();
  for (const e of events) {
    for (const tag of tags.get(e.id) ?? []) {
      if (tag.batch === 0n || tag.counted === COUNTED_EVERYWHERE) continue;
      const { group } = markerOf(tag.batch);
      wanted.set(`${group} ${dayOf(e.at)}`, { group, day: dayOf(e.at) });
    }
  }
  const markers = new Map<number, Map<string, number>>();
  if (wanted.size > 0) {
    const groups = [...new Set([...wanted.values()].map((w) => w.group))];
    const days = [...new Set([...wanted.values()].map((w) => w.day))];
    for (const a of AGGREGATES) {
      const rows = await store.select<{ g: string; day: string | number; bits: string | number }>(markerQuery(a, groups, days));
      markers.set(a.bit, new Map(rows.map((r) => [`${r.g} ${Number(r.day)}`, Number(r.bits)])));
    }
  }

  for (const e of events) {
    const eventTags = tags.get(e.id);
    if (!eventTags) continue;
    let mask = 0;
    for (const tag of eventTags) {
      // A row the ingest did not write was counted by the views, in the same insert.
      if (tag.batch === 0n) mask = COUNTED_EVERYWHERE;
      else mask |= tag.counted;
      if (mask === COUNTED_EVERYWHERE) break;
      const { group, bit } = markerOf(tag.batch);
      for (const a of AGGREGATES) {
        const bits = markers.get(a.bit)?.get(`${group} ${dayOf(e.at)}`) ?? 0;
        if (Math.floor(bits / bit) % 2 === 1) mask |= a.bit;
      }
    }
    counted.set(e.id, mask);
  }
  return counted;
}

/** The raw rows of the events (an event may have several until they merge): their batch and counted. */
async function rawTags(store: EventStore, events: readonly TrackingEvent[]): Promise<Map<string, { batch: bigint; counted: number }[]>> {
  const tags = new Map<string, { batch: bigint; counted: number }[]>();
  const list = (values: Iterable<string>) => [...new Set(values)].map(quote).join(', ');
  for (let i = 0; i < events.length; i += CHECK_CHUNK) {
    const chunk = events.slice(i, i + CHECK_CHUNK);
    let from = Infinity;
    let to = -Infinity;
    for (const e of chunk) {
      from = Math.min(from, e.at);
      to = Math.max(to, e.at);
    }
    const rows = await store.select<{ id: string; batch: string; counted: string | number }>(
      `SELECT id, toString(batch) AS batch, counted FROM ${Table.EVENTS}
       WHERE app IN (${list(chunk.map((e) => e.app))}) AND message IN (${list(chunk.map((e) => e.message))})
         AND at >= toDateTime(${Math.floor(from / 1000)}, 'UTC') AND at <= toDateTime(${Math.floor(to / 1000)}, 'UTC')
         AND id IN (${list(chunk.map((e) => e.id))})`,
    );
    for (const row of rows) {
      const tag = { batch: BigInt(row.batch), counted: Number(row.counted) };
      const known = tags.get(row.id);
      if (known) known.push(tag);
      else tags.set(row.id, [tag]);
    }
  }
  return tags;
}

/**
 * Writes the events as batch `batch`: raw rows first, then each aggregate's counts with the
 * batch's marker. `counted` (countedAlready) says what already counts which events.
 */
export async function writeBatch(
  store: EventStore,
  events: EventBatch,
  counted: ReadonlyMap<string, number>,
  options: { batch: bigint; attempt: number },
): Promise<WriteResult> {
  const result: WriteResult = { inserted: events.size, recounted: 0, duplicates: 0 };
  // Events by what already counts them: all of them new but after a crash.
  const byCounted = new Map<number, EventBatch>([[0, events]]);
  if (counted.size > 0) {
    byCounted.clear();
    for (const mask of new Set(events.events.map((e) => counted.get(e.id) ?? 0))) {
      const part = events.filter((e) => (counted.get(e.id) ?? 0) === mask);
      if (mask === COUNTED_EVERYWHERE) result.duplicates += part.size;
      else byCounted.set(mask, part);
    }
    result.recounted = events.events.filter((e) => counted.has(e.id)).length - result.duplicates;
    result.inserted = events.size - result.recounted - result.duplicates;
  }

  const perMinute: { mask: number; counts: MinuteCount[] }[] = [];
  for (const [mask, part] of byCounted) {
    await store.insert(part, { attempt: options.attempt, batch: options.batch, counted: mask });
    perMinute.push({ mask, counts: countPerMinute(part.events) });
  }
  for (const a of AGGREGATES) {
    const counts = perMinute.filter((p) => (p.mask & a.bit) === 0).flatMap((p) => p.counts);
    if (counts.length > 0) await store.insertRows(a.table, aggregateColumns(a), aggregateTsv(a, counts, options.batch));
  }
  return result;
}
