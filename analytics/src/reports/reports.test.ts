/** Reports against embedded chDB: funnels, series at each granularity, filters and request checks. */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventKind, TrackingEvent } from '@mps/shared';
import { EventBatch } from '../store/batch.js';
import { ChdbStore } from '../store/chdb.js';
import { messageFunnel, messageFunnelByChannel } from './funnel.js';
import { parseFunnelRequest, parseSeriesRequest, ReportRequestError } from './protocol.js';
import { timeSeries } from './series.js';

const APP = 'app_reports';
const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);

function row(kind: EventKind, message: string, device: string, at: number, extra: Partial<TrackingEvent> = {}): TrackingEvent {
  return {
    id: randomUUID(),
    kind,
    app: APP,
    message,
    device,
    channel: 'socket',
    platform: 'android',
    osVersion: '14',
    appVersion: '2.3.0',
    sdkVersion: '0.1.0',
    pushType: 'notification',
    at,
    ...extra,
  };
}

describe('reports on chDB', () => {
  let dir: string;
  let store: ChdbStore;
  const message = randomUUID();
  const nextDay = randomUUID();
  const devices = Array.from({ length: 4 }, () => randomUUID());
  let delivered: TrackingEvent[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mps-reports-'));
    store = new ChdbStore(dir);
    await store.init();
    delivered = devices.map((d, i) => row('delivered', message, d, T0 + i * 1000, { platform: i < 3 ? 'android' : 'ios' }));
    await store.insert(EventBatch.of([
      ...delivered,
      // A second ack from the same device: one more event, not one more device.
      row('delivered', message, devices[0] as string, T0 + 90_000),
      row('arrived', message, devices[0] as string, T0 + 61_000),
      row('arrived', message, devices[1] as string, T0 + 61_000),
      row('opened', message, devices[0] as string, T0 + 3_600_000 + 5_000),
      row('sent', message, devices[3] as string, T0, { channel: 'apns', platform: 'ios', pushType: 'silent' }),
      row('delivered', nextDay, devices[0] as string, T0 + 86_400_000, { appVersion: '3.0.0' }),
    ]));
  });
  afterAll(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts distinct devices per kind in a funnel, also per channel', async () => {
    expect(await messageFunnel(store, { app: APP, message })).toEqual({ sent: 1, delivered: 4, arrived: 2, opened: 1 });
    const { channels } = await messageFunnelByChannel(store, { app: APP, message });
    expect(channels).toEqual({ apns: { sent: 1 }, socket: { delivered: 4, arrived: 2, opened: 1 } });
    expect(await messageFunnel(store, { app: 'app_other', message })).toEqual({});
    // A task's messages: the same device counts once per message.
    expect(await messageFunnel(store, parseFunnelRequest({ app: APP, messages: [message, nextDay] }))).toEqual({ sent: 1, delivered: 5, arrived: 2, opened: 1 });
  });

  it('gives minute buckets that count each event id once, split by platform', async () => {
    const series = await timeSeries(
      store,
      parseSeriesRequest({ app: APP, granularity: 'minute', from: T0 + 30_000, to: T0 + 150_000, by: ['platform'], kinds: ['delivered', 'arrived'] }),
    );
    expect(series.from).toBe('2026-11-24T10:00:00.000Z');
    expect(series.to).toBe('2026-11-24T10:03:00.000Z');
    expect(series.times).toEqual(['2026-11-24T10:00:00.000Z', '2026-11-24T10:01:00.000Z', '2026-11-24T10:02:00.000Z']);
    expect(series.series).toEqual([
      { key: { platform: 'android' }, counts: { delivered: [3, 1, 0], arrived: [0, 2, 0] } },
      { key: { platform: 'ios' }, counts: { delivered: [1, 0, 0], arrived: [0, 0, 0] } },
    ]);
  });

  it('gives hour and day buckets, filters by dimension values, and a zero series for a quiet range', async () => {
    const hours = await timeSeries(store, parseSeriesRequest({ app: APP, granularity: 'hour', from: T0, to: T0 + 2 * 3_600_000, kinds: ['delivered', 'opened'] }));
    expect(hours.series).toEqual([{ key: {}, counts: { delivered: [5, 0], opened: [0, 1] } }]);

    const days = await timeSeries(
      store,
      parseSeriesRequest({ app: APP, granularity: 'day', from: T0, to: T0 + 86_400_000, by: ['appVersion'], where: { channel: ['socket'] }, kinds: ['delivered'] }),
    );
    expect(days.times).toEqual(['2026-11-24T00:00:00.000Z', '2026-11-25T00:00:00.000Z']);
    expect(days.series).toEqual([
      { key: { appVersion: '2.3.0' }, counts: { delivered: [5, 0] } },
      { key: { appVersion: '3.0.0' }, counts: { delivered: [0, 1] } },
    ]);

    const bySilent = await timeSeries(store, parseSeriesRequest({ app: APP, granularity: 'hour', from: T0, to: T0 + 3_600_000, by: ['channel', 'pushType'], where: { pushType: ['silent'] } }));
    expect(bySilent.series).toHaveLength(1);
    expect(bySilent.series[0]?.key).toEqual({ channel: 'apns', pushType: 'silent' });
    expect(bySilent.series[0]?.counts.sent).toEqual([1]);

    const quiet = await timeSeries(store, parseSeriesRequest({ app: APP, granularity: 'minute', from: T0 - 600_000, to: T0 - 480_000 }));
    expect(quiet.series).toHaveLength(1);
    expect(quiet.series[0]?.counts.delivered).toEqual([0, 0]);
    expect(Object.keys(quiet.series[0]?.counts ?? {})).toEqual(['sent', 'delivered', 'arrived', 'opened', 'ignored', 'expired', 'revoked', 'failed', 'dropped']);
  });

  it('gives the same counts from the per-dimension tables as from the tables of every combination', async () => {
    const range = { app: APP, from: T0, to: T0 + 2 * 86_400_000 };
    for (const granularity of ['minute', 'hour', 'day'] as const) {
      const narrow = await timeSeries(store, parseSeriesRequest({ ...range, granularity, by: ['platform'] }));
      const wide = await timeSeries(store, parseSeriesRequest({ ...range, granularity, by: ['platform', 'channel'] }));
      const folded = new Map<string, number[]>();
      for (const s of wide.series) {
        const sums = folded.get(s.key.platform as string) ?? new Array<number>(wide.times.length).fill(0);
        (s.counts.delivered ?? []).forEach((n, i) => (sums[i] = (sums[i] ?? 0) + n));
        folded.set(s.key.platform as string, sums);
      }
      expect(new Map(narrow.series.map((s) => [s.key.platform as string, s.counts.delivered]))).toEqual(folded);

      const filtered = await timeSeries(store, parseSeriesRequest({ ...range, granularity, where: { platform: ['ios'] } }));
      const filteredWide = await timeSeries(store, parseSeriesRequest({ ...range, granularity, where: { platform: ['ios'], channel: ['socket', 'apns'] } }));
      expect(filtered.series).toEqual(filteredWide.series);
      expect(filtered.series[0]?.counts.sent?.reduce((a, b) => a + b, 0)).toBe(1);
    }
  });

  it("gives one message's series from its raw events, counting distinct event ids", async () => {
    // A row stored twice (only the ingest keeps this from happening): the raw reports count it once.
    await store.insert(EventBatch.of([{ ...(delivered[1] as TrackingEvent) }]));
    expect(await messageFunnel(store, { app: APP, message })).toMatchObject({ delivered: 4 });
    const series = await timeSeries(store, parseSeriesRequest({ app: APP, granularity: 'minute', from: T0, to: T0 + 120_000, message, kinds: ['delivered'] }));
    expect(series.series).toEqual([{ key: {}, counts: { delivered: [4, 1] } }]);
  });

  it('keeps values with quotes, tabs and newlines intact', async () => {
    const odd = "it's\t2.0\nbeta\\x";
    await store.insert(EventBatch.of([row('opened', randomUUID(), randomUUID(), T0 + 5 * 86_400_000, { appVersion: odd })]));
    const series = await timeSeries(
      store,
      parseSeriesRequest({ app: APP, granularity: 'day', from: T0 + 5 * 86_400_000, to: T0 + 6 * 86_400_000, by: ['appVersion'], where: { appVersion: [odd] } }),
    );
    expect(series.series.map((s) => s.key)).toEqual([{ appVersion: odd }]);
  });

  it('refuses malformed or oversized requests', () => {
    const bad = (value: unknown) => () => parseSeriesRequest(value);
    const base = { app: APP, granularity: 'minute', from: T0, to: T0 + 60_000 };
    expect(bad({ ...base, app: "app_x' OR 1=1" })).toThrow(ReportRequestError);
    expect(bad({ ...base, granularity: 'week' })).toThrow(/granularity/);
    expect(bad({ ...base, to: T0 })).toThrow(/after/);
    expect(bad({ ...base, to: T0 + 8 * 86_400_000 })).toThrow(/at most 10080/);
    expect(bad({ ...base, by: ['os'] })).toThrow(/by must be/);
    expect(bad({ ...base, where: { platform: [] } })).toThrow(/where.platform/);
    expect(bad({ ...base, kinds: ['clicked'] })).toThrow(/kinds/);
    expect(bad({ ...base, message: 'nope' })).toThrow(/message/);
    expect(() => parseFunnelRequest({ app: APP })).toThrow(/message/);
    expect(() => parseFunnelRequest({ app: APP, messages: [] })).toThrow(/messages/);
    expect(() => parseFunnelRequest({ app: APP, messages: ['x'] })).toThrow(/message id/);
    expect(() => parseFunnelRequest([])).toThrow(/object/);
  });
});
