/**
 * The delivery ledger: consumes 'delivered' events from JetStream and marks the inbox rows, in
 * batches. Events are acked only after Postgres has the batch, so a crash replays, never loses.
 * A message may carry several events (shared/src/events.ts); a malformed one among them is skipped.
 */
import { AckPolicy, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { consumeInBatches, decodeEvents, isUuid, type Db, type Logger, type NatsConnection, type Subjects, type TrackingEvent } from '@mps/shared';

const BATCH = 500;

export interface Ledger {
  stop(): Promise<void>;
}

export async function startLedger(deps: {
  nc: NatsConnection;
  js: JetStreamClient;
  db: Db;
  subjects: Subjects;
  log: Logger;
}): Promise<Ledger> {
  const { db, subjects, log } = deps;
  const durable = `${subjects.eventStream}_LEDGER`;
  const jsm = await jetstreamManager(deps.nc);
  await jsm.consumers.add(subjects.eventStream, {
    durable_name: durable,
    filter_subject: subjects.eventsOfKind('delivered'),
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 20 * BATCH,
  });
  const consumer = await deps.js.consumers.get(subjects.eventStream, durable);
  const consuming = await consumeInBatches(
    consumer,
    BATCH,
    async (messages) => {
      const rows: TrackingEvent[] = [];
      for (const m of messages) {
        const { events, malformed } = decodeEvents(m.data);
        for (const event of events) {
          if (event.kind === 'delivered' && isUuid(event.device) && isUuid(event.message)) rows.push(event);
        }
        if (malformed.length > 0) log.warn({ err: malformed[0], malformed: malformed.length, seq: m.seq }, 'malformed delivered events skipped');
      }
      if (rows.length > 0) {
        const devicesOf = rows.map((r) => r.device);
        const messagesOf = rows.map((r) => r.message);
        // A broadcast has no inbox row: its ack moves the device's broadcast cursor forward.
        await db.query(
          `UPDATE devices d SET broadcast_cursor = v.message_id
           FROM (SELECT a.device_id, max(a.message_id::text)::uuid AS message_id
                 FROM unnest($1::uuid[], $2::uuid[]) AS a(device_id, message_id)
                 JOIN messages m ON m.id = a.message_id AND m.mode = 'broadcast'
                 GROUP BY a.device_id) v
           WHERE d.id = v.device_id AND (d.broadcast_cursor IS NULL OR d.broadcast_cursor < v.message_id)`,
          [devicesOf, messagesOf],
        );
        await db.query(
          `UPDATE inbox i SET status = 'delivered', channel = v.channel, delivered_at = v.at
           FROM (SELECT unnest($1::uuid[]) AS device_id, unnest($2::uuid[]) AS message_id,
                        unnest($3::text[]) AS channel, unnest($4::timestamptz[]) AS at) v
           WHERE i.device_id = v.device_id AND i.message_id = v.message_id AND i.status = 'pending'`,
          [devicesOf, messagesOf, rows.map((r) => r.channel), rows.map((r) => new Date(r.at))],
        );
      }
      for (const m of messages) m.ack();
    },
    log,
  );

  return {
    stop: () => consuming.stop(),
  };
}
