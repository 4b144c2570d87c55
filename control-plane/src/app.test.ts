import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, decodeServerFrame, MasterKey, SignatureHeader, type MessageFrame } from '@mps/shared';
import { buildApp } from './app.js';
import { KeyStore, type CreatedApp } from './keys.js';
import { NonceGuard } from './nonces.js';
import { createTestDatabase, createTestNats, insertDevice, type TestDatabase, type TestNats } from '../../test/support/services.js';
import { signedHeaders, signedInject } from '../../test/support/api.js';

describe('control plane API', () => {
  let database: TestDatabase;
  let nats: TestNats;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let keys: KeyStore;
  let a: CreatedApp;
  let b: CreatedApp;

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
    keys = new KeyStore(database.db, MasterKey.fromBase64(MasterKey.generate()), 0);
    a = await keys.createApp('a');
    b = await keys.createApp('b');
    app = await buildApp({
      db: database.db,
      nc: nats.nc,
      js: jetstream(nats.nc),
      subjects: nats.subjects,
      keys,
      nonces: await NonceGuard.open(nats.nc, nats.subjects),
      log: createLogger('control-plane', 'silent'),
      defaultTtlS: 3600,
      maxTtlS: 7 * 86_400,
      rateLimitPerS: 1000,
    });
  });

  afterAll(async () => {
    await app?.close();
    await nats?.cleanup();
    await database?.drop();
  });

  const as = (c: CreatedApp, extra: Partial<Parameters<typeof signedInject>[4]> = {}) => ({ keyId: c.keyId, secret: c.secret, ...extra });

  describe('signature checks', () => {
    const url = '/v1/messages/0193e6f1-0000-7000-8000-000000000000';
    const expectCode = async (promise: ReturnType<typeof signedInject>, code: string) => {
      const response = await promise;
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ error: { code, message: expect.any(String) } });
      expect(JSON.stringify(response.body)).not.toContain(a.secret);
    };

    for (const name of Object.values(SignatureHeader)) {
      it(`refuses a request without ${name}`, () =>
        expectCode(signedInject(app, 'GET', url, undefined, as(a, { override: { [name]: undefined } })), 'AUTH_MISSING_HEADER'));
    }
    it('refuses an unknown key', () =>
      expectCode(signedInject(app, 'GET', url, undefined, { keyId: 'key_nope', secret: a.secret }), 'AUTH_UNKNOWN_KEY'));
    it('refuses a wrong secret', () =>
      expectCode(signedInject(app, 'GET', url, undefined, { keyId: a.keyId, secret: b.secret }), 'AUTH_BAD_SIGNATURE'));
    it('refuses a body changed after signing', async () => {
      const device = await insertDevice(database.db, a.app);
      const signedFor = JSON.stringify({ target: { device }, title: 'x' });
      const response = await app.inject({
        method: 'POST',
        url: '/v1/push/simple',
        headers: signedHeaders('POST', '/v1/push/simple', signedFor, as(a)),
        payload: JSON.stringify({ target: { device }, title: 'y' }),
      });
      expect(response.statusCode).toBe(401);
      expect(response.json()).toMatchObject({ error: { code: 'AUTH_BAD_SIGNATURE' } });
    });
    it('refuses a timestamp outside the clock-skew window, in both directions', async () => {
      await expectCode(signedInject(app, 'GET', url, undefined, as(a, { timestamp: Date.now() - 6 * 60_000 })), 'AUTH_EXPIRED_TIMESTAMP');
      await expectCode(signedInject(app, 'GET', url, undefined, as(a, { timestamp: Date.now() + 6 * 60_000 })), 'AUTH_EXPIRED_TIMESTAMP');
    });
    it('refuses a malformed nonce or timestamp', async () => {
      await expectCode(signedInject(app, 'GET', url, undefined, as(a, { nonce: 'short' })), 'AUTH_INVALID_HEADER');
      await expectCode(signedInject(app, 'GET', url, undefined, as(a, { override: { [SignatureHeader.TIMESTAMP]: 'soon' } })), 'AUTH_INVALID_HEADER');
    });
    it('refuses a replayed nonce, across control-plane instances sharing NATS', async () => {
      const nonce = 'replay-nonce-0123456789';
      const first = await signedInject(app, 'GET', url, undefined, as(a, { nonce }));
      expect(first.status).toBe(404);
      await expectCode(signedInject(app, 'GET', url, undefined, as(a, { nonce })), 'AUTH_REPLAYED_NONCE');
      const other = await NonceGuard.open(nats.nc, nats.subjects);
      expect(await other.claim(a.keyId, nonce)).toBe(false);
      expect(await other.claim(a.keyId, 'another-nonce-0123456789')).toBe(true);
    });
    it('accepts a signed request with a query string in any order', async () => {
      const response = await signedInject(app, 'GET', `${url}?b=2&a=1`, undefined, as(a));
      expect(response.status).toBe(404);
      expect(response.body).toMatchObject({ error: { code: 'MESSAGE_NOT_FOUND' } });
    });
  });

  describe('simple push', () => {
    it('stores the message, targets the device and publishes its frame on the device subject', async () => {
      const device = await insertDevice(database.db, a.app);
      const sub = nats.nc.subscribe(nats.subjects.device(a.app, device), { max: 1 });
      await nats.nc.flush();
      const response = await signedInject(app, 'POST', '/v1/push/simple', { target: { device }, title: 'T', body: 'B', ttl: 60, extras: { k: 'v' } }, as(a));
      expect(response.status).toBe(202);
      expect(response.body).toMatchObject({ targeted: 1, duplicate: false });
      const messageId = response.body?.messageId as string;
      for await (const m of sub) {
        const frame = decodeServerFrame(m.data) as MessageFrame;
        expect(frame).toMatchObject({ id: messageId, type: 'notification', title: 'T', body: 'B', extras: { k: 'v' } });
        expect(frame.exp).toBeGreaterThan(Date.now() + 50_000);
        expect(frame.exp).toBeLessThanOrEqual(Date.now() + 60_000);
      }
      const status = await signedInject(app, 'GET', `/v1/messages/${messageId}`, undefined, as(a));
      expect(status.body).toMatchObject({
        id: messageId,
        mode: 'simple',
        counts: { targeted: 1, pending: 1, delivered: 0 },
        targets: [{ device, status: 'pending', channel: null, deliveredAt: null }],
      });
    });

    it('targets every device of a user', async () => {
      const devices = [await insertDevice(database.db, a.app, 'alice@example.com'), await insertDevice(database.db, a.app, 'alice@example.com')];
      await insertDevice(database.db, a.app, 'bob');
      await insertDevice(database.db, b.app, 'alice@example.com');
      const response = await signedInject(app, 'POST', '/v1/push/simple', { target: { user: 'alice@example.com' }, body: 'hi' }, as(a));
      expect(response).toMatchObject({ status: 202, body: { targeted: 2 } });
      const status = await signedInject(app, 'GET', `/v1/messages/${response.body?.messageId as string}`, undefined, as(a));
      expect((status.body?.targets as { device: string }[]).map((t) => t.device).sort()).toEqual([...devices].sort());
    });

    it('returns the first message for a repeated business id and sends nothing new', async () => {
      const device = await insertDevice(database.db, a.app);
      const push = { target: { device }, title: 'once', businessId: 'order-7' };
      const first = await signedInject(app, 'POST', '/v1/push/simple', push, as(a));
      const again = await signedInject(app, 'POST', '/v1/push/simple', push, as(a));
      expect(first.status).toBe(202);
      expect(again).toEqual({ status: 200, body: { messageId: first.body?.messageId, targeted: 1, duplicate: true } });
      const rows = await database.db.query('SELECT count(*)::int AS n FROM messages WHERE business_id = $1', ['order-7']);
      expect(rows.rows[0]).toEqual({ n: 1 });
    });

    it('answers pushes that arrive together (and are stored as one group) each as if it came alone', async () => {
      const devices = await Promise.all(Array.from({ length: 12 }, () => insertDevice(database.db, a.app)));
      const carol = [await insertDevice(database.db, a.app, 'carol'), await insertDevice(database.db, a.app, 'carol')];
      const unknown = ['0193e6f1-0000-7000-8000-00000000000a', '0193e6f1-0000-7000-8000-00000000000b'];
      const theirs = await insertDevice(database.db, b.app);
      const send = (c: CreatedApp, body: object) => signedInject(app, 'POST', '/v1/push/simple', body, as(c));
      const [plain, unknowns, sameId, user, other] = await Promise.all([
        Promise.all(devices.map((device, i) => send(a, { target: { device }, title: `n${i}` }))),
        Promise.all(unknown.map((device) => send(a, { target: { device }, title: 'lost' }))),
        Promise.all(Array.from({ length: 4 }, () => send(a, { target: { device: devices[0] }, title: 'once', businessId: 'group-9' }))),
        send(a, { target: { user: 'carol' }, title: 'to carol' }),
        send(a, { target: { device: theirs }, title: 'not mine' }),
      ]);
      expect(plain.map((r) => [r.status, r.body?.targeted, r.body?.duplicate])).toEqual(devices.map(() => [202, 1, false]));
      expect(unknowns.map((r) => [r.status, (r.body?.error as { code: string }).code])).toEqual(unknown.map(() => [404, 'DEVICE_NOT_FOUND']));
      expect(other).toMatchObject({ status: 404, body: { error: { code: 'DEVICE_NOT_FOUND' } } });
      expect(user).toMatchObject({ status: 202, body: { targeted: 2, duplicate: false } });
      // One of the four stores the message; the others get it back as a duplicate.
      expect(sameId.map((r) => r.status).sort()).toEqual([200, 200, 200, 202]);
      expect(new Set(sameId.map((r) => r.body?.messageId)).size).toBe(1);

      const stored = await database.db.query<{ device_id: string; title: string }>(
        `SELECT i.device_id, m.content->>'title' AS title FROM inbox i JOIN messages m ON m.id = i.message_id
          WHERE i.device_id = ANY($1::uuid[]) ORDER BY i.seq`,
        [[...devices, ...carol, theirs]],
      );
      expect(stored.rows.filter((r) => r.title.startsWith('n')).map((r) => r.device_id).sort()).toEqual([...devices].sort());
      expect(stored.rows.filter((r) => r.title === 'once')).toHaveLength(1);
      expect(stored.rows.filter((r) => r.title === 'to carol').map((r) => r.device_id).sort()).toEqual([...carol].sort());
      expect(stored.rows.filter((r) => r.device_id === theirs)).toEqual([]);
      const lost = await database.db.query(`SELECT 1 FROM messages WHERE content->>'title' IN ('lost', 'not mine')`);
      expect(lost.rowCount).toBe(0);
      const userInbox = await database.db.query('SELECT 1 FROM user_inbox WHERE app_id = $1 AND user_id = $2', [a.app, 'carol']);
      expect(userInbox.rowCount).toBe(1);
    });

    it('keeps apps apart: a key of one app cannot push to or read the other app', async () => {
      const device = await insertDevice(database.db, a.app);
      const push = await signedInject(app, 'POST', '/v1/push/simple', { target: { device }, title: 'x' }, as(b));
      expect(push).toMatchObject({ status: 404, body: { error: { code: 'DEVICE_NOT_FOUND' } } });
      const mine = await signedInject(app, 'POST', '/v1/push/simple', { target: { device }, title: 'x' }, as(a));
      const read = await signedInject(app, 'GET', `/v1/messages/${mine.body?.messageId as string}`, undefined, as(b));
      expect(read).toMatchObject({ status: 404, body: { error: { code: 'MESSAGE_NOT_FOUND' } } });
    });

    const invalid: [string, unknown, number, string][] = [
      ['both a device and a user', { target: { device: '0193e6f1-0000-7000-8000-000000000000', user: 'u' }, title: 'x' }, 400, 'INVALID_TARGET'],
      ['no target', { target: {}, title: 'x' }, 400, 'INVALID_TARGET'],
      ['a device id that is not a uuid', { target: { device: 'abc' }, title: 'x' }, 400, 'VALIDATION_FAILED'],
      ['an unknown field', { target: { user: 'u' }, title: 'x', colour: 'red' }, 400, 'VALIDATION_FAILED'],
      ['a notification without title or body', { target: { user: 'u' } }, 400, 'EMPTY_NOTIFICATION'],
      ['a ttl over the maximum', { target: { user: 'u' }, title: 'x', ttl: 8 * 86_400 }, 400, 'TTL_TOO_LONG'],
      ['a message over 4 KiB', { target: { user: 'u' }, title: 'x', payload: 'p'.repeat(5000) }, 400, 'MESSAGE_TOO_LARGE'],
      ['a body that is not JSON', '{"target":', 400, 'BAD_JSON'],
      ['an extras name over 64 characters', { target: { user: 'u' }, title: 'x', extras: { ['k'.repeat(65)]: 'v' } }, 400, 'VALIDATION_FAILED'],
      ['an empty extras name', { target: { user: 'u' }, title: 'x', extras: { '': 'v' } }, 400, 'VALIDATION_FAILED'],
      ['an unknown device', { target: { device: '0193e6f1-0000-7000-8000-000000000000' }, title: 'x' }, 404, 'DEVICE_NOT_FOUND'],
    ];
    for (const [what, body, status, code] of invalid) {
      it(`refuses ${what} with ${code} and stores nothing`, async () => {
        const before = await database.db.query('SELECT count(*)::int AS n FROM messages');
        const response = await signedInject(app, 'POST', '/v1/push/simple', body, as(a));
        expect(response).toMatchObject({ status, body: { error: { code } } });
        const after = await database.db.query('SELECT count(*)::int AS n FROM messages');
        expect(after.rows[0]).toEqual(before.rows[0]);
      });
    }
  });

  it('limits each app to its rate, with 429 RATE_LIMITED and Retry-After, leaving other apps alone', async () => {
    const slow = await keys.createApp('slow');
    await database.db.query('UPDATE apps SET rate_limit_per_s = 3 WHERE id = $1', [slow.app]);
    const url = '/v1/messages/0193e6f1-0000-7000-8000-000000000000';
    const statuses: number[] = [];
    let limited: { headers: Record<string, unknown>; body: unknown } | undefined;
    for (let i = 0; i < 5; i++) {
      const response = await app.inject({ method: 'GET', url, headers: signedHeaders('GET', url, '', as(slow)) });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) limited = { headers: response.headers, body: response.json() };
    }
    expect(statuses).toEqual([404, 404, 404, 429, 429]);
    expect(limited?.body).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringContaining('3 requests per second') } });
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThan(0);
    expect((await signedInject(app, 'GET', url, undefined, as(a))).status).toBe(404);
  });

  it('describes every /v1 route in /openapi.json, and renders it at /reference', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json() as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.0.3');
    const routes = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`));
    for (const route of ['POST /v1/push/simple', 'POST /v1/push/broadcast', 'GET /v1/messages/{id}', 'POST /v1/keys', 'PUT /v1/templates/{name}']) {
      expect(routes).toContain(route);
    }
    expect(routes.every((r) => r.includes(' /v1/'))).toBe(true);
    const page = await app.inject({ method: 'GET', url: '/reference' });
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('<code>POST /v1/push/simple</code>');
  });

  it('accepts only JSON bodies (the signature covers them): anything else is 415', async () => {
    const body = 'target=x';
    const response = await app.inject({
      method: 'POST',
      url: '/v1/push/simple',
      headers: { ...signedHeaders('POST', '/v1/push/simple', body, as(a)), 'content-type': 'text/plain' },
      payload: body,
    });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
  });

  it('answers an unknown route with a JSON 404', async () => {
    const response = await app.inject({ method: 'GET', url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'no route GET /nope' } });
  });
});
