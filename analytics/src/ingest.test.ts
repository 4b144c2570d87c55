/**
 * The ingest against the real NATS JetStream and embedded chDB: batching by time and size, a store
 * that fails, and a process that dies between its insert and its ack.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, encodeEvent, encodeEvents, ensureEventStream, jetstreamManagerFor, type EventKind, type TrackingEvent } from '@mps/shared';
import { createTestNats, eventually, type TestNats } from '../../test/support/services.js';
import { startIngest, type Ingest, type IngestOptions } from './ingest.js';
import { ChdbStore } from './store/chdb.js';
import { AGGREGATES, aggregateColumns, MARKER_DIMENSION } from './store/aggregates.js';
import { EventBatch } from './store/batch.js';
import { Table } from './store/schema.js';
import type { EventStore, InsertOptions } from './store/store.js';

const log = createLogger('analytics-test', 'silent');

function event(app: string, kind: EventKind, overrides: Partial<TrackingEvent> = {}): TrackingEvent {
  return {
    id: randomUUID(),
    kind,
    app,
    message: randomUUID(),
    device: randomUUID(),
    channel: 'socket',
    platform: 'android',
    osVersion: '14',
    appVersion: '2.3.0',
    sdkVersion: '0.1.0',
    pushType: 'notification',
    at: Date.now(),
    ...overrides,
  };
}

/** A store whose connection fails on demand, before or after a write reached the real store. */
class FlakyStore implements EventStore {
  /** Raw inserts refused outright. */
  refuse = 0;
  /** Writes into `failAfter` that land, then report a failure (the ack was lost with the connection). */
  landThenFail = 0;
  failAfter: string = Table.EVENTS;
  /** When set, a landed write waits for this before it fails (a process stuck until it dies). */
  hold: Promise<void> | undefined;
  /** Raw rows written. */
  inserted = 0;
  constructor(private readonly real: EventStore) {}
  init = () => this.real.init();
  version = () => this.real.version();
  command = (sql: string) => this.real.command(sql);
  select = <T>(sql: string) => this.real.select<T>(sql);
  close = async () => undefined;
  async insert(batch: EventBatch, options?: InsertOptions): Promise<void> {
    if (this.refuse > 0) {
      this.refuse--;
      throw new Error('store down');
    }
    await this.real.insert(batch, options);
    this.inserted += batch.size;
    await this.landed(Table.EVENTS);
  }
  async insertRows(table: string, columns: readonly string[], tsv: Buffer): Promise<void> {
    await this.real.insertRows(table, columns, tsv);
    await this.landed(table);
  }
  private async landed(table: string): Promise<void> {
    if (this.landThenFail === 0 || table !== this.failAfter) return;
    this.landThenFail--;
    await this.hold;
    throw new Error('connection lost after the insert');
  }
}

