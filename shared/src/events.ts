/**
 * Tracking events: what happened to a message for a device. Gateways, the control plane and the
 * sender publish them to the JetStream event stream; the ledger (Postgres), receipts and analytics
 * (ClickHouse) consume them.
 *
 * A message of the stream carries one event or several: one JSON object a line, lines separated by
 * "\n" (JSON.stringify never writes a raw newline), all of the app and kind its subject names. A
 * message of one event is the event's JSON alone, so producers that publish one event at a time
 * (the sender, older gateways) and batching ones share the stream, and consumers read both.
 * Deduplication: a message's JetStream id is the event id when it carries one event, a fresh id
 * otherwise (the stream drops a re-publish of the same message); every event keeps its own id,
 * which is what analytics deduplicates by.
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
  /** Unique per event: the dedup key in ClickHouse, and the JetStream message id of a message of one event. */
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

/** Producers put at most this many events in one message (JetStream's default payload limit is 1 MiB). */
export const EVENT_MESSAGE_MAX_EVENTS = 256;
/** ...and at most this many bytes (one event alone may exceed it; devices' fields are short). */
export const EVENT_MESSAGE_MAX_BYTES = 256 * 1024;

/** One event as the stream carries it: a line of a message. */
export const eventLine = (event: TrackingEvent): string => JSON.stringify(event);

export function encodeEvent(event: TrackingEvent): Uint8Array {
  return Buffer.from(eventLine(event));
}

/** A message of these lines (`eventLine` of events of one app and kind). */
export const joinEventLines = (lines: readonly string[]): Uint8Array => Buffer.from(lines.join('\n'));

/** Several events as one message; callers keep them to one app and kind. */
export const encodeEvents = (events: readonly TrackingEvent[]): Uint8Array => joinEventLines(events.map(eventLine));

export class EventDecodeError extends Error {
  override name = 'EventDecodeError';
  readonly code = 'EVENT_MALFORMED';
}

/** A message of the stream, decoded. */
export interface DecodedEvents {
  /** The events that are valid, in the order of their lines. */
  events: TrackingEvent[];
  /** Why each line that is not an event was refused (the message's other events are kept). */
  malformed: EventDecodeError[];
  /**
   * The message is exactly `events`, one JSON object a line and nothing else: its bytes can be
   * passed on as JSON lines (analytics does, to chDB).
   */
  lines: boolean;
}

const NEWLINE = 10;

/** A message of one event or several (see above); never throws for what the message holds. */
export function decodeEvents(bytes: Uint8Array): DecodedEvents {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (bytes.indexOf(NEWLINE) >= 0) {
    // One parse for the whole message: several times cheaper than one per line.
    const all = tryParse(`[${text.replaceAll('\n', ',')}]`);
    if (Array.isArray(all)) return checked(all, true);
    // A single event written over several lines (JSON whitespace) is still one event.
    const one = tryParse(text);
    if (one !== undefined && !Array.isArray(one)) return checked([one], false);
    const result: DecodedEvents = { events: [], malformed: [], lines: false };
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        add(result, JSON.parse(line));
      } catch (cause) {
        result.malformed.push(new EventDecodeError('tracking event is not JSON', { cause }));
      }
    }
    return result;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    return { events: [], malformed: [new EventDecodeError('tracking event is not JSON', { cause })], lines: false };
  }
  return checked([value], true);
}

/** One event alone; throws EventDecodeError unless the message is exactly one valid event. */
export function decodeEvent(bytes: Uint8Array): TrackingEvent {
  const { events, malformed } = decodeEvents(bytes);
  if (malformed.length > 0) throw malformed[0] as EventDecodeError;
  if (events.length !== 1) throw new EventDecodeError(`expected one tracking event, the message holds ${events.length}`);
  return events[0] as TrackingEvent;
}

function tryParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The caller falls back to a slower reading that says which line is wrong.
    return undefined;
  }
}

function checked(values: readonly unknown[], lines: boolean): DecodedEvents {
  const result: DecodedEvents = { events: [], malformed: [], lines };
  for (const value of values) add(result, value);
  if (result.malformed.length > 0) result.lines = false;
  return result;
}

function add(result: DecodedEvents, value: unknown): void {
  if (validator.Check(value)) result.events.push(value);
  else result.malformed.push(new EventDecodeError('tracking event does not match its schema'));
}

/** Publishes one event as a message of its own (its id is the stream's dedup id). */
export function publishEvent(js: JetStreamClient, subjects: Subjects, event: TrackingEvent): Promise<unknown> {
  return js.publish(subjects.event(event.app, event.kind), encodeEvent(event), { msgID: event.id });
}
