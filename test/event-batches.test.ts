/**
 * The control plane's consumers of the event stream (the delivery ledger and receipt callbacks)
 * read messages that carry several events as well as messages of one event (the sender, older
 * gateways), and a malformed line costs only itself.
 */
import { createServer, type Server } from 'node:http';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent, encodeEvents, newId, type TrackingEvent } from '@mps/shared';
import type { CreatedApp, ReceiptBatch } from '@mps/control-plane';
import { eventually, insertDevice } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('tracking events several to a message', () => {
  let stack: TestStack;
  let app: CreatedApp;
  let server: Server;
  const received: ReceiptBatch['receipts'] = [];

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('batches');
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(...(JSON.parse(body) as ReceiptBatch).receipts);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/receipts`;
    await stack.api(app).request('PUT', '/v1/receipts/callback', { url });
  });

  afterAll(async () => {
    await stack?.stop();
    await new Promise((r) => server?.close(r));
  });

  it('marks every delivered event of a message and posts a receipt for each, skipping a malformed line', async () => {
    const api = stack.api(app);
    const devices = await Promise.all(Array.from({ length: 4 }, () => insertDevice(stack.database.db, app.app)));
    const pushed = await Promise.all(devices.map((device) => api.pushSimple({ target: { device }, title: 'batched' })));
    const delivered = (i: number): TrackingEvent => ({
      id: newId(),
      kind: 'delivered',
      app: app.app,
      message: pushed[i]?.messageId as string,
      device: devices[i] as string,
      channel: 'socket',
      platform: 'android',
      osVersion: '14',
      appVersion: '1.0',
      sdkVersion: '0.1.0',
      pushType: 'notification',
      at: Date.now(),
    });
    const events = devices.map((_, i) => delivered(i));
    const js = jetstream(stack.nats.nc);
    const subject = stack.nats.subjects.event(app.app, 'delivered');
    // Three events in one message with a malformed line among them, and one alone.
    const batch = new TextDecoder().decode(encodeEvents(events.slice(0, 3))).replace('\n', '\n{"not":"an event"}\n');
    await js.publish(subject, new TextEncoder().encode(batch), { msgID: newId() });
    await js.publish(subject, encodeEvent(events[3] as TrackingEvent), { msgID: events[3]?.id });

    for (const p of pushed) {
      await eventually(async () => ((await api.message(p.messageId)).counts.delivered === 1 ? true : undefined), 10_000, `${p.messageId} delivered`);
    }
    await eventually(async () => (new Set(received.map((r) => r.id)).size >= 4 ? true : undefined), 10_000, 'four receipts');
    expect([...new Set(received.map((r) => `${r.id} ${r.message} ${r.device} ${r.status}`))].sort()).toEqual(
      events.map((e) => `${e.id} ${e.message} ${e.device} delivered`).sort(),
    );
  });
});
