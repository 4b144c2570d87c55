/**
 * Moves tracking events from JetStream into the event store in batches, cut by size (`batchSize`
 * events) and by time (`flushMs` after a batch's first message), with one insert in flight while the
 * next batch fills. A message of the stream carries one event or several (shared/src/events.ts): a
 * malformed event among them is skipped and counted, the others are stored, and the message is
 * acked with its batch.
 *
 * Nothing is lost: a batch is acked only after the store accepted it. While the store is down the
 * batch is retried in place (with backoff), and messages held for a third of the ack wait (a slow
 * or failing store) are marked in progress with `working()`, so the stream waits instead of replaying.
 *
 * Nothing is counted twice, and nothing stored is left uncounted: a batch is written as raw events
 * and then as counts in each aggregate table, each insert landing whole or not at all, with markers
 * that say which write reached which table (write.ts). Before writing a batch that holds a
 * redelivered message (a process died after an insert, before its ack) or that follows a failed
 * attempt (an insert may have landed before the error), the ingest asks the store which aggregates
 * already count each event, and counts it only where it is missing. Ids repeated inside a batch are
 * dropped as it fills.
 */
import { AckPolicy, jetstreamManager, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { decodeEvents, EVENT_MESSAGE_MAX_BYTES, type Logger, type NatsConnection, type Subjects, type TrackingEvent } from '@mps/shared';
import { EventBatch } from './store/batch.js';
import type { EventStore } from './store/store.js';
import { BatchIds, countedAlready, writeBatch } from './write.js';

export interface IngestStats {
  /** Events new to the store. */
  inserted: number;
  /** Events the store held already but some aggregate did not count (a write cut short), counted there. */
  recounted: number;
  /** Batches written. */
  batches: number;
  /** JetStream messages acked (each carries one event or several: inserted, known duplicates and malformed ones). */
  acked: number;
  /** Events already stored and counted (or twice in a batch), acked without writing. */
  duplicates: number;
  /** Events skipped as malformed (not JSON, not an event, out of range). */
  malformed: number;
  /** Insert attempts that failed and were retried. */
  failedAttempts: number;
}

export interface Ingest {
  stats(): IngestStats;
  /** Stops pulling, writes what is held (for at most `stopGraceMs`) and returns; the rest is redelivered later. */
  stop(): Promise<void>;
}

export interface IngestOptions {
  nc: NatsConnection;
  js: JetStreamClient;
  store: EventStore;
  subjects: Subjects;
  log: Logger;
  batchSize: number;
  flushMs: number;
  /** JetStream's redelivery timer; held messages are marked in progress at a third of it. */
  ackWaitMs?: number;
  stopGraceMs?: number;
}

const RETRY_MAX_MS = 5000;
/** What one fetch round asks for at most: messages, and bytes by the messages' recent size. */
const FETCH_MESSAGES = 10_000;
const FETCH_BYTES = 16 * 1024 * 1024;
/** A round waits this long for its messages; a NATS node that died is noticed within it. */
const FETCH_EXPIRES_MS = 5000;

/** DateTime's range, with room: an event outside it is refused here rather than by the store. */
const EARLIEST_MS = Date.UTC(2000, 0, 1);
const LATEST_MS = Date.UTC(2100, 0, 1);

class Batch {
  readonly messages: JsMsg[] = [];
  readonly events = new EventBatch();
  readonly ids = new Set<string>();
  redelivered = false;
  firstAt = 0;
  /** When its messages were last delivered or marked in progress. */
  touchedAt = 0;

  /** Keeps JetStream from redelivering messages held longer than `afterMs` (a slow or failing store). */
  keepAlive(now: number, afterMs: number): void {
    if (this.messages.length === 0 || now - this.touchedAt < afterMs) return;
    for (const m of this.messages) m.working();
    this.touchedAt = now;
  }
}

export async function startIngest(options: IngestOptions): Promise<Ingest> {
  const { store, subjects, log, batchSize, flushMs } = options;
  const ackWaitMs = options.ackWaitMs ?? 30_000;
  const durable = `${subjects.eventStream}_ANALYTICS`;
  const jsm = await jetstreamManager(options.nc);
  await jsm.consumers.add(subjects.eventStream, {
    durable_name: durable,
    filter_subject: subjects.allEvents,
    ack_policy: AckPolicy.Explicit,
    // The batch being written and the one filling.
    max_ack_pending: 2 * batchSize + 1000,
    ack_wait: ackWaitMs * 1e6,
  });
  const consumer = await options.js.consumers.get(subjects.eventStream, durable);
  const stats: IngestStats = { inserted: 0, recounted: 0, batches: 0, acked: 0, duplicates: 0, malformed: 0, failedAttempts: 0 };
  const batchIds = new BatchIds();

  let running = true;
  let stopDeadline = Infinity;
  let current = new Batch();
  let inFlight: Batch | undefined;
  let writing: Promise<void> = Promise.resolve();
  let swap: Promise<void> | undefined;
  let messages: ConsumerMessages | undefined;

  /** Why an event that matches the schema is still refused, or undefined. */
  const refusal = (event: TrackingEvent): string | undefined => {
    if (event.at < EARLIEST_MS || event.at >= LATEST_MS) return `tracking event time ${event.at} is out of range`;
    // No app has an empty id, and the aggregates' marker rows use it (store/aggregates.ts).
    if (event.app === '') return 'tracking event has no app';
    return undefined;
  };

  const add = (m: JsMsg): void => {
    if (current.messages.length === 0) current.firstAt = current.touchedAt = Date.now();
    current.messages.push(m);
    if (m.redelivered) current.redelivered = true;
    const decoded = decodeEvents(m.data);
    const problems: string[] = decoded.malformed.map((e) => e.message);
    // The message's bytes go to the store as they are unless an event of it is left out.
    let whole = decoded.lines;
    const kept: TrackingEvent[] = [];
    for (const event of decoded.events) {
      const refused = refusal(event);
      if (refused !== undefined) {
        problems.push(refused);
        whole = false;
      } else if (current.ids.has(event.id)) {
        stats.duplicates++;
        whole = false;
      } else {
        current.ids.add(event.id);
        kept.push(event);
      }
    }
    if (whole) current.events.addLines(kept, m.data);
    else for (const event of kept) current.events.add(event);
    if (problems.length > 0) {
      stats.malformed += problems.length;
      log.warn({ seq: m.seq, malformed: problems.length, kept: kept.length, reason: problems[0] }, 'malformed tracking events skipped');
    }
  };

  const write = async (batch: Batch): Promise<void> => {
    let check = batch.redelivered;
    for (let attempt = 0; ; attempt++) {
      try {
        const counted = check ? await countedAlready(store, batch.events.events) : new Map<string, number>();
        const written = await writeBatch(store, batch.events, counted, { batch: batchIds.next(), attempt });
        stats.inserted += written.inserted;
        stats.recounted += written.recounted;
        stats.duplicates += written.duplicates;
        stats.batches++;
        break;
      } catch (error) {
        stats.failedAttempts++;
        check = true;
        if (Date.now() >= stopDeadline) {
          log.warn({ err: error, events: batch.messages.length }, 'stopping with a batch not stored; JetStream will redeliver it');
          return;
        }
        if (attempt === 0 || attempt % 20 === 0) {
          log.error({ err: error, events: batch.messages.length, attempt }, 'event store insert failed; retrying the batch');
        }
        await sleep(Math.min(250 * 2 ** attempt, RETRY_MAX_MS));
      }
    }
    for (const m of batch.messages) m.ack();
    stats.acked += batch.messages.length;
  };

  /** Starts writing the filling batch once the previous write is done (one insert in flight). */
  const handOff = (): Promise<void> => {
    swap ??= (async () => {
      await writing;
      if (current.messages.length === 0) return;
      const batch = current;
      current = new Batch();
      inFlight = batch;
      writing = write(batch).finally(() => {
        inFlight = undefined;
      });
    })().finally(() => {
      swap = undefined;
    });
    return swap;
  };

  const timer = setInterval(() => {
    const now = Date.now();
    if (current.messages.length > 0 && now - current.firstAt >= flushMs) void handOff();
    inFlight?.keepAlive(now, ackWaitMs / 3);
    current.keepAlive(now, ackWaitMs / 3);
  }, Math.min(100, flushMs / 4));

  // Fetched rounds rather than one continuous pull: the client pulls on as messages arrive, read
  // or not, so only the size of a round bounds what waits in memory while a write is slow. A round
  // asks for about FETCH_BYTES, by the size of the messages of the round before (a message may carry
  // one event or hundreds).
  let messageBytes = EVENT_MESSAGE_MAX_BYTES / 4;
  const read = (async () => {
    while (running) {
      try {
        const count = Math.max(1, Math.min(batchSize, FETCH_MESSAGES, Math.floor(FETCH_BYTES / messageBytes)));
        messages = await consumer.fetch({ max_messages: count, expires: FETCH_EXPIRES_MS });
        let bytes = 0;
        let received = 0;
        for await (const m of messages) {
          bytes += m.data.byteLength;
          received++;
          add(m);
          if (current.events.size >= batchSize || current.messages.length >= batchSize) await handOff();
        }
        if (received > 0) messageBytes = Math.max(64, bytes / received);
      } catch (error) {
        if (!running) break;
        log.error({ err: error }, 'reading the event stream failed; retrying');
        await sleep(1000);
      }
    }
  })();

  return {
    stats: () => ({ ...stats }),
    stop: async () => {
      running = false;
      stopDeadline = Date.now() + (options.stopGraceMs ?? 5000);
      clearInterval(timer);
      await messages?.close();
      await read;
      await handOff();
      await writing;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