describe('ingest from JetStream into chDB', () => {
  let nats: TestNats;
  let js: JetStreamClient;
  let dir: string;
  let store: ChdbStore;
  const running: Ingest[] = [];

  const start = async (options: Partial<IngestOptions> = {}) => {
    const ingest = await startIngest({ nc: nats.nc, js, store, subjects: nats.subjects, log, batchSize: 5000, flushMs: 1000, ackWaitMs: 2000, ...options });
    running.push(ingest);
    return ingest;
  };
  const publish = async (events: TrackingEvent[]) => {
    await Promise.all(events.map((e) => js.publish(nats.subjects.event(e.app, e.kind), encodeEvent(e), { msgID: e.id })));
  };
  /** As a batching gateway does: `per` events to a message (of one app and kind), each message with its own id. */
  const publishBatched = async (events: TrackingEvent[], per: number) => {
    for (let i = 0; i < events.length; i += per) {
      const chunk = events.slice(i, i + per);
      const first = chunk[0] as TrackingEvent;
      await js.publish(nats.subjects.event(first.app, first.kind), encodeEvents(chunk), { msgID: randomUUID() });
    }
  };
  /** A message of these lines as they are. */
  const publishLines = (app: string, lines: string[]) =>
    js.publish(nats.subjects.event(app, 'delivered'), new TextEncoder().encode(lines.join('\n')), { msgID: randomUUID() });
  /** Distinct events in `events`, and what each aggregate table counts (the per-dimension ones in total). */
  const counts = async (app: string) => {
    const [raw] = await store.select<{ ids: string }>(`SELECT uniqExact(id) AS ids FROM events WHERE app = '${app}'`);
    const sum = async (table: string, where = '') =>
      Number((await store.select<{ n: string }>(`SELECT sum(events) AS n FROM ${table} WHERE app = '${app}' ${where}`))[0]?.n);
    return {
      ids: Number(raw?.ids),
      minute: await sum('events_minute'),
      hour: await sum('events_hour'),
      minuteBy: await sum('events_minute_by', "AND dimension = ''"),
      hourBy: await sum('events_hour_by', "AND dimension = ''"),
    };
  };
  const all = (n: number) => ({ ids: n, minute: n, hour: n, minuteBy: n, hourBy: n });
  /**
   * Makes the engine refuse rows of `app` in `table` (a column whose default throws for them) until
   * the returned function is called: an insert stops there, after the tables written before it.
   */
  const refuseIn = async (table: string, app: string) => {
    await store.command(`ALTER TABLE ${table} ADD COLUMN refuse_${app} UInt8 DEFAULT throwIf(app = '${app}')`);
    return () => store.command(`ALTER TABLE ${table} DROP COLUMN refuse_${app}`);
  };
  /** Waits until every table counts `n` events of `app`, or a while (the assertion that follows says what is wrong). */
  const settled = (app: string, n: number) =>
    eventually(async () => (JSON.stringify(await counts(app)) === JSON.stringify(all(n)) ? true : undefined), 10_000).catch(() => undefined);
  const stopAll = async () => {
    for (const ingest of running.splice(0)) await ingest.stop();
  };
  /** Runs an ingest until its first failed insert, then stops it without acking (a process that died). */
  const dieAfterFailure = async (app: string, events: TrackingEvent[], send = publish) => {
    const ingest = await start({ stopGraceMs: 0 });
    await send(events);
    await eventually(async () => (ingest.stats().failedAttempts > 0 ? true : undefined), 10_000, `a failed insert for ${app}`);
    await ingest.stop();
    running.splice(running.indexOf(ingest), 1);
  };

  /** An ingest that stores the events whole, then dies (held, then stopped) before it acks them. */
  const dieAfterWriting = async (events: TrackingEvent[], send = publish) => {
    const dying = new FlakyStore(store);
    let die!: () => void;
    dying.hold = new Promise((resolve) => (die = resolve));
    dying.landThenFail = 1;
    dying.failAfter = Table.HOUR_BY;
    const first = await start({ store: dying, stopGraceMs: 0 });
    await send(events);
    await eventually(async () => (dying.inserted === events.length ? true : undefined), 5000, 'the first insert');
    const stopped = first.stop();
    die();
    await stopped;
    running.splice(running.indexOf(first), 1);
    expect(first.stats().acked).toBe(0);
  };

  beforeAll(async () => {
    nats = await createTestNats();
    js = jetstream(nats.nc);
    await ensureEventStream(await jetstreamManagerFor(nats.nc), nats.subjects);
    dir = await mkdtemp(join(tmpdir(), 'mps-ingest-'));
    store = new ChdbStore(dir);
    await store.init();
  });
  afterAll(async () => {
    for (const ingest of running) await ingest.stop();
    await nats?.cleanup();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('inserts a few events within the flush interval, and cuts big batches by size', async () => {
    const ingest = await start({ batchSize: 100 });
    const started = Date.now();
    await publish([event('app_time', 'delivered'), event('app_time', 'opened')]);
    await eventually(async () => ((await counts('app_time')).minute === 2 ? true : undefined), 5000, 'two events stored');
    expect(Date.now() - started).toBeLessThan(3000);

    const before = ingest.stats().batches;
    await publish(Array.from({ length: 250 }, () => event('app_size', 'delivered')));
    await eventually(async () => ((await counts('app_size')).ids === 250 ? true : undefined), 10_000, '250 events stored');
    expect(await counts('app_size')).toEqual(all(250));
    expect(ingest.stats().batches - before).toBe(3);
    await ingest.stop();
    running.pop();
  });

  it('skips and acks malformed events', async () => {
    const ingest = await start();
    await js.publish(nats.subjects.event('app_bad', 'delivered'), new TextEncoder().encode('{"not":"an event"}'));
    await publish([event('app_bad', 'delivered')]);
    await eventually(async () => (ingest.stats().acked === 2 ? true : undefined), 5000, 'both acked');
    expect(ingest.stats()).toMatchObject({ malformed: 1, inserted: 1 });
    expect((await counts('app_bad')).ids).toBe(1);
    await ingest.stop();
    running.pop();
  });

  it('stores an event whose JSON repeats a key (JSON.parse takes the last), by encoding it again', async () => {
    const ingest = await start();
    const e = event('app_dupkey', 'opened');
    const json = JSON.stringify(e).replace('{', `{"id":"${randomUUID()}",`);
    await js.publish(nats.subjects.event(e.app, e.kind), new TextEncoder().encode(json), { msgID: e.id });
    await eventually(async () => (ingest.stats().acked === 1 ? true : undefined), 8000, 'the event acked');
    const [stored] = await store.select<{ id: string }>(`SELECT id FROM events WHERE app = 'app_dupkey'`);
    expect(stored?.id).toBe(e.id);
    await ingest.stop();
    running.pop();
  });

  it('retries a batch the store refused or lost, and counts each event once', async () => {
    const flaky = new FlakyStore(store);
    flaky.refuse = 2;
    flaky.landThenFail = 1;
    const ingest = await start({ store: flaky });
    await publish(Array.from({ length: 40 }, () => event('app_flaky', 'arrived')));
    await eventually(async () => (ingest.stats().acked === 40 ? true : undefined), 15_000, 'the batch acked');
    // The raw events landed on the third attempt; the fourth finds them, and counts them.
    expect(ingest.stats()).toMatchObject({ failedAttempts: 3, inserted: 0, recounted: 40, duplicates: 0 });
    expect(await counts('app_flaky')).toEqual(all(40));
    await ingest.stop();
    running.pop();
  });

  it('after a process died between its writes and its acks, the redelivered events are not counted again', async () => {
    await dieAfterWriting(Array.from({ length: 30 }, () => event('app_replay', 'opened')));

    // Merged, the markers of neighbouring batches share rows: they still say which batch got where.
    for (const a of AGGREGATES) await store.command(`OPTIMIZE TABLE ${a.table} FINAL`);
    const second = await start();
    await eventually(async () => (second.stats().acked === 30 ? true : undefined), 10_000, 'the redelivered events acked');
    expect(second.stats()).toMatchObject({ inserted: 0, recounted: 0, duplicates: 30 });
    expect(await counts('app_replay')).toEqual(all(30));
  });

  it('counts in each aggregate what the views count for the same events inserted directly', async () => {
    await stopAll();
    const at = Date.UTC(2026, 10, 24, 23, 58, 30);
    const make = (app: string) =>
      Array.from({ length: 300 }, (_, i) =>
        event(app, (['sent', 'delivered', 'opened', 'failed'] as const)[i % 4] as EventKind, {
          at: at + i * 1000,
          platform: ['ios', 'android', ''][i % 3],
          appVersion: i % 7 === 0 ? "2.3\tbeta's\\x\n" : `2.${i % 5}`,
          channel: i % 2 ? 'fcm' : 'socket',
          pushType: i % 5 ? 'notification' : 'silent',
        }),
      );
    const ingest = await start();
    // Several to a message, as gateways publish them: their bytes go to the store as they are.
    const ingested = make('app_ingested');
    for (const kind of ['sent', 'delivered', 'opened', 'failed']) await publishBatched(ingested.filter((e) => e.kind === kind), 40);
    await store.insert(EventBatch.of(make('app_direct')));
    await eventually(async () => (ingest.stats().inserted === 300 ? true : undefined), 10_000, 'the events stored');
    for (const a of AGGREGATES) {
      const keys = aggregateColumns(a).filter((c) => c !== 'app' && c !== 'events' && c !== a.bucket);
      const rows = (app: string) =>
        store.select(
          `SELECT toUnixTimestamp(${a.bucket}) AS t, ${keys.join(', ')}, sum(events) AS n FROM ${a.table}
           WHERE app = '${app}' ${a.perDimension ? `AND dimension != '${MARKER_DIMENSION}'` : ''}
           GROUP BY t, ${keys.join(', ')} ORDER BY t, ${keys.join(', ')}`,
        );
      const ingested = await rows('app_ingested');
      expect(ingested.length, a.table).toBeGreaterThan(10);
      expect(ingested, a.table).toEqual(await rows('app_direct'));
    }
  });

  it('counts a redelivered batch in the aggregates its first insert did not reach, and only there', async () => {
    // Issue #7: the first insert stored the raw events, and stopped before the per-hour counts.
    await stopAll();
    const app = 'app_partial';
    const events = Array.from({ length: 30 }, (_, i) => event(app, i % 2 ? 'arrived' : 'delivered'));
    const allow = await refuseIn('events_hour', app);
    await dieAfterFailure(app, events);
    await allow();
    expect((await counts(app)).ids).toBe(30);

    const second = await start();
    await settled(app, 30);
    expect(await counts(app)).toEqual(all(30));
    expect(second.stats()).toMatchObject({ inserted: 0, recounted: 30, duplicates: 0 });
  });

  it('completes the aggregates across several interrupted deliveries of the same events', async () => {
    await stopAll();
    const app = 'app_partial2';
    const events = Array.from({ length: 30 }, (_, i) => event(app, i % 3 ? 'opened' : 'sent', { at: Date.now() - (i % 2) * 86_400_000 }));
    let allow = await refuseIn('events_hour', app);
    await dieAfterFailure(app, events);
    await allow();
    // The redelivery stops again, at another table.
    allow = await refuseIn('events_hour_by', app);
    const second = await start({ stopGraceMs: 0 });
    // (Before issue #7 was fixed, nothing came again: the first delivery was acked after its retry.)
    await eventually(async () => (second.stats().failedAttempts > 0 ? true : undefined), 5000, 'the second delivery failing').catch(() => undefined);
    await second.stop();
    running.splice(running.indexOf(second), 1);
    await allow();
    expect(await counts(app)).toEqual({ ...all(30), hourBy: 0 });

    const third = await start();
    await settled(app, 30);
    expect(await counts(app)).toEqual(all(30));
    expect(third.stats()).toMatchObject({ inserted: 0, recounted: 30, duplicates: 0 });
  });
  it('stores each event of messages that carry several once, and a message of one event alike', async () => {
    await stopAll();
    const app = 'app_batched';
    const ingest = await start();
    const events = Array.from({ length: 150 }, (_, i) => event(app, (['delivered', 'opened', 'sent'] as const)[Math.floor(i / 50)] as EventKind));
    await publishBatched(events, 50);
    const alone = event(app, 'arrived');
    await publish([alone]);
    await eventually(async () => (ingest.stats().acked === 4 ? true : undefined), 10_000, 'four messages acked');
    expect(ingest.stats()).toMatchObject({ inserted: 151, duplicates: 0, malformed: 0 });
    expect(await counts(app)).toEqual(all(151));
    const [stored] = await store.select<{ n: string; ids: string }>(`SELECT count() AS n, uniqExact(id) AS ids FROM events WHERE app = '${app}'`);
    expect([Number(stored?.n), Number(stored?.ids)]).toEqual([151, 151]);
  });

  it('skips and counts a malformed event inside a message, and stores the others of it', async () => {
    await stopAll();
    const app = 'app_batch_bad';
    const ingest = await start();
    const [good, other] = [event(app, 'delivered'), event(app, 'delivered')];
    await publishLines(app, [
      JSON.stringify(good),
      'not json',
      '{"not":"an event"}',
      JSON.stringify(event(app, 'delivered', { at: 0 })),
      JSON.stringify(event(app, 'delivered', { app: '' })),
      JSON.stringify(other),
      JSON.stringify(good),
    ]);
    await eventually(async () => (ingest.stats().acked === 1 ? true : undefined), 8000, 'the message acked');
    expect(ingest.stats()).toMatchObject({ inserted: 2, malformed: 4, duplicates: 1 });
    const stored = await store.select<{ id: string }>(`SELECT id FROM events WHERE app = '${app}' ORDER BY id`);
    expect(stored.map((r) => r.id)).toEqual([good.id, other.id].sort());
    expect(await counts(app)).toEqual(all(2));
  });

  it('does not count again the events of redelivered messages that carry several', async () => {
    await stopAll();
    const app = 'app_batch_replay';
    await dieAfterWriting(
      Array.from({ length: 30 }, () => event(app, 'opened')),
      (events) => publishBatched(events, 10),
    );
    expect(await counts(app)).toEqual(all(30));

    const second = await start();
    await eventually(async () => (second.stats().acked === 3 ? true : undefined), 10_000, 'the three redelivered messages acked');
    expect(second.stats()).toMatchObject({ inserted: 0, recounted: 0, duplicates: 30 });
    expect(await counts(app)).toEqual(all(30));
  });

  it('completes the aggregates of redelivered messages that carry several, counting each event once', async () => {
    await stopAll();
    const app = 'app_batch_partial';
    const events = Array.from({ length: 40 }, () => event(app, 'delivered'));
    const allow = await refuseIn('events_minute_by', app);
    await dieAfterFailure(app, events, (e) => publishBatched(e, 8));
    await allow();
    expect(await counts(app)).toEqual({ ...all(40), minuteBy: 0, hourBy: 0 });

    const second = await start();
    await settled(app, 40);
    expect(await counts(app)).toEqual(all(40));
    expect(second.stats()).toMatchObject({ inserted: 0, recounted: 40, duplicates: 0 });
  });
});
