/**
 * Where tracking events are kept: a ClickHouse server or embedded chDB, with the same SQL.
 * Rows are written as JSONEachRow, which both accept.
 */
import type { TrackingEvent } from '@mps/shared';

export interface EventStore {
  /** Creates the tables when they are missing. */
  init(): Promise<void>;
  insert(rows: EventRow[]): Promise<void>;
  /** Runs a SELECT and returns its rows. */
  select<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

/** One row of the events table. */
export interface EventRow {
  id: string;
  kind: string;
  app: string;
  message: string;
  device: string;
  channel: string;
  platform: string;
  os_version: string;
  app_version: string;
  sdk_version: string;
  push_type: string;
  /** Seconds since the epoch (UTC). */
  at: number;
}

export function toRow(event: TrackingEvent): EventRow {
  return {
    id: event.id,
    kind: event.kind,
    app: event.app,
    message: event.message,
    device: event.device,
    channel: event.channel,
    platform: event.platform,
    os_version: event.osVersion,
    app_version: event.appVersion,
    sdk_version: event.sdkVersion,
    push_type: event.pushType,
    at: Math.floor(event.at / 1000),
  };
}

/**
 * Raw events. ReplacingMergeTree keyed by the event id makes a replayed batch harmless once merged;
 * reports count distinct event ids so they are right before the merge too.
 * Written for ClickHouse 18.16 and later (no LowCardinality, no DateTime64).
 */
export const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS events (
    id String,
    kind String,
    app String,
    message String,
    device String,
    channel String,
    platform String,
    os_version String,
    app_version String,
    sdk_version String,
    push_type String,
    at DateTime('UTC')
  ) ENGINE = ReplacingMergeTree()
  PARTITION BY toYYYYMM(at)
  ORDER BY (app, kind, at, id)`,
];

/** SQL string literal: the only values spliced into report SQL are ids checked by the caller. */
export const quote = (value: string): string => `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
