/**
 * Receipt callbacks: a durable consumer of the event stream POSTs each app's delivery results to
 * the URL it registered, in batches, signed with the app's HMAC key and timestamped. A failed POST
 * is retried with exponential backoff (JetStream redelivery with a delay) until the horizon, then
 * dropped and counted. Apps without a URL are acked at once; one app's failing endpoint delays only
 * its own receipts.
 */
import { AckPolicy, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import {
  consumeInBatches,
  decodeEvents,
  groupBy,
  receiptSignature,
  SignatureHeader,
  type ApiKeyLookup,
  type Db,
  type EventKind,
  type Logger,
  type NatsConnection,
  type Subjects,
  type TrackingEvent,
} from '@mps/shared';

/** The event kinds a receipt reports. */
export const RECEIPT_KINDS: ReadonlySet<EventKind> = new Set(['delivered', 'opened', 'expired', 'revoked', 'failed', 'dropped']);

const BATCH = 500;
const POST_TIMEOUT_MS = 5000;
const MAX_BACKOFF_MS = 5 * 60_000;
const CALLBACK_CACHE_MS = 10_000;

export interface Receipt {
  /** Unique per result: the business server drops repeats by it (delivery is at least once). */
  id: string;
  message: string;
  device: string;
  status: EventKind;
  channel: string;
  /** ISO time of the event. */
  at: string;
}

export interface ReceiptBatch {
  app: string;
  receipts: Receipt[];
}

interface Callback {
  url: string;
  keyId: string;
  secret: string;
}

export interface ReceiptSender {
  stop(): Promise<void>;
  /** Results given up after the horizon. */
  readonly dropped: number;
}

export async function startReceipts(deps: {
  nc: NatsConnection;
  js: JetStreamClient;
  db: Db;
  keys: ApiKeyLookup;
  subjects: Subjects;
  log: Logger;
  horizonMs: number;
}): Promise<ReceiptSender> {
  const { db, subjects, log } = deps;
  const durable = `${subjects.eventStream}_RECEIPTS`;
  const jsm = await jetstreamManager(deps.nc);
  await jsm.consumers.add(subjects.eventStream, {
    durable_name: durable,
    filter_subject: subjects.allEvents,
    ack_policy: AckPolicy.Explicit,
    ack_wait: 60 * 1e9,
    max_ack_pending: 100_000,
  });
  const consumer = await deps.js.consumers.get(subjects.eventStream, durable);
  const callbacks = new Map<string, { callback: Callback | undefined; until: number }>();
  let dropped = 0;

  /** The app's URL and the HMAC key to sign with (its oldest active one). */
  async function callbackOf(app: string): Promise<Callback | undefined> {
    const hit = callbacks.get(app);
    if (hit && hit.until > Date.now()) return hit.callback;
    const r = await db.query<{ receipt_url: string | null; key_id: string | null }>(
      `SELECT a.receipt_url,
              (SELECT k.id FROM app_keys k WHERE k.app_id = a.id AND k.kind = 'hmac' AND k.status = 'active' ORDER BY k.created_at LIMIT 1) AS key_id
       FROM apps a WHERE a.id = $1`,
      [app],
    );
    const row = r.rows[0];
    let callback: Callback | undefined;
    if (row?.receipt_url && row.key_id) {
      const key = await deps.keys.find(row.key_id);
      if (key?.kind === 'hmac') callback = { url: row.receipt_url, keyId: key.id, secret: key.secret };
    } else if (row?.receipt_url) {
      log.warn({ app }, 'receipt callback set but the app has no active HMAC key to sign with');
    }
    callbacks.set(app, { callback, until: Date.now() + CALLBACK_CACHE_MS });
    return callback;
  }

  async function post(callback: Callback, batch: ReceiptBatch): Promise<void> {
    const body = JSON.stringify(batch);
    const timestamp = String(Date.now());
    const response = await fetch(callback.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        [SignatureHeader.KEY]: callback.keyId,
        [SignatureHeader.TIMESTAMP]: timestamp,
        [SignatureHeader.SIGNATURE]: receiptSignature(callback.secret, timestamp, body),
      },
      body,
      // A redirect would turn the POST into a GET without the results: it counts as a failure.
      redirect: 'error',
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`receipt callback answered ${response.status}`);
  }

  /** `messages` carry `results` receipts of `app` that could not be posted. */
  function retryOrDrop(app: string, messages: JsMsg[], results: number, error: unknown): void {
    const oldest = Math.min(...messages.map((m) => m.info.timestampNanos / 1e6));
    if (Date.now() - oldest > deps.horizonMs) {
      dropped += results;
      log.warn({ app, results, err: error }, 'receipts dropped after the retry horizon');
      for (const m of messages) m.term();
      return;
    }
    const attempt = Math.max(...messages.map((m) => m.info.deliveryCount));
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1));
    log.info({ app, results, attempt, delay, err: error }, 'receipt callback failed; will retry');
    for (const m of messages) m.nak(delay);
  }

  /** POSTs the app's results; the error when that failed. */
  async function deliver(app: string, events: TrackingEvent[]): Promise<{ error: unknown } | undefined> {
    const callback = await callbackOf(app);
    const reported = events.filter((event) => RECEIPT_KINDS.has(event.kind));
    if (!callback || reported.length === 0) return undefined;
    try {
      await post(callback, {
        app,
        receipts: reported.map((event) => ({
          id: event.id,
          message: event.message,
          device: event.device,
          status: event.kind,
          channel: event.channel,
          at: new Date(event.at).toISOString(),
        })),
      });
      return undefined;
    } catch (error) {
      return { error };
    }
  }

  const consuming = await consumeInBatches(
    consumer,
    BATCH,
    async (messages) => {
      // A message carries events of one app (its subject's); should one carry several, it is
      // acked only when every app's POST succeeded.
      const items: { m: JsMsg; event: TrackingEvent }[] = [];
      for (const m of messages) {
        const { events, malformed } = decodeEvents(m.data);
        if (events.length === 0) {
          log.warn({ err: malformed[0], seq: m.seq }, 'malformed tracking event message dropped');
          m.term();
          continue;
        }
        if (malformed.length > 0) log.warn({ err: malformed[0], malformed: malformed.length, seq: m.seq }, 'malformed tracking events skipped');
        for (const event of events) items.push({ m, event });
      }
      const failed = new Map<JsMsg, { app: string; error: unknown }>();
      await Promise.all(
        [...groupBy(items, (i) => i.event.app)].map(async ([app, appItems]) => {
          const outcome = await deliver(app, appItems.map((i) => i.event));
          if (outcome) for (const { m } of appItems) failed.set(m, { app, error: outcome.error });
        }),
      );
      for (const m of new Set(items.map((i) => i.m))) if (!failed.has(m)) m.ack();
      for (const [app, group] of groupBy(failed, ([, f]) => f.app)) {
        const held = new Set(group.map(([m]) => m));
        const results = items.filter((i) => held.has(i.m) && i.event.app === app && RECEIPT_KINDS.has(i.event.kind)).length;
        retryOrDrop(app, [...held], results, group[0]?.[1].error);
      }
    },
    log,
  );

  return {
    get dropped() {
      return dropped;
    },
    stop: () => consuming.stop(),
  };
}
