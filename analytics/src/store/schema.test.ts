/** The schema on chDB: a store of the previous version brought up to date without counting anything again. */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TrackingEvent } from '@mps/shared';
import { EVENT_COLUMNS, EventBatch } from './batch.js';
import { ChdbStore } from './chdb.js';
import { engineFeatures, schemaStatements } from './schema.js';

const event = (app: string): TrackingEvent => ({
  id: randomUUID(),
  kind: 'delivered',
  app,
  message: randomUUID(),
  device: randomUUID(),
  channel: 'socket',
  platform: 'ios',
  osVersion: '17',
  appVersion: '1.0',
  sdkVersion: '0.1.0',
  pushType: 'notification',
  at: Date.UTC(2026, 10, 24, 12),
});

describe('a store of the previous version on chDB', () => {
  let dir: string;
  let store: ChdbStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mps-schema-'));
    store = new ChdbStore(dir);
  });
  afterAll(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gets the new columns and views, keeps its counts, and counts new rows once', async () => {
    // The previous version: `events` without batch and counted, and views that counted every row.
    const [, ...aggregates] = schemaStatements(engineFeatures('26.7')).tables;
    await store.command(`CREATE TABLE events (
      id String, kind String, app String, message String, device String, channel String, platform String,
      os_version String, app_version String, sdk_version String, push_type String, at DateTime('UTC')
    ) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMMDD(at) ORDER BY (app, message, kind, device, id)`);
    for (const sql of aggregates) await store.command(sql);
    await store.command(`CREATE MATERIALIZED VIEW events_minute_mv TO events_minute AS
      SELECT app, toStartOfMinute(at) AS minute, kind, platform, app_version, channel, push_type, count() AS events
      FROM events GROUP BY app, minute, kind, platform, app_version, channel, push_type`);
    await store.command(`CREATE MATERIALIZED VIEW events_hour_by_mv TO events_hour_by AS
      SELECT app, toStartOfHour(at) AS hour, kind, '' AS dimension, '' AS value, count() AS events
      FROM events GROUP BY app, hour, kind`);
    await store.insertRows('events', EVENT_COLUMNS, EventBatch.of([event('app_old'), event('app_old')]).tsv());

    await store.init();
    const names = async (sql: string) => (await store.select<{ name: string }>(sql)).map((r) => r.name).sort();
    expect(await names(`SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'events' AND name IN ('batch', 'counted')`)).toEqual([
      'batch',
      'counted',
    ]);
    expect(await names(`SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE '%\\_mv'`)).toEqual([
      'events_hour_by_direct_mv',
      'events_hour_direct_mv',
      'events_minute_by_direct_mv',
      'events_minute_direct_mv',
    ]);
    const total = async (table: string, app: string) =>
      Number((await store.select<{ n: string }>(`SELECT sum(events) AS n FROM ${table} WHERE app = '${app}'`))[0]?.n);
    // Not backfilled again: the tables existed.
    expect(await total('events_minute', 'app_old')).toBe(2);
    expect(await total('events_hour_by', 'app_old')).toBe(2);

    // Rows the ingest writes are its to count; others, the views'.
    await store.insert(EventBatch.of([event('app_new')]), { batch: 7n });
    await store.insert(EventBatch.of([event('app_new'), event('app_new')]));
    expect(await total('events_minute', 'app_new')).toBe(2);
    expect(await total('events_hour', 'app_new')).toBe(2);
    await store.init();
    expect(await total('events_minute', 'app_new')).toBe(2);
  });
});
