/** Publishes tracking events to the JetStream event stream without waiting on the caller's path. */
import type { JetStreamClient } from '@nats-io/jetstream';
import { newId, publishEvent, type Channel, type EventKind, type Logger, type Subjects } from '@mps/shared';
import type { Device } from './devices.js';

export class Tracker {
  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
    private readonly log: Logger,
  ) {}

  /**
   * A failed publish is logged, not retried here: the inbox row stays pending, so the message is
   * redelivered on the next connection and acked again.
   */
  record(kind: EventKind, device: Device, messageId: string, pushType: string, at: number = Date.now(), channel: Channel = 'socket'): void {
    const id = newId();
    const event = {
      id,
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
    };
    publishEvent(this.js, this.subjects, event).catch((error: unknown) => {
      this.log.error({ err: error, kind, message: messageId }, 'tracking event not published');
    });
  }
}
