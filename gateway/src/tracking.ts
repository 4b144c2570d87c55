/**
 * Turns what devices report (acks, tracking frames) and what their catch-up settled into tracking
 * events, published a few at a time without waiting on the caller's path (shared EventPublisher).
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { EventPublisher, newId, type Channel, type EventKind, type Logger, type Subjects } from '@mps/shared';
import type { Device } from './devices.js';

export interface TrackerOptions {
  /** Events of one app and kind per message at most (GATEWAY_TRACK_BATCH). */
  maxEvents: number;
  /** Longest an event is held before it is published (GATEWAY_TRACK_FLUSH_MS). */
  maxDelayMs: number;
}

export class Tracker {
  private readonly publisher: EventPublisher;

  constructor(js: JetStreamClient, subjects: Subjects, log: Logger, options: TrackerOptions) {
    this.publisher = new EventPublisher(js, subjects, {
      ...options,
      // Not retried here: the inbox rows of lost acks stay pending, so their messages are sent
      // again on the next connection and acked again.
      onError: (error, failed) => log.error({ err: error, ...failed }, 'tracking events not published'),
    });
  }

  record(kind: EventKind, device: Device, messageId: string, pushType: string, at: number = Date.now(), channel: Channel = 'socket'): void {
    this.publisher.publish({
      id: newId(),
      kind,
      app: device.app,
      message: messageId,
      device: device.id,
      channel,
      platform: device.facts.platform,
      osVersion: device.facts.osVersion,
      appVersion: device.facts.appVersion,
      sdkVersion: device.facts.sdkVersion,
      pushType,
      at,
    });
  }

  /** Publishes what is held and waits for JetStream's answers (a graceful stop). */
  settle(): Promise<void> {
    return this.publisher.settle();
  }
}
