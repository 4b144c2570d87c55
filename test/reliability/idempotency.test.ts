/**
 * Scenario 3: the same push (same business id) sent five times, one after another and all at once,
 * and the same NATS messages delivered again (a live MESSAGE republished on the device's subject, a
 * `delivered` event stored twice in the event stream): one message and one inbox row per target,
 * shown once, counted delivered once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, encodeMessage, type TrackingEvent } from '@mps/shared';
import type { CreatedApp } from '@mps/control-plane';
import type { PushClient } from '@mps/sdk';
import { eventually } from '../support/services.js';
import { startTestStack, type TestDevice, type TestStack } from '../support/stack.js';
import { record, sized } from './record.js';

const RETRIES = 5;
const BUSINESS_IDS = sized(4, 200);

let stack: TestStack;
let app: CreatedApp;
let api: PushClient;
let alone: TestDevice;
let pair: TestDevice[];
const tally = { checked: 0, lost: 0, duplicates: 0, expired: 0 };
const injected = { business_ids: 0, retries_per_business_id: RETRIES, concurrent_retries: 0, nats_messages_redelivered: 0, events_redelivered: 0 };

beforeAll(async () => {
  stack = await startTestStack();
  app = await stack.createApp('idempotency');
  api = stack.api(app);
  alone = await stack.device(app);
  pair = [await stack.device(app), await stack.device(app)];
  for (const d of pair) await d.client.bind(await api.bindToken('ida'));
});

afterAll(async () => {
  record('3-idempotency', {
    scenario: '3',
    title: 'Idempotency: one business id retried five times, NATS messages and events delivered again',
    injected,
    messages_checked: tally.checked,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: tally.expired,
    crashes: 0,
  });
  await stack?.stop();
});

const rows = async (sql: string, params: unknown[]) => Number((await stack.database.db.query<{ n: string }>(sql, params)).rows[0]?.n);

/** Counts, over every device, how often each id was shown (after a pause for stragglers). */
async function shownCounts(ids: string[], devices: TestDevice[]): Promise<void> {
  await eventually(async () => (devices.every((d) => ids.every((id) => d.shown.some((m) => m.id === id))) ? true : undefined), 15_000, 'every message shown').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 300));
  for (const d of devices) {
    for (const id of ids) {
      const n = d.shown.filter((m) => m.id === id).length;
      tally.checked += 1;
      if (n === 0) tally.lost += 1;
      if (n > 1) tally.duplicates += 1;
    }
    tally.expired += d.shown.filter((m) => m.exp <= Date.now()).length;
  }
}

describe('the same business id, five times', () => {
  it('stores and sends one message per business id for every kind of push, one after another', async () => {
    await api.putTemplate({ name: 'idem', title: 'Hello {{who}}' });
    const ids: string[] = [];
    for (let b = 0; b < BUSINESS_IDS; b++) {
      const kinds = [
        (businessId: string) => api.pushSimple({ target: { device: alone.id }, title: `simple ${b}`, businessId }),
        (businessId: string) => api.pushSimple({ target: { user: 'ida' }, title: `user ${b}`, businessId }),
        (businessId: string) => api.pushTemplate({ target: { device: alone.id }, template: 'idem', values: { who: String(b) }, businessId }),
        (businessId: string) => api.pushBroadcast({ title: `broadcast ${b}`, businessId }),
      ];
      for (const [k, push] of kinds.entries()) {
        const businessId = `order-${b}-${k}-${randomUUID()}`;
        injected.business_ids += 1;
        const answers = [];
        for (let i = 0; i < RETRIES; i++) answers.push(await push(businessId));
        expect(new Set(answers.map((a) => a.messageId)).size).toBe(1);
        expect(answers.map((a) => a.duplicate)).toEqual([false, true, true, true, true]);
        expect(await rows('SELECT count(*) AS n FROM messages WHERE app_id = $1 AND business_id = $2', [app.app, businessId])).toBe(1);
        ids.push(answers[0]!.messageId);
      }
      // A multiple push: the task and each target's message once.
      const businessId = `task-${b}-${randomUUID()}`;
      injected.business_ids += 1;
      const tasks = [];
      for (let i = 0; i < RETRIES; i++) {
        tasks.push(await api.pushMultiple({ title: 'multi {{n}}', businessId, targets: [{ device: alone.id, values: { n: String(b) } }, { user: 'ida', values: { n: String(b) } }] }));
      }
      expect(new Set(tasks.map((t) => t.taskId)).size).toBe(1);
      expect(new Set(tasks.map((t) => t.messages.map((m) => m.messageId).join()))).toHaveLength(1);
      ids.push(...tasks[0]!.messages.map((m) => m.messageId));
    }
    // One inbox row per (message, device) for the targeted ones; broadcasts keep none.
    const inbox = await stack.database.db.query<{ message_id: string; device_id: string; n: string }>(
      `SELECT message_id, device_id, count(*) AS n FROM inbox WHERE message_id = ANY($1::uuid[]) GROUP BY 1, 2 HAVING count(*) > 1`,
      [ids],
    );
    expect(inbox.rows).toEqual([]);
    await eventually(async () => (alone.shown.length >= BUSINESS_IDS * 4 ? true : undefined), 15_000, 'the lone device');
    await shownCounts(await idsFor(alone, ids), [alone]);
    for (const d of pair) await shownCounts(await idsFor(d, ids), [d]);
    expect(tally).toMatchObject({ lost: 0, duplicates: 0, expired: 0 });
  }, sized(60_000, 600_000));

  it('stores one message when the five retries arrive at the same time', async () => {
    for (let b = 0; b < BUSINESS_IDS; b++) {
      const businessId = `race-${b}-${randomUUID()}`;
      injected.business_ids += 1;
      injected.concurrent_retries += RETRIES;
      const settled = await Promise.allSettled(
        Array.from({ length: RETRIES }, () => api.pushSimple({ target: { device: alone.id }, title: `race ${b}`, businessId })),
      );
      const refused = settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
      expect(refused).toEqual([]);
      const answers = settled.map((s) => (s as PromiseFulfilledResult<{ messageId: string; duplicate: boolean }>).value);
      expect(new Set(answers.map((a) => a.messageId)).size).toBe(1);
      expect(answers.filter((a) => !a.duplicate)).toHaveLength(1);
      expect(await rows('SELECT count(*) AS n FROM messages WHERE app_id = $1 AND business_id = $2', [app.app, businessId])).toBe(1);
      expect(await rows('SELECT count(*) AS n FROM inbox WHERE message_id = $1', [answers[0]!.messageId])).toBe(1);
      await shownCounts([answers[0]!.messageId], [alone]);
    }
    expect(tally).toMatchObject({ lost: 0, duplicates: 0 });
  }, sized(60_000, 600_000));
});

