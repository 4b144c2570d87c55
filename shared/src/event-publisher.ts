/**
 * Publishes tracking events a few at a time, as producers that make them in bulk should (a gateway
 * recording acks): an event is held until `maxEvents` of its app and kind are waiting (or
 * EVENT_MESSAGE_MAX_BYTES of them), or for `maxDelayMs` at most, then they go out as one message.
 * Nobody waits on it: the caller hands an event over and goes on.
 *
 * What a process holds when it dies is lost, like a publish still in flight: a producer that needs
 * an event must be able to make it again (a gateway does: the ack's inbox row stays pending, so the
 * message is sent again on the next connection and acked again). `settle()` publishes what is held
 * and waits for JetStream's answers, for a graceful stop. `publishEvents` forms the messages of a
 * known set of events the same way and waits for them (the control plane's expiry and revocation).
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { EVENT_MESSAGE_MAX_BYTES, EVENT_MESSAGE_MAX_EVENTS, eventLine, joinEventLines, type TrackingEvent } from './events.js';
import { newId } from './ids.js';
import type { Subjects } from './subjects.js';

export interface EventPublisherOptions {
  /** Events of one app and kind in one message at most (1: each event alone, as before batching). */
  maxEvents: number;
  /** Longest an event is held before it is published. */
  maxDelayMs: number;
  /** A message JetStream did not accept (its events are not published; nothing retries them here). */
  onError(error: unknown, failed: { subject: string; events: number }): void;
}

interface Held {
  lines: string[];
  /** Of the first event: a message of one event keeps its id as the stream's dedup id. */
  firstId: string;
  /** UTF-16 units: at most 3 UTF-8 bytes each, so a message stays far below JetStream's 1 MiB. */
  size: number;
}

export class EventPublisher {
  private readonly held = new Map<string, Held>();
  private heldEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private inFlightEvents = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
    private readonly options: EventPublisherOptions,
  ) {}

  /** Events handed over that JetStream has not answered for yet (held or in flight). */
  get pending(): number {
    return this.heldEvents + this.inFlightEvents;
  }

  publish(event: TrackingEvent): void {
    const subject = this.subjects.event(event.app, event.kind);
    const line = eventLine(event);
    let held = this.held.get(subject);
    if (held && held.size + line.length + 1 > EVENT_MESSAGE_MAX_BYTES) {
      this.send(subject, held);
      held = undefined;
    }
    if (!held) {
      held = { lines: [], firstId: event.id, size: 0 };
      this.held.set(subject, held);
    }
    held.lines.push(line);
    held.size += line.length + 1;
    this.heldEvents++;
    if (held.lines.length >= this.options.maxEvents) this.send(subject, held);
    else this.timer ??= setTimeout(() => this.flush(), this.options.maxDelayMs);
  }

  /** Publishes everything held, now. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [subject, held] of this.held) this.send(subject, held);
  }

  /** Publishes everything held and resolves once JetStream has answered for every event handed over. */
  async settle(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private send(subject: string, held: Held): void {
    this.held.delete(subject);
    const events = held.lines.length;
    this.heldEvents -= events;
    this.inFlightEvents += events;
    const msgID = events === 1 ? held.firstId : newId();
    const done: Promise<void> = this.js
      .publish(subject, joinEventLines(held.lines), { msgID })
      .then(
        () => undefined,
        (error: unknown) => this.options.onError(error, { subject, events }),
      )
      .finally(() => {
        this.inFlight.delete(done);
        this.inFlightEvents -= events;
      });
    this.inFlight.add(done);
  }
}

/**
 * Publishes events in as few messages as their apps and kinds allow, within the limits of events.ts,
 * and waits until JetStream has them all; rejects with the first refusal. A message of several gets
 * a dedup id of its own.
 */
export async function publishEvents(js: JetStreamClient, subjects: Subjects, events: readonly TrackingEvent[]): Promise<void> {
  const refused: unknown[] = [];
  const publisher = new EventPublisher(js, subjects, {
    maxEvents: EVENT_MESSAGE_MAX_EVENTS,
    maxDelayMs: 0,
    onError: (error) => refused.push(error),
  });
  for (const event of events) publisher.publish(event);
  await publisher.settle();
  if (refused.length > 0) throw refused[0];
}
