/**
 * Vendor channels end to end: credentials through the API, then pushes that reach each vendor's
 * fake through the work queue, the sender and the real client libraries; each vendor's errors,
 * dead tokens, and retries.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { apnsClient } from '@mps/sender';
import { ChannelStore, newId } from '@mps/shared';
import { startFakeApns } from './fakes/apns.js';
import { testTls } from './fakes/tls.js';
import { ApiRequestError, type PushClient } from '@mps/sdk';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { apnsToken, appWithChannels, BUNDLE_ID, configureChannels, offlineDevice, startFakes, startTestSender, tokenState, type Fakes, type TestSender } from './support/vendors.js';

let stack: TestStack;
let fakes: Fakes;
let sender: TestSender;

beforeAll(async () => {
  stack = await startTestStack();
  fakes = await startFakes();
  sender = await startTestSender(stack, fakes);
});

afterAll(async () => {
  await sender?.stop();
  await fakes?.close();
  await stack?.stop();
});

const newApp = () => appWithChannels(stack, fakes);

const receivedBy = <T extends { token: string }>(list: T[], token: string) => list.filter((r) => r.token === token);

async function settled(api: PushClient, messageId: string, n = 1) {
  return eventually(
    async () => {
      const status = await api.message(messageId);
      const { sent, failed, skipped } = status.vendor.counts;
      return sent + failed + skipped >= n ? status : undefined;
    },
    20_000,
    `${n} vendor results for ${messageId}`,
  );
}

describe('channel credentials', () => {
  it('validates, seals and never shows a secret', async () => {
    const app = await stack.createApp();
    const api = stack.api(app);
    await configureChannels(api, fakes);
    const { channels } = await api.channels();
    expect(channels.map((c) => c.vendor)).toEqual(['apns', 'fcm', 'huawei', 'xiaomi']);
    const shown = JSON.stringify(channels);
    for (const secret of [fakes.configs.apns.auth === 'token' ? fakes.configs.apns.key : '', fakes.configs.fcm.serviceAccount.private_key, fakes.configs.huawei.clientSecret, fakes.configs.xiaomi.appSecret]) {
      expect(shown).not.toContain(secret.length > 60 ? secret.slice(30, 60) : secret);
    }
    expect(channels.find((c) => c.vendor === 'apns')?.summary).toMatchObject({ auth: 'token', bundleId: BUNDLE_ID, production: false });
    expect(channels.find((c) => c.vendor === 'fcm')?.summary).toMatchObject({ projectId: 'mps-test' });

    const stored = await stack.database.db.query<{ config_sealed: Buffer }>('SELECT config_sealed FROM app_channels WHERE app_id = $1', [app.app]);
    expect(stored.rows).toHaveLength(4);
    for (const row of stored.rows) expect(row.config_sealed.toString('latin1')).not.toContain(fakes.configs.xiaomi.appSecret);

    // Another app sees none of them.
    const other = stack.api(await stack.createApp());
    expect((await other.channels()).channels).toEqual([]);

    await api.deleteChannel('xiaomi');
    expect((await api.channels()).channels.map((c) => c.vendor)).toEqual(['apns', 'fcm', 'huawei']);
    await expect(api.deleteChannel('xiaomi')).rejects.toMatchObject({ status: 404, code: 'CHANNEL_NOT_FOUND' });
  });

  it('refuses bad credentials with the field at fault, changing nothing', async () => {
    const app = await stack.createApp();
    const api = stack.api(app);
    const apns = fakes.configs.apns;
    const cases: [string, unknown, string][] = [
      ['apns', { ...apns, key: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----' }, 'key'],
      ['apns', { ...apns, keyId: 'short' }, 'keyId'],
      ['apns', { auth: 'certificate', bundleId: BUNDLE_ID, production: true }, 'cert'],
      ['fcm', { serviceAccount: { ...fakes.configs.fcm.serviceAccount, private_key: 'nope' } }, 'serviceAccount.private_key'],
      ['huawei', { appId: 'abc', clientSecret: 'long-enough-secret' }, 'appId'],
      ['xiaomi', { appSecret: 'long-enough-secret', packageName: 'no dots' }, 'packageName'],
      ['xiaomi', { appSecret: 'long-enough-secret', packageName: 'com.example.app', extra: 1 }, 'body'],
    ];
    for (const [vendor, config, field] of cases) {
      const response = await api.request('PUT', `/v1/channels/${vendor}`, config).catch((error: unknown) => error);
      expect(response, `${vendor} ${field}`).toBeInstanceOf(ApiRequestError);
      expect(response).toMatchObject({ status: 400, code: 'INVALID_CHANNEL' });
      expect((response as Error).message.startsWith(field === 'body' ? '' : field)).toBe(true);
    }
    await expect(api.request('PUT', '/v1/channels/sms', {})).rejects.toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    expect((await api.channels()).channels).toEqual([]);
  });
});

describe('APNs', () => {
  it('sends an alert with the vendor fields, and a silent push as background', async () => {
    const { app, api } = await newApp();
    const token = apnsToken();
    const device = await offlineDevice(stack.database.db, app.app, 'ios', { apns: token });
    const alert = await api.pushSimple({
      target: { device },
      title: 'Hello',
      body: 'from mps',
      extras: { order: '42' },
      payload: { deep: 'link' },
      ttl: 600,
      vendor: { apns: { priority: 5, collapseId: 'orders', threadId: 't1', sound: 'ping.caf', badge: 3, mutableContent: true } },
    });
    const status = await settled(api, alert.messageId);
    expect(status.vendor.sends).toEqual([expect.objectContaining({ device, vendor: 'apns', status: 'sent', attempts: 1 })]);
    const [got] = receivedBy(fakes.apns.received, token);
    expect(got?.headers).toMatchObject({ 'apns-topic': BUNDLE_ID, 'apns-push-type': 'alert', 'apns-priority': '5', 'apns-collapse-id': 'orders', 'apns-id': alert.messageId });
    expect(Number(got?.headers['apns-expiration'])).toBeGreaterThan(Date.now() / 1000 + 500);
    expect(got?.body).toMatchObject({
      aps: { alert: { title: 'Hello', body: 'from mps' }, sound: 'ping.caf', badge: 3, 'thread-id': 't1', 'mutable-content': 1 },
      order: '42',
      mps_id: alert.messageId,
      mps_payload: JSON.stringify({ deep: 'link' }),
    });

    const silent = await api.pushSimple({ target: { device }, pushType: 'silent', payload: { sync: true } });
    await settled(api, silent.messageId);
    const background = receivedBy(fakes.apns.received, token).find((r) => r.body.mps_id === silent.messageId);
    expect(background?.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5' });
    expect(background?.body.aps).toEqual({ 'content-available': 1 });
  });

  it('marks Unregistered and BadDeviceToken tokens dead, and uses them again only once replaced', async () => {
    const { app, api } = await newApp();
    const gone = apnsToken();
    const bad = apnsToken();
    const a = await offlineDevice(stack.database.db, app.app, 'ios', { apns: gone });
    const b = await offlineDevice(stack.database.db, app.app, 'ios', { apns: bad });
    fakes.apns.answer({ token: gone, reason: 'Unregistered' });
    fakes.apns.answer({ token: bad, reason: 'BadDeviceToken' });
    const first = await api.pushSimple({ target: { device: a }, title: 'one' });
    const second = await api.pushSimple({ target: { device: b }, title: 'one' });
    expect((await settled(api, first.messageId)).vendor.sends[0]).toMatchObject({ status: 'failed', reason: expect.stringContaining('Unregistered') });
    expect((await settled(api, second.messageId)).vendor.sends[0]).toMatchObject({ status: 'failed', reason: expect.stringContaining('BadDeviceToken') });
    expect((await tokenState(stack.database.db, a, 'apns'))?.dead_at).toBeInstanceOf(Date);
    expect((await tokenState(stack.database.db, b, 'apns'))?.dead_reason).toContain('BadDeviceToken');

    // A dead token is not tried again: nothing reaches the vendor, nothing is recorded.
    const requests = fakes.apns.requests;
    const third = await api.pushSimple({ target: { device: a }, title: 'two' });
    await new Promise((r) => setTimeout(r, 1500));
    expect(fakes.apns.requests).toBe(requests);
    expect((await api.message(third.messageId)).vendor.sends).toEqual([]);

    // The device reports a new token (as the gateway stores it): it is used again.
    const fresh = apnsToken();
    await stack.database.db.query(
      `UPDATE device_vendor_tokens SET token = $2, dead_at = NULL, dead_reason = NULL WHERE device_id = $1 AND vendor = 'apns'`,
      [a, fresh],
    );
    const fourth = await api.pushSimple({ target: { device: a }, title: 'three' });
    expect((await settled(api, fourth.messageId)).vendor.sends[0]?.status).toBe('sent');
    expect(receivedBy(fakes.apns.received, fresh)).toHaveLength(1);
  });

  it('retries TooManyRequests after the sender\'s backoff, not at once', async () => {
    const { app, api } = await newApp();
    const token = apnsToken();
    const device = await offlineDevice(stack.database.db, app.app, 'ios', { apns: token });
    fakes.apns.answer({ token, reason: 'TooManyRequests', times: 1 });
    const accepted = await api.pushSimple({ target: { device }, title: 'eventually' });
    const status = await settled(api, accepted.messageId);
    expect(status.vendor.sends[0]).toMatchObject({ status: 'sent', attempts: 2 });
    const [refused] = receivedBy(fakes.apns.refused, token);
    const [got] = receivedBy(fakes.apns.received, token);
    expect(receivedBy(fakes.apns.refused, token)).toHaveLength(1);
    expect(receivedBy(fakes.apns.received, token)).toHaveLength(1);
    // The first backoff is a second (node-apn on its own would have tried again within milliseconds).
    expect((got?.at ?? 0) - (refused?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('after a GOAWAY racing its streams, reports what APNs took as sent and only the rest for a retry', async () => {
    const opened = await new ChannelStore(stack.database.db, stack.masterKey).open((await newApp()).app.app, 'apns');
    if (!opened) throw new Error('the saved channel did not open');
    const client = apnsClient('goaway', opened.config, fakes.endpoints);
    const message = () => ({ id: newId(), pushType: 'notification' as const, content: { title: 'bye' }, expiresAt: new Date(Date.now() + 60_000), options: {} });
    try {
      await client.send(message(), [apnsToken()]);
      const tokens = Array.from({ length: 300 }, apnsToken);
      const before = fakes.apns.received.length;
      fakes.apns.goaway(100);
      const results = await client.send(message(), tokens);
      const taken = new Set(fakes.apns.received.slice(before).map((r) => r.token));
      // The fake answers every stream before the GOAWAY's last one, then closes (a second GOAWAY).
      expect(taken.size).toBe(99);
      expect(tokens.filter((t, i) => taken.has(t) !== (results[i]?.status === 'sent'))).toEqual([]);
      expect(new Set(results.map((r) => r.status))).toEqual(new Set(['sent', 'retry']));
    } finally {
      await client.close();
    }
  });

  it('authenticates with a client certificate when the app saved one', async () => {
    const tls = await testTls();
    const certFake = await startFakeApns({ tls, auth: { kind: 'certificate', ca: tls.ca }, topic: BUNDLE_ID });
    try {
      const app = await stack.createApp();
      const api = stack.api(app);
      const saved = await api.setChannel('apns', { auth: 'certificate', cert: tls.clientCert, key: tls.clientKey, bundleId: BUNDLE_ID, production: true });
      expect(saved.summary).toMatchObject({ auth: 'certificate', production: true, fingerprint: expect.stringMatching(/^[0-9A-F:]+$/) });
      // A key of another certificate is refused when saved.
      const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
      await expect(api.setChannel('apns', { auth: 'certificate', cert: tls.clientCert, key: String(otherKey), bundleId: BUNDLE_ID, production: true })).rejects.toMatchObject({
        status: 400,
        code: 'INVALID_CHANNEL',
      });
      // The client the sender builds from the saved credentials, pointed at the certificate-checking fake.
      const opened = await new ChannelStore(stack.database.db, stack.masterKey).open(app.app, 'apns');
      if (!opened) throw new Error('the saved channel did not open');
      const client = apnsClient(app.app, opened.config, { ...fakes.endpoints, apnsOrigin: certFake.origin });
      const token = apnsToken();
      const results = await client.send({ id: newId(), pushType: 'notification', content: { title: 'cert' }, expiresAt: new Date(Date.now() + 60_000), options: {} }, [token]);
      await client.close();
      expect(results).toEqual([{ status: 'sent' }]);
      expect(certFake.received.map((r) => r.token)).toEqual([token]);
      expect(certFake.received[0]?.headers.authorization).toBeUndefined();
    } finally {
      await certFake.close();
    }
  });
});

describe('FCM', () => {
  it('sends notification and data messages through firebase-admin', async () => {
    const { app, api } = await newApp();
    const device = await offlineDevice(stack.database.db, app.app, 'android', { fcm: 'fcm-token-happy' });
    const accepted = await api.pushSimple({
      target: { device },
      title: 'Hi',
      body: 'there',
      extras: { k: 'v' },
      ttl: 120,
      vendor: { android: { channelId: 'orders', priority: 'high', collapseKey: 'c1' } },
    });
    expect((await settled(api, accepted.messageId)).vendor.sends[0]).toMatchObject({ vendor: 'fcm', status: 'sent' });
    const [got] = receivedBy(fakes.fcm.received, 'fcm-token-happy');
    expect(got?.body.message).toMatchObject({
      token: 'fcm-token-happy',
      notification: { title: 'Hi', body: 'there' },
      data: { k: 'v', mps_id: accepted.messageId },
      android: { priority: 'high', collapse_key: 'c1', notification: { channel_id: 'orders', tag: accepted.messageId } },
    });
    const ttl = Number(String((got?.body.message.android as { ttl: string }).ttl).replace('s', ''));
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(fakes.fcm.tokenRequests.length).toBeGreaterThan(0);

    const silent = await api.pushSimple({ target: { device }, pushType: 'silent', payload: [1, 2] });
    await settled(api, silent.messageId);
    const data = receivedBy(fakes.fcm.received, 'fcm-token-happy').find((r) => (r.body.message.data as Record<string, string>).mps_id === silent.messageId);
    expect(data?.body.message.notification).toBeUndefined();
    expect(data?.body.message).toMatchObject({ data: { mps_payload: '[1,2]' }, android: { priority: 'normal' } });
  });

  it('kills UNREGISTERED and invalid tokens, retries UNAVAILABLE', async () => {
    const { app, api } = await newApp();
    const gone = await offlineDevice(stack.database.db, app.app, 'android', { fcm: 'fcm-gone' });
    const invalid = await offlineDevice(stack.database.db, app.app, 'android', { fcm: 'fcm-invalid' });
    const busy = await offlineDevice(stack.database.db, app.app, 'android', { fcm: 'fcm-busy' });
    fakes.fcm.answer({ token: 'fcm-gone', error: 'UNREGISTERED' });
    fakes.fcm.answer({ token: 'fcm-invalid', error: 'INVALID_ARGUMENT' });
    // firebase-admin retries a 503 itself (honouring Retry-After) before the sender sees it.
    fakes.fcm.answer({ token: 'fcm-busy', error: 'UNAVAILABLE', retryAfter: 1, times: 2 });
    const [a, b, c] = await Promise.all(
      [gone, invalid, busy].map((device) => api.pushSimple({ target: { device }, title: 'x' })),
    );
    expect((await settled(api, (a as { messageId: string }).messageId)).vendor.sends[0]?.reason).toContain('registration-token-not-registered');
    expect((await settled(api, (b as { messageId: string }).messageId)).vendor.sends[0]?.status).toBe('failed');
    expect((await settled(api, (c as { messageId: string }).messageId)).vendor.sends[0]?.status).toBe('sent');
    expect((await tokenState(stack.database.db, gone, 'fcm'))?.dead_at).toBeInstanceOf(Date);
    expect((await tokenState(stack.database.db, invalid, 'fcm'))?.dead_at).toBeInstanceOf(Date);
    expect((await tokenState(stack.database.db, busy, 'fcm'))?.dead_at).toBeNull();
  });
});

describe('Huawei', () => {
  it('sends with category and importance, and learns illegal tokens from a partial success', async () => {
    const { app, api } = await newApp();
    const good = await offlineDevice(stack.database.db, app.app, 'android', { huawei: 'hw-good', fcm: 'fcm-not-used' }, 'hw-user');
    const bad = await offlineDevice(stack.database.db, app.app, 'harmony', { huawei: 'hw-bad' }, 'hw-user');
    fakes.huawei.answer({ token: 'hw-bad' });
    const accepted = await api.pushSimple({
      target: { user: 'hw-user' },
      title: 'Order',
      body: 'shipped',
      vendor: { android: { category: 'EXPRESS', importance: 'normal', channelId: 'orders' } },
    });
    const status = await settled(api, accepted.messageId, 2);
    const byDevice = new Map(status.vendor.sends.map((s) => [s.device, s]));
    expect(byDevice.get(good)).toMatchObject({ vendor: 'huawei', status: 'sent' });
    expect(byDevice.get(bad)).toMatchObject({ vendor: 'huawei', status: 'failed' });
    expect((await tokenState(stack.database.db, bad, 'huawei'))?.dead_at).toBeInstanceOf(Date);
    const [got] = receivedBy(fakes.huawei.received, 'hw-good');
    expect(got?.body.message).toMatchObject({
      android: { category: 'EXPRESS', urgency: 'HIGH', notification: { title: 'Order', body: 'shipped', importance: 'NORMAL', channel_id: 'orders', click_action: { type: 3 } } },
    });
    expect(JSON.parse(got?.body.message.data as string)).toMatchObject({ mps_id: accepted.messageId });
    expect(receivedBy(fakes.fcm.received, 'fcm-not-used')).toEqual([]);
  });

  it('refreshes an expired OAuth token once, and retries traffic control (503)', async () => {
    const { app, api } = await newApp();
    const device = await offlineDevice(stack.database.db, app.app, 'android', { huawei: 'hw-retry' });
    const warm = await api.pushSimple({ target: { device }, title: 'warm' });
    await settled(api, warm.messageId);
    const tokens = fakes.huawei.tokenRequests.length;
    fakes.huawei.expireTokens();
    const refreshed = await api.pushSimple({ target: { device }, title: 'after expiry' });
    expect((await settled(api, refreshed.messageId)).vendor.sends[0]).toMatchObject({ status: 'sent', attempts: 1 });
    expect(fakes.huawei.tokenRequests.length).toBe(tokens + 1);

    // A request whose every token is illegal (80300007).
    const lone = await offlineDevice(stack.database.db, app.app, 'android', { huawei: 'hw-lone-bad' });
    fakes.huawei.answer({ token: 'hw-lone-bad' });
    const refused = await api.pushSimple({ target: { device: lone }, title: 'nobody' });
    expect((await settled(api, refused.messageId)).vendor.sends[0]?.reason).toContain('80300007');
    expect((await tokenState(stack.database.db, lone, 'huawei'))?.dead_at).toBeInstanceOf(Date);

    fakes.huawei.answer({ status: 503, times: 1 });
    const limited = await api.pushSimple({ target: { device }, title: 'after 503' });
    expect((await settled(api, limited.messageId)).vendor.sends[0]).toMatchObject({ status: 'sent', attempts: 2 });
  });
});

describe('Xiaomi', () => {
  it('sends the form MiPush expects, kills "No valid targets", retries rate limits', async () => {
    const { app, api } = await newApp();
    const device = await offlineDevice(stack.database.db, app.app, 'android', { xiaomi: 'mi-good' });
    const accepted = await api.pushSimple({ target: { device }, title: 'Mi', body: 'push', ttl: 60, vendor: { android: { channelId: 'private-orders' } } });
    expect((await settled(api, accepted.messageId)).vendor.sends[0]).toMatchObject({ vendor: 'xiaomi', status: 'sent' });
    const [got] = receivedBy(fakes.xiaomi.received, 'mi-good');
    expect(got?.headers.authorization).toBe(`key=${fakes.configs.xiaomi.appSecret}`);
    expect(got?.body).toMatchObject({
      restricted_package_name: fakes.configs.xiaomi.packageName,
      pass_through: '0',
      title: 'Mi',
      description: 'push',
      'extra.channel_id': 'private-orders',
    });
    expect(Number(got?.body.time_to_live)).toBeLessThanOrEqual(60_000);
    expect(JSON.parse(String(got?.body.payload))).toMatchObject({ mps_id: accepted.messageId });

    const dead = await offlineDevice(stack.database.db, app.app, 'android', { xiaomi: 'mi-dead' });
    fakes.xiaomi.answer({ token: 'mi-dead' });
    const refused = await api.pushSimple({ target: { device: dead }, title: 'x' });
    expect((await settled(api, refused.messageId)).vendor.sends[0]?.reason).toContain('20301');
    expect((await tokenState(stack.database.db, dead, 'xiaomi'))?.dead_at).toBeInstanceOf(Date);

    fakes.xiaomi.answer({ code: 10023, times: 1 });
    const limited = await api.pushSimple({ target: { device }, title: 'later' });
    expect((await settled(api, limited.messageId)).vendor.sends[0]).toMatchObject({ status: 'sent', attempts: 2 });
  });
});
