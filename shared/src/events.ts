/**
 * Tracking events: what happened to a message for a device. Gateways and the control plane publish
 * them to the JetStream event stream; the ledger (Postgres) and analytics (ClickHouse) consume them.
 */
import Type, { type Static } from 'typebox';
import type { JetStreamClient } from '@nats-io/jetstream';
import { oneOf } from './schema.js';
import type { Subjects } from './subjects.js';
import { Compile } from 'typebox/compile';

/** `dropped`: the oldest of more messages than a device's inbox keeps (GATEWAY_INBOX_CAP) when it connected. */
export const EventKind = ['sent', 'delivered', 'arrived', 'opened', 'ignored', 'expired', 'revoked', 'failed', 'dropped'] as const;
export type EventKind = (typeof EventKind)[number];

export const Channel = ['socket', 'apns', 'fcm', 'huawei', 'xiaomi'] as const;
export type Channel = (typeof Channel)[number];

export const TrackingEvent = Type.Object({
  /** Unique per event: the JetStream message id and the dedup key in ClickHouse. */
  id: Type.String(),
  kind: oneOf(EventKind),
  app: Type.String(),
  message: Type.String(),
  device: Type.String(),
  channel: oneOf(Channel),
  platform: Type.String(),
  osVersion: Type.String(),
  appVersion: Type.String(),
  sdkVersion: Type.String(),
  pushType: Type.String(),
  /** Milliseconds since the epoch. */
  at: Type.Integer(),
});
export type TrackingEvent = Static<typeof TrackingEvent>;

const validator = Compile(TrackingEvent);

export function encodeEvent(event: TrackingEvent): Uint8Array {
  return Buffer.from(JSON.stringify(event));
}

export class EventDecodeError extends Error {
  override name = 'EventDecodeError';
}

export function decodeEvent(bytes: Uint8Array): TrackingEvent {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new EventDecodeError('tracking event is not JSON', { cause });
  }
  if (!validator.Check(value)) throw new EventDecodeError('tracking event does not match its schema');
  return value;
}

/** Publishes one event to the JetStream event stream (the event id is the stream's dedup id). */
export function publishEvent(js: JetStreamClient, subjects: Subjects, event: TrackingEvent): Promise<unknown> {
  return js.publish(subjects.event(event.app, event.kind), encodeEvent(event), { msgID: event.id });
}
