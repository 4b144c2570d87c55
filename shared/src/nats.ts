/** NATS connection and the JetStream resources every service relies on. */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { Subjects } from './subjects.js';

export type { NatsConnection };

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url.split(','), name, maxReconnectAttempts: -1 });
}

const DAY_NS = 24 * 3600 * 1e9;

/** Creates (or updates) the tracking-event stream. Safe to call from every process at start-up. */
export async function ensureEventStream(jsm: JetStreamManager, subjects: Subjects): Promise<void> {
  const config = {
    name: subjects.eventStream,
    subjects: [subjects.allEvents],
    max_age: 7 * DAY_NS,
    duplicate_window: 2 * 60 * 1e9,
  };
  try {
    await jsm.streams.info(subjects.eventStream);
    await jsm.streams.update(subjects.eventStream, config);
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
