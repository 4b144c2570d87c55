/** NATS connection and the JetStream resources every service relies on. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, type Consumer, type JetStreamManager, type JsMsg, type StreamConfig } from '@nats-io/jetstream';
import type { Logger } from './log.js';
import type { Subjects } from './subjects.js';

export type { NatsConnection };

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  // noAsyncTraces: a request (each API call's nonce claim is one) would otherwise build two Error
  // objects with stack traces up front, in case it fails: about a tenth of a push's CPU.
  return connect({ servers: url.split(','), name, maxReconnectAttempts: -1, noAsyncTraces: true });
}

const DAY_NS = 24 * 3600 * 1e9;

/**
 * How long each pull of a continuous consumer waits: its idle heartbeat is half of it, and two
 * missed heartbeats make it pull again. The client's default (30 s) would leave a consumer idle for
 * up to a minute after the NATS node it pulled from died; 5 s keeps a failover to seconds.
 */
const CONSUME_EXPIRES_MS = 5000;

/**
 * Hands a durable consumer's messages to `handle` in batches: one at a time when traffic is light,
 * what arrived meanwhile (up to `batch`) when it is heavy. One continuous pull: a loop of short
 * fetches can leave a message (a redelivery after a delayed nak, say) waiting for its ack wait.
 * `handle` acks or naks each message; what it leaves unanswered (it threw, say) comes back after
 * the ack wait. Should the pull end (its consumer deleted, say), it is started again.
 */
export async function consumeInBatches(
  consumer: Consumer,
  batch: number,
  handle: (messages: JsMsg[]) => Promise<void>,
  log: Logger,
): Promise<{ stop(): Promise<void> }> {
  let running = true;
  let messages = await consumer.consume({ max_messages: 2 * batch, expires: CONSUME_EXPIRES_MS });
  const loop = (async () => {
    while (running) {
      try {
        let pending: JsMsg[] = [];
        for await (const m of messages) {
          pending.push(m);
          // More already arrived: received and not yet yielded. Not getPending(): after one of the
          // client's status callbacks it counts one message too many (nats.js 3.4), and the loop
          // would hold this one until another arrives, past its ack wait when traffic is light.
          if (pending.length < batch && messages.getReceived() > messages.getProcessed()) continue;
          await handle(pending).catch((error: unknown) => log.error({ err: error }, 'batch failed; its messages will be redelivered'));
          pending = [];
          if (!running) break;
        }
      } catch (error) {
        if (running) log.warn({ err: error }, 'consumer stopped');
      }
      if (!running) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      messages = await consumer.consume({ max_messages: 2 * batch, expires: CONSUME_EXPIRES_MS }).catch((error: unknown) => {
        log.warn({ err: error }, 'consumer could not start again; retrying');
        return messages;
      });
    }
  })();
  return {
    stop: async () => {
      running = false;
      messages.stop();
      await loop;
    },
  };
}

/** Creates (or updates) the tracking-event stream. Safe to call from every process at start-up. */
export function ensureEventStream(jsm: JetStreamManager, subjects: Subjects): Promise<void> {
  return ensureStream(jsm, { name: subjects.eventStream, subjects: [subjects.allEvents], max_age: 7 * DAY_NS, duplicate_window: 2 * 60 * 1e9 });
}

/**
 * Creates (or updates) the vendor work queue: each job is taken by one sender and removed when
 * acked. Jobs outlive no message (the longest validity period is far below its age limit).
 */
export function ensureVendorStream(jsm: JetStreamManager, subjects: Subjects): Promise<void> {
  return ensureStream(jsm, {
    name: subjects.vendorStream,
    subjects: [subjects.allVendorJobs],
    retention: RetentionPolicy.Workqueue,
    max_age: 31 * DAY_NS,
    duplicate_window: 2 * 60 * 1e9,
  });
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    await jsm.streams.update(config.name, config);
  } catch (error) {
    if (!isNotFound(error)) throw error;
    await jsm.streams.add(config);
  }
}

export async function jetstreamManagerFor(nc: NatsConnection): Promise<JetStreamManager> {
  return jetstreamManager(nc);
}

function isNotFound(error: unknown): boolean {
  return error instanceof Error && /not found/i.test(error.message);
}