describe('the same NATS message again', () => {
  it('shows a MESSAGE republished on the device subject once, and counts a delivered event stored twice once', async () => {
    const pushed = await api.pushSimple({ target: { device: alone.id }, title: 'once only' });
    await shownCounts([pushed.messageId], [alone]);
    const stored = await stack.database.db.query<{ push_type: string; content: never; expires_at: Date }>(
      'SELECT push_type, content, expires_at FROM messages WHERE id = $1',
      [pushed.messageId],
    );
    const row = stored.rows[0]!;
    const frame = encodeMessage({ id: pushed.messageId, pushType: row.push_type as never, content: row.content, expiresAt: row.expires_at });
    // What a gateway does when NATS hands it the same message again: it forwards the bytes.
    for (let i = 0; i < 3; i++) stack.nats.nc.publish(stack.nats.subjects.device(app.app, alone.id), frame);
    injected.nats_messages_redelivered += 3;
    await stack.nats.nc.flush();
    await new Promise((r) => setTimeout(r, 500));
    tally.checked += 1;
    const n = alone.shown.filter((m) => m.id === pushed.messageId).length;
    if (n > 1) tally.duplicates += 1;
    expect(n).toBe(1);

    // The delivered event once more, as a consumer that crashed before its ack would see it again.
    const status = await eventually(async () => {
      const s = await api.message(pushed.messageId);
      return s.counts.delivered === 1 ? s : undefined;
    });
    const event: TrackingEvent = {
      id: randomUUID(),
      kind: 'delivered',
      app: app.app,
      message: pushed.messageId,
      device: alone.id,
      channel: 'socket',
      platform: 'android',
      osVersion: '',
      appVersion: '',
      sdkVersion: '',
      pushType: row.push_type,
      at: Date.now(),
    };
    const js = (await import('@nats-io/jetstream')).jetstream(stack.nats.nc);
    for (let i = 0; i < 2; i++) await js.publish(stack.nats.subjects.event(app.app, 'delivered'), encodeEvent(event));
    injected.events_redelivered += 2;
    await new Promise((r) => setTimeout(r, 1000));
    const after = await api.message(pushed.messageId);
    expect(after.counts).toEqual(status.counts);
    expect(await rows(`SELECT count(*) AS n FROM inbox WHERE message_id = $1 AND status = 'delivered'`, [pushed.messageId])).toBe(1);
  });
});

/** The ids among `ids` that were addressed to this device (its inbox rows, and every broadcast). */
async function idsFor(device: TestDevice, ids: string[]): Promise<string[]> {
  const r = await stack.database.db.query<{ id: string }>(
    `SELECT m.id FROM messages m WHERE m.id = ANY($1::uuid[])
       AND (m.mode = 'broadcast' OR EXISTS (SELECT 1 FROM inbox i WHERE i.message_id = m.id AND i.device_id = $2))`,
    [ids, device.id],
  );
  return r.rows.map((row) => row.id);
}
