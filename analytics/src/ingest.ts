/**
 * Moves tracking events from JetStream into the event store in batches (by size and by time).
 * JetStream is acked only after the store accepted the batch: a store outage delays, never loses,
 * and a replayed batch is harmless (rows are keyed by event id).
 */
import { AckPolicy, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { decodeEvent, EventDecodeError, type Logger, type NatsConnection, type Subjects } from '@mps/shared';
import { toRow, type EventRow, type EventStore } from './store/store.js';

export interface Ingest {
  stop(): Promise<void>;
}

export async function startIngest(deps: {
  nc: NatsConnection;
  js: JetStreamClient;
  store: EventStore;
  subjects: Subjects;
  log: Logger;
  batchSize: number;
  flushMs: number;
}): Promise<Ingest> {
  const { store, subjects, log } = deps;
  const durable = `${subjects.eventStream}_ANALYTICS`;
  const jsm = await jetstreamManager(deps.nc);
  await jsm.consumers.add(subjects.eventStream, {
    durable_name: durable,
    filter_subject: subjects.allEvents,
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 4 * deps.batchSize,
    ack_wait: 60 * 1e9,
  });
  const consumer = await deps.js.consumers.get(subjects.eventStream, durable);
  let running = true;

  const loop = (async () => {
    while (running) {
      try {
        const batch = await consumer.fetch({ max_messages: deps.batchSize, expires: deps.flushMs });
        const messages: JsMsg[] = [];
        const rows: EventRow[] = [];
        for await (const m of batch) {
          messages.push(m);
          try {
            rows.push(toRow(decodeEvent(m.data)));
          } catch (error) {
            if (!(error instanceof EventDecodeError)) throw error;
            log.warn({ err: error, seq: m.seq }, 'malformed tracking event skipped');
          }
        }
        if (messages.length === 0) continue;
        await store.insert(rows);
        for (const m of messages) m.ack();
      } catch (error) {
        if (!running) break;
        log.error({ err: error }, 'analytics batch failed; it will be redelivered');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
