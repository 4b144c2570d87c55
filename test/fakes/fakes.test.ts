/**
 * Each vendor fake, driven by the real client libraries (@parse/node-apn, firebase-admin) or by
 * node:https through `vendorAgent`, as the senders will drive them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import apn from '@parse/node-apn';
import { cert, deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getMessaging } from 'firebase-admin/messaging';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vendorAgent } from '../../sender/src/http.js';
import { startFakeApns, type FakeApns } from './apns.js';
import { startFakeFcm, type FakeFcm } from './fcm.js';
import { startFakeHuawei, type FakeHuawei } from './huawei.js';
import { apnsSigningKey, fcmServiceAccount } from './keys.js';
import { CLIENT_CERT_TOPIC, testTls, type TestTls } from './tls.js';
import { startFakeXiaomi, type FakeXiaomi } from './xiaomi.js';

const TOPIC = 'com.example.mps';
const deviceToken = () => randomBytes(32).toString('hex');

interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function request(agent: https.Agent, method: string, url: string, headers: Record<string, string>, body?: string): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

let tls: TestTls;
beforeAll(async () => {
  tls = await testTls();
});

describe('fake APNs with @parse/node-apn', () => {
  const key = apnsSigningKey();
  let apns: FakeApns;
  let provider: apn.Provider;

  beforeAll(async () => {
    apns = await startFakeApns({ tls, auth: { kind: 'token', publicKey: key.publicKey, keyId: key.keyId, teamId: key.teamId }, topic: TOPIC });
    provider = new apn.Provider({ token: { key: key.p8, keyId: key.keyId, teamId: key.teamId }, address: '127.0.0.1', port: apns.port, ca: [tls.ca] });
  });
  afterAll(async () => {
    await provider.shutdown();
    await apns.close();
  });

  it('accepts an alert and a background notification signed with the .p8 key', async () => {
    const [alertToken, silentToken] = [deviceToken(), deviceToken()];
    const alert = new apn.Notification({ alert: { title: 'Hello', body: 'World' }, badge: 3, topic: TOPIC, pushType: 'alert', collapseId: 'greeting' });
    const silent = new apn.Notification({ contentAvailable: true, payload: { k: 'v' }, topic: TOPIC, pushType: 'background', priority: 5 });

    const sentAlert = await provider.send(alert, alertToken);
    const sentSilent = await provider.send(silent, silentToken);

    expect(sentAlert).toEqual({ sent: [expect.objectContaining({ device: alertToken })], failed: [] });
    expect(sentSilent.failed).toEqual([]);
    expect(apns.received.map((r) => r.token)).toEqual([alertToken, silentToken]);
    const [first, second] = apns.received;
    expect(first?.headers).toMatchObject({ 'apns-topic': TOPIC, 'apns-push-type': 'alert', 'apns-priority': '10', 'apns-collapse-id': 'greeting' });
    expect(first?.headers.authorization).toMatch(/^bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    expect(first?.body).toEqual({ aps: { alert: { title: 'Hello', body: 'World' }, badge: 3 } });
    expect(second?.headers).toMatchObject({ 'apns-push-type': 'background', 'apns-priority': '5' });
    expect(second?.body).toEqual({ aps: { 'content-available': 1 }, k: 'v' });
  });

  it('returns a scripted 410 Unregistered in `failed`, and refuses what APNs refuses', async () => {
    const gone = deviceToken();
    apns.answer({ token: gone, status: 410, reason: 'Unregistered' });
    const before = apns.received.length;

    const result = await provider.send(new apn.Notification({ alert: 'hi', topic: TOPIC, pushType: 'alert' }), gone);
    const badPriority = await provider.send(
      new apn.Notification({ contentAvailable: true, topic: TOPIC, pushType: 'background' }), deviceToken());
    const wrongTopic = await provider.send(new apn.Notification({ alert: 'hi', topic: 'com.other.app', pushType: 'alert' }), deviceToken());

    expect(result.sent).toEqual([]);
    expect(result.failed).toEqual([{ device: gone, status: 410, response: { reason: 'Unregistered', timestamp: expect.any(Number) } }]);
    expect(badPriority.failed[0]).toMatchObject({ status: 400, response: { reason: 'BadPriority' } });
    expect(wrongTopic.failed[0]).toMatchObject({ status: 400, response: { reason: 'BadTopic' } });
    expect(apns.received).toHaveLength(before);
  });

  it('refuses a token signed by another key', async () => {
    const other = apnsSigningKey();
    const impostor = new apn.Provider({ token: { key: other.p8, keyId: key.keyId, teamId: key.teamId }, address: '127.0.0.1', port: apns.port, ca: [tls.ca] });
    try {
      const result = await impostor.send(new apn.Notification({ alert: 'hi', topic: TOPIC, pushType: 'alert' }), deviceToken());
      expect(result.failed[0]).toMatchObject({ status: 403, response: { reason: 'InvalidProviderToken' } });
    } finally {
      await impostor.shutdown();
    }
  });

  it('records a notification on arrival even when its answer comes too late (latency)', async () => {
    const impatient = new apn.Provider({
      token: { key: key.p8, keyId: key.keyId, teamId: key.teamId }, address: '127.0.0.1', port: apns.port, ca: [tls.ca], requestTimeout: 100,
    });
    const token = deviceToken();
    apns.latency(300);
    try {
      const result = await impatient.send(new apn.Notification({ alert: 'late', topic: TOPIC, pushType: 'alert' }), token);
      expect(result.failed[0]?.error?.message).toBe('apn write timeout');
      expect(apns.received.at(-1)?.token).toBe(token);
    } finally {
      apns.latency(0);
      await impatient.shutdown();
    }
  });

  it('sends GOAWAY: streams before it are answered, later ones refused unprocessed, and the client connects again', async () => {
    const client = new apn.Provider({
      token: { key: key.p8, keyId: key.keyId, teamId: key.teamId }, address: '127.0.0.1', port: apns.port, ca: [tls.ca], connectionRetryLimit: 0,
    });
    const note = () => new apn.Notification({ alert: 'bye', topic: TOPIC, pushType: 'alert' });
    try {
      await client.send(note(), deviceToken());
      const [connectionsBefore, goawaysBefore, receivedBefore] = [apns.connections.length, apns.goaways.sent, apns.received.length];
      apns.goaway(5);
      const tokens = Array.from({ length: 20 }, deviceToken);
      const racing = await client.send(note(), tokens);
      const refused = apns.goaways.refusedStreams;
      expect(apns.goaways.sent).toBe(goawaysBefore + 1);
      expect(racing.sent).toHaveLength(4);
      expect(racing.failed).toHaveLength(16);
      expect(refused).toBeGreaterThanOrEqual(1);
      // What failed never reached the fake: resending it duplicates nothing.
      expect(apns.received.slice(receivedBefore).map((r) => r.token)).toEqual(racing.sent.map((s) => s.device));
      const again = await client.send(note(), racing.failed.map((f) => f.device));
      expect(again.failed).toEqual([]);
      expect(apns.connections.length).toBe(connectionsBefore + 1);
      expect(apns.connections.at(-2)?.closed).toBeDefined();

      // At once, on every connection: the open one closes, the next send connects again.
      apns.goaway();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(apns.connections.at(-1)?.closed).toBeDefined();
      expect((await client.send(note(), deviceToken())).failed).toEqual([]);
      expect(apns.connections.length).toBe(connectionsBefore + 2);
    } finally {
      await client.shutdown();
    }
  });

  it('with certificate auth, accepts a client certificate from the CA and refuses a connection without one', async () => {
    const certApns = await startFakeApns({ tls, auth: { kind: 'certificate', ca: tls.ca } });
    const options = { address: '127.0.0.1', port: certApns.port, ca: [tls.ca] };
    const withCert = new apn.Provider({ ...options, cert: tls.clientCert, key: tls.clientKey });
    // node-apn cannot be configured with no credentials at all; in token mode it presents no certificate.
    const withoutCert = new apn.Provider({ ...options, token: { key: key.p8, keyId: key.keyId, teamId: key.teamId } });
    try {
      const token = deviceToken();
      // No apns-topic: APNs takes the certificate's subject UID.
      const accepted = await withCert.send(new apn.Notification({ alert: 'hi', pushType: 'alert' }), token);
      const refused = await withoutCert.send(new apn.Notification({ alert: 'hi', topic: TOPIC, pushType: 'alert' }), deviceToken());

      expect(accepted.failed).toEqual([]);
      expect(certApns.received).toHaveLength(1);
      expect(certApns.received[0]?.token).toBe(token);
      expect(certApns.received[0]?.headers.authorization).toBeUndefined();
      expect(CLIENT_CERT_TOPIC).toBe(TOPIC);
      expect(refused.failed[0]).toMatchObject({ status: 403, response: { reason: 'BadCertificate' } });
      expect(certApns.requests).toBe(2);
    } finally {
      await withCert.shutdown();
      await withoutCert.shutdown();
      await certApns.close();
    }
  });
});

describe('fake FCM with firebase-admin', () => {
  const PROJECT = 'mps-fake-project';
  const account = fcmServiceAccount(PROJECT);
  let fcm: FakeFcm;
  let agent: https.Agent;
  let app: App;
  let keyDir: string;

  beforeAll(async () => {
    fcm = await startFakeFcm({ tls, serviceAccount: account, projectId: PROJECT });
    agent = vendorAgent({ origin: fcm.origin, ca: tls.ca });
    // A key file path, not the parsed object: for an object, firebase-admin 14.5.1 builds the
    // google-auth-library client without its transporter options, so the token request would
    // ignore the agent and go to the real oauth2.googleapis.com.
    keyDir = await mkdtemp(join(tmpdir(), 'mps-fcm-'));
    const keyFile = join(keyDir, 'service-account.json');
    await writeFile(keyFile, JSON.stringify(account.json));
    app = initializeApp({ credential: cert(keyFile, agent), httpAgent: agent, projectId: PROJECT }, `fake-fcm-${randomBytes(4).toString('hex')}`);
  });
  afterAll(async () => {
    await deleteApp(app);
    agent.destroy();
    await fcm.close();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('gets an access token, then sends each message; UNREGISTERED comes back as registration-token-not-registered', async () => {
    const messaging = getMessaging(app);
    messaging.enableLegacyHttpTransport();
    fcm.answer({ token: 'gone-token', error: 'UNREGISTERED' });

    const result = await messaging.sendEach([
      {
        token: 'live-token',
        notification: { title: 'Hello', body: 'World' },
        data: { k: 'v' },
        android: { priority: 'high', ttl: 3_600_000, collapseKey: 'greeting', notification: { channelId: 'news' } },
        apns: { headers: { 'apns-priority': '10' }, payload: { aps: { badge: 1 } } },
      },
      { token: 'gone-token', data: { k: 'v' } },
    ]);

    expect(result.successCount).toBe(1);
    expect(result.responses[0]?.messageId).toMatch(new RegExp(`^projects/${PROJECT}/messages/0:\\d+%[0-9a-f]+$`));
    expect(result.responses[1]?.error?.code).toBe('messaging/registration-token-not-registered');
    expect(fcm.tokenRequests).toEqual([{ path: '/token', host: 'oauth2.googleapis.com', at: expect.any(Number) }]);
    expect(fcm.received.map((r) => r.token)).toEqual(['live-token']);
    const [sent] = fcm.received;
    expect(sent?.headers.host).toBe('fcm.googleapis.com');
    expect(sent?.headers.authorization).toMatch(/^Bearer ya29\./);
    expect(sent?.body.message).toEqual({
      token: 'live-token',
      notification: { title: 'Hello', body: 'World' },
      data: { k: 'v' },
      android: { priority: 'high', ttl: '3600s', collapse_key: 'greeting', notification: { channel_id: 'news' } },
      apns: { headers: { 'apns-priority': '10' }, payload: { aps: { badge: 1 } } },
    });
    expect(fcm.requests).toBe(3);
  });

  it('is retried after its Retry-After when UNAVAILABLE', async () => {
    const messaging = getMessaging(app);
    messaging.enableLegacyHttpTransport();
    fcm.answer({ status: 503, error: 'UNAVAILABLE', times: 1, retryAfter: 1 });
    const before = fcm.requests;
    const started = Date.now();

    const id = await messaging.send({ token: 'retried-token', data: { k: 'v' } });

    expect(id).toMatch(/^projects\/mps-fake-project\/messages\//);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(fcm.requests - before).toBe(2);
    expect(fcm.received.at(-1)?.token).toBe('retried-token');
  });
});

describe('fake Huawei Push Kit through vendorAgent', () => {
  const APP_ID = '101234567';
  const APP_SECRET = 'huawei-app-secret';
  let huawei: FakeHuawei;
  let agent: https.Agent;

  beforeAll(async () => {
    huawei = await startFakeHuawei({ tls, appId: APP_ID, appSecret: APP_SECRET });
    agent = vendorAgent({ origin: huawei.origin, ca: tls.ca });
  });
  afterAll(async () => {
    agent.destroy();
    await huawei.close();
  });

  async function accessToken(): Promise<string> {
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: APP_ID, client_secret: APP_SECRET });
    const res = await request(agent, 'POST', 'https://oauth-login.cloud.huawei.com/oauth2/v3/token',
      { 'content-type': 'application/x-www-form-urlencoded' }, form.toString());
    expect(res.status).toBe(200);
    return (JSON.parse(res.text) as { access_token: string }).access_token;
  }

  function send(token: string, message: Record<string, unknown>) {
    return request(agent, 'POST', `https://push-api.cloud.huawei.com/v1/${APP_ID}/messages:send`,
      { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, JSON.stringify({ validate_only: false, message }));
  }

  const notification = {
    notification: { title: 'Hello', body: 'World' },
    android: { urgency: 'HIGH', ttl: '3600s', notification: { title: 'Hello', body: 'World', click_action: { type: 3 } } },
  };

  it('issues a token, then delivers to every token of a request', async () => {
    const token = await accessToken();
    const res = await send(token, { ...notification, token: ['hw-1', 'hw-2'] });

    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ code: '80000000', msg: 'Success', requestId: expect.any(String) });
    expect(huawei.tokenRequests.map((r) => [r.path, r.host])).toEqual([['/oauth2/v3/token', 'oauth-login.cloud.huawei.com']]);
    expect(huawei.received.map((r) => r.token)).toEqual(['hw-1', 'hw-2']);
    expect(huawei.received[0]?.headers.host).toBe('push-api.cloud.huawei.com');
    expect(huawei.received[0]?.body.message.android).toEqual(notification.android);
  });

  it('answers partial success with the illegal tokens, a parameter error, and an expired token', async () => {
    const token = await accessToken();
    huawei.answer({ token: 'hw-bad' });
    const before = huawei.received.length;

    const partial = await send(token, { data: '{"k":"v"}', token: ['hw-3', 'hw-bad'] });
    const noClickAction = await send(token, { notification: { title: 'T', body: 'B' }, token: ['hw-4'] });
    huawei.expireTokens();
    const expired = await send(token, { data: '{}', token: ['hw-5'] });

    const partialBody = JSON.parse(partial.text) as { code: string; msg: string };
    expect(partialBody.code).toBe('80100000');
    expect(JSON.parse(partialBody.msg)).toEqual({ success: 1, failure: 1, illegal_tokens: ['hw-bad'] });
    expect(JSON.parse(noClickAction.text)).toMatchObject({ code: '80100001' });
    expect(expired.status).toBe(401);
    expect(JSON.parse(expired.text)).toMatchObject({ code: '80200003' });
    expect(huawei.received.slice(before).map((r) => r.token)).toEqual(['hw-3']);
  });
});

describe('fake Xiaomi MiPush through vendorAgent', () => {
  const APP_SECRET = 'xiaomi-app-secret';
  const PACKAGE = 'com.example.mps';
  let xiaomi: FakeXiaomi;
  let agent: https.Agent;

  beforeAll(async () => {
    xiaomi = await startFakeXiaomi({ tls, appSecret: APP_SECRET, packageName: PACKAGE });
    agent = vendorAgent({ origin: xiaomi.origin, ca: tls.ca });
  });
  afterAll(async () => {
    agent.destroy();
    await xiaomi.close();
  });

  function send(regids: string[], secret = APP_SECRET) {
    const form = new URLSearchParams({
      registration_id: regids.join(','),
      restricted_package_name: PACKAGE,
      pass_through: '0',
      title: 'Hello',
      description: 'World',
      payload: JSON.stringify({ k: 'v' }),
      notify_type: '-1',
      time_to_live: '3600000',
      'extra.channel_id': 'news',
    });
    return request(agent, 'POST', 'https://api.xmpush.xiaomi.com/v3/message/regid',
      { authorization: `key=${secret}`, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' }, form.toString());
  }

  it('delivers to the valid regids, answers ok, and lists the invalid ones in feedback', async () => {
    xiaomi.answer({ token: 'mi-bad' });

    const res = await send(['mi-1', 'mi-bad']);
    const feedback = await request(agent, 'GET', 'https://feedback.xmpush.xiaomi.com/v1/feedback/fetch_invalid_regids',
      { authorization: `key=${APP_SECRET}` });

    expect(res.status).toBe(200);
    expect(res.headers['x-push-host-list']).toBeUndefined();
    expect(JSON.parse(res.text)).toMatchObject({ result: 'ok', code: 0, data: { id: expect.any(String) } });
    expect(xiaomi.received.map((r) => r.token)).toEqual(['mi-1']);
    expect(xiaomi.received[0]?.body).toMatchObject({ title: 'Hello', 'extra.channel_id': 'news', notify_type: '-1' });
    expect(xiaomi.received[0]?.headers.host).toBe('api.xmpush.xiaomi.com');
    expect(JSON.parse(feedback.text)).toMatchObject({ result: 'ok', data: { list: ['mi-bad'] } });
  });

  it('answers a scripted rate limit once, a wrong secret, and no valid targets', async () => {
    xiaomi.answer({ code: 10023, times: 1 });
    const before = xiaomi.received.length;

    const limited = await send(['mi-2']);
    const retried = await send(['mi-2']);
    const wrongSecret = await send(['mi-3'], 'not-the-secret');
    xiaomi.answer({ token: 'mi-gone' });
    const noTargets = await send(['mi-gone']);

    expect(JSON.parse(limited.text)).toMatchObject({ result: 'error', code: 10023 });
    expect(JSON.parse(retried.text)).toMatchObject({ result: 'ok', code: 0 });
    expect(JSON.parse(wrongSecret.text)).toMatchObject({ result: 'error', code: 21301, reason: 'Invalid application secret.' });
    expect(JSON.parse(noTargets.text)).toMatchObject({ result: 'error', code: 20301, reason: 'No valid targets!' });
    expect(xiaomi.received.slice(before).map((r) => r.token)).toEqual(['mi-2']);
  });
});
