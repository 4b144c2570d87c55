/**
 * Receipt callbacks: a business server whose endpoint fails twice then recovers receives every
 * result (delivered, expired, revoked), signed; at least once, with ids to drop repeats by.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCredentialStore, verifyReceipt } from '@mps/sdk';
import type { CreatedApp, ReceiptBatch } from '@mps/control-plane';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('receipt callbacks', () => {
  let stack: TestStack;
  let app: CreatedApp;
  let server: Server;
  let url: string;
  let failuresLeft = 2;
  const calls: { status: number; signed: boolean }[] = [];
  const received: ReceiptBatch['receipts'] = [];

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('receipts');
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const signed = verifyReceipt(
          app.secret,
          { timestamp: String(req.headers['x-mps-timestamp']), signature: String(req.headers['x-mps-signature']) },
          body,
        );
        const status = failuresLeft-- > 0 ? 503 : 200;
        calls.push({ status, signed: signed && req.headers['x-mps-key'] === app.keyId });
        if (status === 200) received.push(...(JSON.parse(body) as ReceiptBatch).receipts);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/receipts`;
  });

  afterAll(async () => {
    await stack?.stop();
    await new Promise((r) => server?.close(r));
  });

  it('delivers every result once the endpoint recovers, signed with the app key', async () => {
    const api = stack.api(app);
    expect(await api.request('PUT', '/v1/receipts/callback', { url })).toEqual({ url });
    expect(await api.request('GET', '/v1/receipts/callback')).toEqual({ url });

    const device = await stack.device(app);
    const delivered = [
      await api.pushSimple({ target: { device: device.id }, title: 'one' }),
      await api.pushSimple({ target: { device: device.id }, title: 'two' }),
    ];
    await device.waitFor(2);

    const credentials = new MemoryCredentialStore();
    const away = await stack.device(app, { credentials });
    away.client.close();
    const expired = await api.pushSimple({ target: { device: away.id }, title: 'too late', ttl: 1 });
    const revoked = await api.pushSimple({ target: { device: away.id }, title: 'withdrawn' });
    await api.revoke(revoked.messageId);

    const expected = [
      ...delivered.map((d) => `${d.messageId} ${device.id} delivered`),
      `${expired.messageId} ${away.id} expired`,
      `${revoked.messageId} ${away.id} revoked`,
    ].sort();
    const unique = () => [...new Map(received.map((r) => [r.id, `${r.message} ${r.device} ${r.status}`])).values()].sort();
    await eventually(async () => (unique().length >= expected.length ? true : undefined), 30_000, 'all receipts');
    expect(unique()).toEqual(expected);
    expect(calls.filter((c) => c.status === 503)).toHaveLength(2);
    expect(calls.every((c) => c.signed)).toBe(true);
    expect(received.every((r) => r.channel === 'socket' && !Number.isNaN(Date.parse(r.at)))).toBe(true);
  });

  it('refuses a callback URL that is not http(s)', async () => {
    await expect(stack.api(app).request('PUT', '/v1/receipts/callback', { url: 'ftp://example.test/x' })).rejects.toMatchObject({
      status: 400,
      code: 'INVALID_URL',
    });
  });
});
