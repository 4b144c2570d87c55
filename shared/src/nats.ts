/** NATS connection and the JetStream resources every service relies on. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { Subjects } from './subjects.js';

export type { NatsConnection };

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url.split(','), name, maxReconnectAttempts: -1 });
}

const DAY_NS = 24 * 3600 * 1e9;

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
