/**
 * The proof that docs/protocol.md is enough to write a device client: ./client.ts, written from it
 * alone, registers, authenticates, binds, receives, acks and tracks against a real gateway and
 * control plane; and a real gateway closes on every device-side vector of docs/conformance as the
 * vectors say.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CreatedApp } from '@mps/control-plane';
import type { PushClient } from '@mps/sdk';
import { eventually } from '../support/services.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { decode, encode, MinimalClient, T, type MinimalClientOptions } from './client.js';

interface Close {
  code: number;
  reason: string;
}

interface Vectors {
  errors: Array<{ name: string; direction: 'client' | 'server'; hex: string; error: Close }>;
  gateway: Array<{ name: string; after: 'open' | 'ready'; hex: string; close: Close }>;
}

const vectors = JSON.parse(readFileSync(new URL('../../docs/conformance/vectors.json', import.meta.url), 'utf8')) as Vectors;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let stack: TestStack;
let app: CreatedApp;
let api: PushClient;
const clients: MinimalClient[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  app = await stack.createApp('minimal');
  api = stack.api(app);
});

afterAll(async () => {
  for (const client of clients) client.close();
  await stack?.stop();
});

function client(options: Partial<MinimalClientOptions> = {}): MinimalClient {
  const made = new MinimalClient({
    url: stack.gateway.url,
    app: app.app,
    platform: 'android',
    facts: { appVersion: '1.0.0', sdkVersion: 'minimal-0', locale: 'en-GB' },
    backoff: { initialMs: 50, maxMs: 500 },
    ...options,
  });
  clients.push(made);
  return made;
}

describe('a client written from docs/protocol.md', () => {
  it('registers, gets its id and secret once, and authenticates again with the secret', async () => {
    const first = client();
    const registered = await first.connect();
    expect(registered).toMatchObject({ t: T.READY, heartbeat: 60 });
    expect(registered.device).toMatch(UUID);
    expect(registered.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Math.abs(registered.time - Date.now())).toBeLessThan(5000);
    first.close();

    const again = client({ credentials: first.credentials });
    const ready = await again.connect();
    expect(ready).toMatchObject({ t: T.READY, device: registered.device });
    expect(ready.secret).toBeUndefined();
  });

  it('authenticates with a connect token from the business server', async () => {
    const first = client();
    const { device } = await first.connect();
    first.close();
    const withToken = client({ credentials: { device, secret: 'unused' }, connectToken: (id) => api.connectToken(id) });
    expect((await withToken.connect()).device).toBe(device);
  });

  it('binds, receives a pushed message, acks it (delivered), reports it opened and unbinds', async () => {
    const device = client();
    await device.connect();
    const id = device.deviceId as string;
    expect(await device.bind(await api.bindToken('minimal-user', { device: id }))).toBe('minimal-user');

    const opened: Array<Record<string, unknown>> = [];
    const events = stack.nats.nc.subscribe(stack.nats.subjects.event(app.app, 'opened'), {
      callback: (_, m) => void opened.push(m.json<Record<string, unknown>>()),
    });
    await stack.nats.nc.flush();

    const content = {
      title: 'Olá',
      body: 'Your order 🍕 is on its way',
      payload: { order: 42, total: 18.5, items: [{ sku: 'a-1', qty: 2 }], gift: null },
      extras: { deeplink: 'app://orders/42' },
    };
    const pushed = await api.pushSimple({ target: { user: 'minimal-user' }, ...content });
    expect(pushed.targeted).toBe(1);
    const [message] = await eventually(async () => (device.shown.length > 0 ? device.shown : undefined), 5000, 'the message');
    expect(message).toMatchObject({ t: T.MESSAGE, id: pushed.messageId, type: 'notification', ...content });
    expect(message?.exp).toBeGreaterThan(Date.now());

    const status = await eventually(
      async () => {
        const s = await api.message(pushed.messageId);
        return s.counts.delivered === 1 ? s : undefined;
      },
      5000,
      'the message delivered',
    );
    expect(status.targets).toEqual([expect.objectContaining({ device: id, status: 'delivered', channel: 'socket' })]);

    device.track(pushed.messageId, 'opened', 1_700_000_000_000);
    const [event] = await eventually(async () => (opened.length > 0 ? opened : undefined), 5000, 'the opened event');
    events.unsubscribe();
    expect(event).toMatchObject({ kind: 'opened', message: pushed.messageId, device: id, at: 1_700_000_000_000, platform: 'android' });

    expect(await device.unbind()).toBeNull();
    expect((await api.pushSimple({ target: { user: 'minimal-user' }, title: 'not for it' })).targeted).toBe(0);
  });

  it('drops a revoked message', async () => {
    const device = client();
    await device.connect();
    const pushed = await api.pushSimple({ target: { device: device.deviceId as string }, pushType: 'silent', payload: { sync: true } });
    await eventually(async () => (device.shown.length > 0 ? true : undefined), 5000, 'the message');
    await api.revoke(pushed.messageId);
    await eventually(async () => (device.revoked.includes(pushed.messageId) ? true : undefined), 5000, 'the revoke');
    expect(device.shown.map((m) => [m.id, m.type])).toEqual([[pushed.messageId, 'silent']]);
  });

  it('stops after a close that forbids retrying', async () => {
    const lost = client({ credentials: { device: '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b', secret: 'wrong' } });
    await expect(lost.connect()).rejects.toMatchObject({ code: 4006, reason: 'auth_failed' });
    await new Promise((r) => setTimeout(r, 200));
    expect(lost.closes).toEqual([[4006, 'auth_failed']]);
  });
});

/** A bare socket: sends `data` (after a READY when asked) and resolves with how the gateway closed it. */
async function closeAfter(data: Uint8Array | string, afterReady: boolean): Promise<Close> {
  const ws = new WebSocket(stack.gateway.url);
  const closed = new Promise<Close>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const ready = new Promise<void>((resolve) =>
    ws.on('message', (bytes: Buffer) => {
      if (decode(new Uint8Array(bytes))?.t === T.READY) resolve();
    }),
  );
  ws.on('error', () => undefined); // followed by 'close', which the caller awaits
  await new Promise<void>((resolve) => ws.once('open', () => resolve()));
  if (afterReady) {
    ws.send(encode({ t: T.REGISTER, v: 1, app: app.app, platform: 'web' }));
    await ready;
  }
  ws.send(data);
  return closed;
}

describe('a real gateway closes as docs/conformance/vectors.json says', () => {
  const bytes = (hex: string) => Buffer.from(hex, 'hex');

  it.each(vectors.errors.filter((v) => v.direction === 'client'))('$name', async ({ hex, error }) => {
    expect(await closeAfter(bytes(hex), false)).toEqual({ code: error.code, reason: error.reason });
  });

  it.each(vectors.gateway)('$name', async ({ hex, after, close }) => {
    expect(await closeAfter(bytes(hex), after === 'ready')).toEqual({ code: close.code, reason: close.reason });
  });

  it('a text message: 4000 bad_frame', async () => {
    expect(await closeAfter(JSON.stringify({ t: T.PING }), false)).toEqual({ code: 4000, reason: 'bad_frame' });
  });

  it('a frame over the 64 KiB limit: 4003 frame_too_large; over 4 times that: dropped, 1006', async () => {
    expect(await closeAfter(new Uint8Array(64 * 1024 + 1), true)).toEqual({ code: 4003, reason: 'frame_too_large' });
    expect(await closeAfter(new Uint8Array(4 * 64 * 1024 + 1), true)).toEqual({ code: 1006, reason: '' });
  });
});
