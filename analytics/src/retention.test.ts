import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropExpired, partitionLastDay } from './retention.js';
import { EventBatch } from './store/batch.js';
import { ChdbStore } from './store/chdb.js';
import { engineFeatures, schemaStatements } from './store/schema.js';

describe('partitionLastDay', () => {
  it('reads day and month partition ids', () => {
    expect(partitionLastDay('20261124')).toBe(Date.UTC(2026, 10, 24));
    expect(partitionLastDay('202611')).toBe(Date.UTC(2026, 10, 30));
    expect(partitionLastDay('202612')).toBe(Date.UTC(2026, 11, 31));
    expect(partitionLastDay('all')).toBeUndefined();
  });
});

describe('schema', () => {
  it('uses LowCardinality only from ClickHouse 19 on', () => {
    expect(engineFeatures('18.16.1').lowCardinality).toBe(false);
    expect(engineFeatures('26.7.2.1').lowCardinality).toBe(true);
    expect(schemaStatements(engineFeatures('18.16.1')).tables.join('\n')).not.toMatch(/LowCardinality/);
  });
});

describe('dropExpired on chDB', () => {
  let dir: string;
  let store: ChdbStore;
  const now = Date.UTC(2026, 10, 24, 12);
  const day = 86_400_000;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mps-retention-'));
    store = new ChdbStore(dir);
    await store.init();
    const event = (at: number) => ({
      id: randomUUID(),
      kind: 'delivered' as const,
      app: 'app_r',
      message: randomUUID(),
      device: randomUUID(),
      channel: 'socket' as const,
      platform: 'android',
      osVersion: '',
      appVersion: '',
      sdkVersion: '',
      pushType: '',
      at,
    });
    await store.insert(EventBatch.of([event(now), event(now - 3 * day), event(now - 10 * day), event(now - 70 * day)]));
  });
  afterAll(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('drops the partitions past each table\'s limit and keeps the rest', async () => {
    const dropped = await dropExpired(store, { rawDays: 5, minuteDays: 10, hourDays: 50 }, now);
    expect(dropped.sort()).toEqual([
      'events:20260915',
      'events:20261114',
      'events_hour:202609',
      'events_hour_by:202609',
      'events_minute:20260915',
      'events_minute:20261114',
      'events_minute_by:20260915',
      'events_minute_by:20261114',
    ]);
    const count = async (table: string) => Number((await store.select<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n);
    expect(await count('events')).toBe(2);
    expect(await count('events_minute')).toBe(2);
    expect(await count('events_hour')).toBe(3);
    expect(await count('events_minute_by')).toBe(2 * 5);
    expect(await dropExpired(store, { rawDays: 5, minuteDays: 10, hourDays: 50 }, now)).toEqual([]);
  });
});
