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
import { createLogger, encodeEvent, ensureEventStream, jetstreamManagerFor, type EventKind, type TrackingEvent } from '@mps/shared';
import { createTestNats, eventually, type TestNats } from '../../test/support/services.js';
import { startIngest, type Ingest, type IngestOptions } from './ingest.js';
import { ChdbStore } from './store/chdb.js';
import type { EventBatch } from './store/batch.js';
import type { EventStore } from './store/store.js';

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

/** A store that fails on demand, after or instead of the real insert. */
class FlakyStore implements EventStore {
  /** Inserts that land, then report a failure (the ack was lost with the connection). */
  landThenFail = 0;
  /** Inserts refused outright. */
  refuse = 0;
  /** When set, a landed insert waits for this before it fails (a process stuck until it dies). */
  hold: Promise<void> | undefined;
  inserted = 0;
  constructor(private readonly real: EventStore) {}
  init = () => this.real.init();
  version = () => this.real.version();
  command = (sql: string) => this.real.command(sql);
  select = <T>(sql: string) => this.real.select<T>(sql);
  close = async () => undefined;
  async insert(batch: EventBatch, attempt?: number): Promise<void> {
    if (this.refuse > 0) {
      this.refuse--;
      throw new Error('store down');
    }
    await this.real.insert(batch, attempt);
    this.inserted += batch.size;
    if (this.landThenFail > 0) {
      this.landThenFail--;
      await this.hold;
      throw new Error('connection lost after the insert');
    }
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
  const counts = async (app: string) => {
    const [raw] = await store.select<{ rows: string; ids: string }>(`SELECT count() AS rows, uniqExact(id) AS ids FROM events WHERE app = '${app}'`);
    const [minute] = await store.select<{ n: string }>(`SELECT sum(events) AS n FROM events_minute WHERE app = '${app}'`);
    const [hour] = await store.select<{ n: string }>(`SELECT sum(events) AS n FROM events_hour WHERE app = '${app}'`);
    return { rows: Number(raw?.rows), ids: Number(raw?.ids), minute: Number(minute?.n), hour: Number(hour?.n) };
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
    expect(await counts('app_size')).toEqual({ rows: 250, ids: 250, minute: 250, hour: 250 });
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
    expect(ingest.stats()).toMatchObject({ failedAttempts: 3, inserted: 0, duplicates: 40 });
    expect(await counts('app_flaky')).toEqual({ rows: 40, ids: 40, minute: 40, hour: 40 });
    await ingest.stop();
    running.pop();
  });

  it('after a process died between insert and ack, the redelivered events are not counted again', async () => {
    const dying = new FlakyStore(store);
    let die!: () => void;
    dying.hold = new Promise((resolve) => (die = resolve));
    dying.landThenFail = 1;
    const first = await start({ store: dying, stopGraceMs: 0 });
    await publish(Array.from({ length: 30 }, () => event('app_replay', 'opened')));
    await eventually(async () => (dying.inserted === 30 ? true : undefined), 5000, 'the first insert');
    const stopped = first.stop();
    die();
    await stopped;
    running.splice(running.indexOf(first), 1);
    expect(first.stats().acked).toBe(0);

    const second = await start();
    await eventually(async () => (second.stats().acked === 30 ? true : undefined), 10_000, 'the redelivered events acked');
    expect(second.stats()).toMatchObject({ inserted: 0, duplicates: 30 });
    expect(await counts('app_replay')).toEqual({ rows: 30, ids: 30, minute: 30, hour: 30 });
  });
});
