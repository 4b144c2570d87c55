import type { JetStreamClient } from '@nats-io/jetstream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventPublisher, publishEvents } from './event-publisher.js';
import { decodeEvents, EVENT_MESSAGE_MAX_BYTES, type TrackingEvent } from './events.js';
import { createSubjects } from './subjects.js';

const subjects = createSubjects('pub');

function event(n: number, overrides: Partial<TrackingEvent> = {}): TrackingEvent {
  return {
    id: `event-${n}`,
    kind: 'delivered',
    app: 'app_1',
    message: `message-${n}`,
    device: 'device-1',
    channel: 'socket',
    platform: 'android',
    osVersion: '14',
    appVersion: '2.3.0',
    sdkVersion: '0.1.0',
    pushType: 'notification',
    at: 1_700_000_000_000 + n,
    ...overrides,
  };
}

/** A JetStream client that records publishes and answers them when told to. */
class FakeJetStream {
  readonly published: { subject: string; events: TrackingEvent[]; msgID: string | undefined }[] = [];
  private answers: { resolve: () => void; reject: (error: Error) => void }[] = [];
  publish(subject: string, data: Uint8Array, options?: { msgID?: string }): Promise<unknown> {
    this.published.push({ subject, events: decodeEvents(data).events, msgID: options?.msgID });
    return new Promise<void>((resolve, reject) => this.answers.push({ resolve, reject }));
  }
  answerAll(error?: Error): void {
    for (const a of this.answers.splice(0)) {
      if (error) a.reject(error);
      else a.resolve();
    }
  }
}

describe('EventPublisher', () => {
  let js: FakeJetStream;
  const failures: { events: number; subject: string }[] = [];
  const publisher = (maxEvents = 4, maxDelayMs = 5) =>
    new EventPublisher(js as unknown as JetStreamClient, subjects, { maxEvents, maxDelayMs, onError: (_, failed) => failures.push(failed) });

  beforeEach(() => {
    vi.useFakeTimers();
    js = new FakeJetStream();
    failures.length = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('holds events for at most maxDelayMs, then publishes them as one message per app and kind', () => {
    const p = publisher(100, 5);
    p.publish(event(1));
    p.publish(event(2, { kind: 'opened' }));
    p.publish(event(3));
    p.publish(event(4, { app: 'app_2' }));
    vi.advanceTimersByTime(4);
    expect(js.published).toEqual([]);
    expect(p.pending).toBe(4);
    vi.advanceTimersByTime(1);
    expect(js.published.map((m) => [m.subject, m.events.map((e) => e.id)])).toEqual([
      ['pub.ev.app_1.delivered', ['event-1', 'event-3']],
      ['pub.ev.app_1.opened', ['event-2']],
      ['pub.ev.app_2.delivered', ['event-4']],
    ]);
  });

  it('publishes at once when maxEvents of one app and kind are held', () => {
    const p = publisher(3, 1000);
    for (let n = 1; n <= 7; n++) p.publish(event(n));
    expect(js.published.map((m) => m.events.length)).toEqual([3, 3]);
    vi.advanceTimersByTime(1000);
    expect(js.published.map((m) => m.events.length)).toEqual([3, 3, 1]);
  });

  it('keeps a message within EVENT_MESSAGE_MAX_BYTES', () => {
    const p = publisher(256, 1000);
    const long = 'x'.repeat(EVENT_MESSAGE_MAX_BYTES / 4);
    for (let n = 1; n <= 5; n++) p.publish(event(n, { pushType: long }));
    expect(js.published.map((m) => m.events.length)).toEqual([3]);
  });

  it('dedups by the event id a message of one event, and by a fresh id one of several', () => {
    const p = publisher(2, 5);
    p.publish(event(1));
    p.publish(event(2));
    p.publish(event(3));
    vi.advanceTimersByTime(5);
    const [several, one] = js.published;
    expect(several?.msgID).toMatch(/^[0-9a-f-]{36}$/);
    expect(one).toMatchObject({ msgID: 'event-3' });
  });

  it('settle() publishes what is held and waits until JetStream has answered for everything', async () => {
    const p = publisher(100, 60_000);
    p.publish(event(1));
    p.publish(event(2));
    let settled = false;
    const settling = p.settle().then(() => (settled = true));
    expect(js.published.map((m) => m.events.length)).toEqual([2]);
    await Promise.resolve();
    expect(settled).toBe(false);
    expect(p.pending).toBe(2);
    js.answerAll();
    await settling;
    expect(p.pending).toBe(0);
  });

  it('reports a message JetStream refused, and settles anyway', async () => {
    const p = publisher(100, 5);
    p.publish(event(1));
    p.publish(event(2));
    const settling = p.settle();
    js.answerAll(new Error('no responders'));
    await settling;
    expect(failures).toEqual([{ subject: 'pub.ev.app_1.delivered', events: 2 }]);
    expect(p.pending).toBe(0);
  });
});

describe('publishEvents', () => {
  it('publishes events in messages of one app and kind, at most 256 each, and waits for them', async () => {
    const js = new FakeJetStream();
    const events = [...Array.from({ length: 600 }, (_, n) => event(n)), event(600, { kind: 'opened' }), event(601, { app: 'app_2' }), event(602, { app: 'app_2' })];
    let done = false;
    const publishing = publishEvents(js as unknown as JetStreamClient, subjects, events).then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    js.answerAll();
    await publishing;
    expect(js.published.map((m) => [m.subject, m.events.length])).toEqual([
      ['pub.ev.app_1.delivered', 256],
      ['pub.ev.app_1.delivered', 256],
      ['pub.ev.app_1.delivered', 88],
      ['pub.ev.app_1.opened', 1],
      ['pub.ev.app_2.delivered', 2],
    ]);
    expect(js.published.flatMap((m) => m.events)).toHaveLength(events.length);
    expect(js.published[3]?.msgID).toBe('event-600');
    expect(new Set(js.published.map((m) => m.msgID)).size).toBe(5);
  });
});
