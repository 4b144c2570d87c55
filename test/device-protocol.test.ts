/**
 * The device protocol through the real SDKs: binding users, tokens, reports, revoke and expiry,
 * against a gateway and control plane on the real NATS and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, decodeEvents, signDeviceToken, TokenAudience, type TrackingEvent } from '@mps/shared';
import { createServer, type Socket } from 'node:net';
import { DeviceClient, DeviceClientError, MemoryCredentialStore } from '@mps/sdk';
import type { CreatedApp } from '@mps/control-plane';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';

describe('device protocol', () => {
  let stack: TestStack;
  let app: CreatedApp;
  let other: CreatedApp;

  beforeAll(async () => {
    stack = await startTestStack();
    app = await stack.createApp('main');
    other = await stack.createApp('other');
  });
  afterAll(async () => stack?.stop());

  const closeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (error: unknown) => (error instanceof DeviceClientError ? error.close?.reason : String(error)),
    );

  describe('bind', () => {
    it('binds with a business-signed token; a user push then reaches the device, an unbind stops it', async () => {
      const api = stack.api(app);
      const device = await stack.device(app);
      expect(await device.client.bind(await api.bindToken('carol'))).toBe('carol');
      const row = await stack.database.db.query('SELECT user_id FROM devices WHERE id = $1', [device.id]);
      expect(row.rows[0]).toEqual({ user_id: 'carol' });

      const pushed = await api.pushSimple({ target: { user: 'carol' }, title: 'for carol' });
      expect(pushed.targeted).toBe(1);
      expect((await device.waitFor(1))[0]).toMatchObject({ id: pushed.messageId, title: 'for carol' });

      await device.client.unbind();
      const after = await api.pushSimple({ target: { user: 'carol' }, title: 'not for this device' });
      expect(after.targeted).toBe(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(device.shown).toHaveLength(1);
    });

    const forged: [string, (device: string) => Promise<string>][] = [
      ['signed with a wrong secret', () => signDeviceToken({ keyId: app.keyId, key: { kind: 'hmac', secret: other.secret }, audience: TokenAudience.BIND, subject: 'mallory', ttlS: 60 })],
      ['signed by another app', () => stack.api(other).bindToken('mallory')],
      ['expired', () => signDeviceToken({ keyId: app.keyId, key: { kind: 'hmac', secret: app.secret }, audience: TokenAudience.BIND, subject: 'mallory', ttlS: -10 })],
      ['made for connecting, not binding', (device) => stack.api(app).connectToken(device)],
      ['for another device', () => stack.api(app).bindToken('mallory', { device: '0193e6f1-0000-7000-8000-000000000000' })],
      ['not a JWT', async () => 'not-a-token'],
      ['with an empty user id', () => signDeviceToken({ keyId: app.keyId, key: { kind: 'hmac', secret: app.secret }, audience: TokenAudience.BIND, subject: '', ttlS: 60 })],
      ['with a user id over 128 characters', () => stack.api(app).bindToken('u'.repeat(129))],
    ];
    for (const [what, token] of forged) {
      it(`refuses a bind token ${what}: the socket is closed with bind_rejected and nothing is bound`, async () => {
        const device = await stack.device(app);
        const reason = await closeOf(device.client.bind(await token(device.id)));
        expect(reason).toBe(CloseCode.BIND_REJECTED.reason);
        const row = await stack.database.db.query('SELECT user_id FROM devices WHERE id = $1', [device.id]);
        expect(row.rows[0]).toEqual({ user_id: null });
        device.client.close();
      });
    }
  });

  it('drops a connection that a gateway accepts and never answers, and tries again with backoff', async () => {
    // A stalled gateway: TCP accepted, then silence (no upgrade answer, no READY).
    const held: Socket[] = [];
    const silent = createServer((socket) => void held.push(socket)).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const { port } = silent.address() as { port: number };
    const client = new DeviceClient({ url: `ws://127.0.0.1:${port}/v1/device`, app: app.app, platform: 'android', handshakeTimeoutMs: 200, reconnect: { initialMs: 20, maxMs: 50 } });
    const codes: string[] = [];
    client.on('error', (e) => codes.push(e.code));
    void client.connect().catch(() => undefined);
    await eventually(async () => (held.length >= 3 ? true : undefined), 5000, 'three attempts');
    client.close();
    for (const socket of held) socket.destroy();
    silent.close();
    expect(codes.filter((c) => c === 'handshake_timeout').length).toBeGreaterThanOrEqual(2);
    expect(new Set(codes)).toEqual(new Set(['handshake_timeout']));
  });

  describe('offline delivery', () => {
    it('gives a user message to a device that binds later, and to the offline device when it returns', async () => {
      const api = stack.api(app);
      const credentials = new MemoryCredentialStore();
      const first = await stack.device(app, { credentials });
      await first.client.bind(await api.bindToken('dave'));
      first.client.close();

      const pushed = await api.pushSimple({ target: { user: 'dave' }, title: 'while away' });
      expect(pushed.targeted).toBe(1);

      const second = await stack.device(app);
      expect(second.shown).toHaveLength(0);
      await second.client.bind(await api.bindToken('dave'));
      expect((await second.waitFor(1))[0]?.id).toBe(pushed.messageId);

      const back = await stack.device(app, { credentials });
      expect(back.id).toBe(first.id);
      expect((await back.waitFor(1))[0]?.id).toBe(pushed.messageId);
    });

    it('never shows a message that expired while the device was offline, and reports it expired', async () => {
      const api = stack.api(app);
      const credentials = new MemoryCredentialStore();
      const device = await stack.device(app, { credentials });
      device.client.close();
      const pushed = await api.pushSimple({ target: { device: device.id }, title: 'short-lived', ttl: 1 });
      await new Promise((r) => setTimeout(r, 1500));
      const back = await stack.device(app, { credentials });
      await new Promise((r) => setTimeout(r, 300));
      expect(back.shown).toEqual([]);
      expect((await api.message(pushed.messageId)).counts).toMatchObject({ targeted: 1, expired: 1, pending: 0, delivered: 0 });
    });

    it('does not deliver a message revoked while the device was offline', async () => {
      const api = stack.api(app);
      const credentials = new MemoryCredentialStore();
      const device = await stack.device(app, { credentials });
      device.client.close();
      const pushed = await api.pushSimple({ target: { device: device.id }, title: 'withdrawn' });
      expect(await api.revoke(pushed.messageId)).toMatchObject({ id: pushed.messageId, stopped: 1 });
      const back = await stack.device(app, { credentials });
      await new Promise((r) => setTimeout(r, 300));
      expect(back.shown).toEqual([]);
      const status = await api.message(pushed.messageId);
      expect(status.counts).toMatchObject({ revoked: 1, pending: 0 });
      expect(status.revokedAt).not.toBeNull();
    });
  });

  it('shows a message delivered twice only once (the SDK drops the duplicate by id, and acks both)', async () => {
    const api = stack.api(app);
    const device = await stack.device(app);
    const pushed = await api.pushSimple({ target: { device: device.id }, title: 'once' });
    await device.waitFor(1);
    const { encodeMessage } = await import('@mps/shared');
    const again = encodeMessage({ id: pushed.messageId, pushType: 'notification', content: { title: 'once' }, expiresAt: new Date(Date.now() + 60_000) });
    stack.nats.nc.publish(stack.nats.subjects.device(app.app, device.id), again);
    stack.nats.nc.publish(stack.nats.subjects.device(app.app, device.id), again);
    await stack.nats.nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(device.shown.map((m) => m.id)).toEqual([pushed.messageId]);
  });

  it('withdraws a revoked message from a connected device that has it', async () => {
    const api = stack.api(app);
    const device = await stack.device(app);
    const pushed = await api.pushSimple({ target: { device: device.id }, title: 'oops' });
    await device.waitFor(1);
    await api.revoke(pushed.messageId);
    await eventually(async () => (device.revoked.includes(pushed.messageId) ? true : undefined), 5000, 'the revoke frame');
    expect(device.revoked).toEqual([pushed.messageId]);
  });

  it('keeps one connection per device: a second one replaces the first, which stops', async () => {
    const credentials = new MemoryCredentialStore();
    const first = await stack.device(app, { credentials });
    const reasons: (string | undefined)[] = [];
    first.client.on('error', (e) => reasons.push(e.close?.reason));
    const second = await stack.device(app, { credentials: new MemoryCredentialStore(await credentials.load()) });
    expect(second.id).toBe(first.id);
    await eventually(async () => (first.client.state === 'closed' ? true : undefined), 5000, 'the first connection to stop');
    expect(reasons).toEqual([CloseCode.REPLACED.reason]);
    const pushed = await stack.api(app).pushSimple({ target: { device: second.id }, title: 'only once' });
    expect((await second.waitFor(1))[0]?.id).toBe(pushed.messageId);
    expect(first.shown).toEqual([]);
  });

  it('shows a message again after the app handler failed on it (it was not acked)', async () => {
    const credentials = new MemoryCredentialStore();
    let failures = 1;
    const shown: string[] = [];
    const device = await stack.device(app, {
      credentials,
      onMessage: (m) => {
        if (failures-- > 0) throw new Error('app crashed while showing it');
        shown.push(m.id);
      },
    });
    const errors: string[] = [];
    device.client.on('error', (e) => errors.push(e.code));
    const pushed = await stack.api(app).pushSimple({ target: { device: device.id }, title: 'retry me' });
    await eventually(async () => (errors.includes('handler') ? true : undefined), 5000, 'the handler error');
    device.client.close();
    const again = await stack.device(app, { credentials, onMessage: (m) => void shown.push(m.id) });
    await eventually(async () => (shown.length === 1 ? true : undefined), 5000, 'the message shown on the next connection');
    expect(shown).toEqual([pushed.messageId]);
    again.client.close();
  });

  describe('connect tokens', () => {
    it('authenticates a registered device with a connect token instead of its secret', async () => {
      const api = stack.api(app);
      const credentials = new MemoryCredentialStore();
      const device = await stack.device(app, { credentials });
      device.client.close();
      const saved = await credentials.load();
      const withToken = await stack.device(app, {
        credentials: new MemoryCredentialStore({ device: device.id, secret: 'not used' }),
        connectToken: (id) => api.connectToken(id),
      });
      expect(withToken.id).toBe(saved?.device);
    });

    it('closes with token_expired for an expired connect token', async () => {
      const device = await stack.device(app);
      device.client.close();
      const reason = await closeOf(
        stack.device(app, {
          credentials: new MemoryCredentialStore({ device: device.id, secret: 'not used' }),
          connectToken: (id) => signDeviceToken({ keyId: app.keyId, key: { kind: 'hmac', secret: app.secret }, audience: TokenAudience.CONNECT, subject: id, ttlS: -5 }),
        }),
      );
      expect(reason).toBe(CloseCode.TOKEN_EXPIRED.reason);
    });

    it('closes with auth_failed for a connect token naming another device', async () => {
      const device = await stack.device(app);
      device.client.close();
      const reason = await closeOf(
        stack.device(app, {
          credentials: new MemoryCredentialStore({ device: device.id, secret: 'not used' }),
          connectToken: () => stack.api(app).connectToken('0193e6f1-0000-7000-8000-000000000000'),
        }),
      );
      expect(reason).toBe(CloseCode.AUTH_FAILED.reason);
    });
  });

  describe('device reports', () => {
    it('stores vendor tokens, tags and attributes', async () => {
      const device = await stack.device(app);
      device.client.setVendorToken('fcm', 'fcm-token-1');
      device.client.setVendorToken('fcm', 'fcm-token-2');
      device.client.setTags({ add: ['vip', 'beta', 'trial'] });
      device.client.setTags({ remove: ['trial'] });
      device.client.setAttributes({ tier: 'gold', city: 'Lisbon' });
      device.client.setAttributes({ city: null });
      const row = await eventually(async () => {
        const r = await stack.database.db.query<{ tags: string[]; attributes: object; token: string }>(
          `SELECT d.tags, d.attributes, v.token FROM devices d JOIN device_vendor_tokens v ON v.device_id = d.id
           WHERE d.id = $1 AND v.vendor = 'fcm'`,
          [device.id],
        );
        const found = r.rows[0];
        return found && found.token === 'fcm-token-2' && !('city' in found.attributes) && found.tags.length === 2 ? found : undefined;
      });
      expect(row).toEqual({ tags: ['beta', 'vip'], attributes: { tier: 'gold' }, token: 'fcm-token-2' });
    });

    it('uses a token a vendor refused again once the device reports it again', async () => {
      const device = await stack.device(app);
      const token = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2';
      const state = async () =>
        (
          await stack.database.db.query<{ dead_at: Date | null; dead_reason: string | null; updated_at: Date }>(
            `SELECT dead_at, dead_reason, updated_at FROM device_vendor_tokens WHERE device_id = $1 AND vendor = 'apns'`,
            [device.id],
          )
        ).rows[0];
      device.client.setVendorToken('apns', token);
      const stored = await eventually(state);
      // As the vendor sender marks it after APNs' 410 Unregistered (sender/src/worker.ts).
      await stack.database.db.query(
        `UPDATE device_vendor_tokens SET dead_at = now(), dead_reason = '410 Unregistered' WHERE device_id = $1 AND vendor = 'apns'`,
        [device.id],
      );
      expect((await state())?.dead_reason).toBe('410 Unregistered');
      device.client.setVendorToken('apns', token);
      const revived = await eventually(async () => {
        const s = await state();
        return s && s.dead_at === null ? s : undefined;
      });
      expect(revived.dead_reason).toBeNull();
      expect(revived.updated_at.getTime()).toBeGreaterThan(stored.updated_at.getTime());
    });

    it('closes with forbidden when the app does not let devices set tags', async () => {
      const locked = await stack.createApp('locked');
      await stack.database.db.query('UPDATE apps SET device_tags_writable = false WHERE id = $1', [locked.app]);
      const device = await stack.device(locked);
      const closed = new Promise<string | undefined>((resolve) => device.client.on('error', (e) => resolve(e.close?.reason)));
      device.client.setTags({ add: ['x'] });
      expect(await closed).toBe(CloseCode.FORBIDDEN.reason);
    });

    it('forwards arrived / opened / ignored reports to the event stream', async () => {
      const api = stack.api(app);
      const device = await stack.device(app);
      const events: TrackingEvent[] = [];
      const sub = stack.nats.nc.subscribe(`${stack.nats.prefix}.ev.${app.app}.*`, {
        // The gateway batches events (decision 25): one message may carry several.
        callback: (_, m) => {
          events.push(...decodeEvents(m.data).events);
        },
      });
      await stack.nats.nc.flush();
      const pushed = await api.pushSimple({ target: { device: device.id }, title: 'track me' });
      await device.waitFor(1);
      device.client.track(pushed.messageId, 'arrived');
      device.client.track(pushed.messageId, 'opened');
      await eventually(async () => (events.length >= 3 ? true : undefined), 5000, 'three events');
      sub.unsubscribe();
      expect(events.map((e) => e.kind).sort()).toEqual(['arrived', 'delivered', 'opened']);
      for (const e of events) {
        expect(e).toMatchObject({ app: app.app, message: pushed.messageId, device: device.id, platform: 'android', channel: 'socket' });
      }
    });
  });
});
