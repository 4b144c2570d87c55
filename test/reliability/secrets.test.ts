/**
 * Scenario 15: secrets never appear in logs or API answers. The control plane, a gateway and a
 * vendor sender run as processes at LOG_LEVEL=debug (the most they ever write) while everything
 * that handles a secret happens, right and wrong: API keys created and misused, devices registered,
 * authenticated with a wrong secret and with tokens, bound with good and forged bind tokens, vendor
 * credentials saved and used against the vendor fakes, vendor tokens reported. Then every line the
 * processes wrote, and every API answer, is searched for each secret.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeFrame, FrameType } from '@mps/shared';
import { DeviceClient, MemoryCredentialStore } from '@mps/sdk';
import { testTls } from '../fakes/tls.js';
import { RawSocket } from '../support/gateway.js';
import { eventually } from '../support/services.js';
import { configureChannels, startFakes, type Fakes } from '../support/vendors.js';
import { record, sized } from './record.js';
import { send } from './support/http.js';
import { startFleet, type Fleet } from './support/fleet.js';

const DEVICES = sized(3, 30);

let fleet: Fleet;
let fakes: Fakes;
const clients: DeviceClient[] = [];

beforeAll(async () => {
  const caFile = join(await mkdtemp(join(tmpdir(), 'mps-secrets-ca-')), 'ca.pem');
  await writeFile(caFile, (await testTls()).ca);
  fakes = await startFakes(caFile);
  fleet = await startFleet({
    gateways: 1,
    env: { LOG_LEVEL: 'debug' },
    senderEnv: { ...fakes.env },
  });
}, 120_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await fleet?.stop();
  await fakes?.close();
});

/** The long, random part of a PEM key: what would show if the key were logged. */
const pemBody = (pem: string): string[] =>
  pem
    .split('\n')
    .filter((line) => line.length >= 40 && !line.startsWith('-----'))
    .slice(0, 2);

it('writes no secret to any log or API answer', async () => {
  const api = fleet.api();
  const secrets: Record<string, string> = { master_key: fleet.masterKey, app_secret: fleet.app.secret };
  const second = await api.createKey('hmac');
  secrets.second_key_secret = second.secret as string;

  await configureChannels(api, fakes);
  pemBody(fakes.configs.apns.key ?? '').forEach((line, i) => (secrets[`apns_p8_${i}`] = line));
  const sa = fakes.configs.fcm.serviceAccount as unknown as { private_key: string };
  pemBody(sa.private_key).forEach((line, i) => (secrets[`fcm_private_key_${i}`] = line));
  secrets.huawei_client_secret = fakes.configs.huawei.clientSecret;
  secrets.xiaomi_app_secret = fakes.configs.xiaomi.appSecret;

  // Devices: registered (their secret), bound (bind tokens), back with connect tokens, vendor tokens.
  const devices: string[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const store = new MemoryCredentialStore();
    const client = new DeviceClient({ url: fleet.gatewayUrl(), app: fleet.app.app, platform: i % 2 ? 'ios' : 'android', credentials: store });
    clients.push(client);
    const id = await client.connect();
    devices.push(id);
    secrets[`device_secret_${i}`] = (await store.load())!.secret;
    const bindToken = await api.bindToken(`user-${i}`);
    secrets[`bind_token_${i}`] = bindToken;
    await client.bind(bindToken);
    const vendorToken = `${i % 2 ? 'apns' : 'fcm'}-token-${'7'.repeat(40)}-${i}`;
    secrets[`vendor_token_${i}`] = vendorToken;
    client.setVendorToken(i % 2 ? 'apns' : 'fcm', vendorToken);
    await new Promise((r) => setTimeout(r, 100));
    client.close();
    // Back with a connect token.
    const connectToken = await api.connectToken(id);
    secrets[`connect_token_${i}`] = connectToken;
    const viaToken = new DeviceClient({ url: fleet.gatewayUrl(), app: fleet.app.app, platform: 'web', credentials: store, connectToken: async () => connectToken });
    clients.push(viaToken);
    await viaToken.connect();
    viaToken.close();
  }

  // Wrong ones, which the services are tempted to log.
  const wrongSecret = 'W'.repeat(43);
  secrets.wrong_device_secret = wrongSecret;
  const raw = new RawSocket(fleet.gatewayUrl());
  await raw.send(encodeFrame({ t: FrameType.AUTH, v: 1, app: fleet.app.app, device: devices[0]!, secret: wrongSecret, platform: 'android' }));
  expect((await raw.closed).code).toBe(4006);
  const forged = `${secrets.bind_token_0!.split('.').slice(0, 2).join('.')}.${'A'.repeat(43)}`;
  secrets.forged_bind_token = forged;
  const binder = new RawSocket(fleet.gatewayUrl());
  await binder.send(encodeFrame({ t: FrameType.AUTH, v: 1, app: fleet.app.app, device: devices[0]!, secret: secrets.device_secret_0!, platform: 'android' }));
  await binder.frame(1);
  await binder.send(encodeFrame({ t: FrameType.BIND, token: forged }));
  expect((await binder.closed).code).toBe(4014);
  const wrongKey = { keyId: fleet.app.keyId, secret: `${fleet.app.secret.slice(0, -4)}XXXX` };
  secrets.wrong_api_secret = wrongKey.secret;
  expect((await send(fleet.apiUrl, 'GET', '/v1/keys', undefined, wrongKey)).status).toBe(401);

  // Pushes that go out through the vendors (the devices are offline) and through sockets.
  for (const device of devices) await api.pushSimple({ target: { device }, title: 'secret keeping', channel: 'auto' });
  await eventually(async () => (fakes.fcm.received.length + fakes.apns.received.length >= 1 ? true : undefined), 20_000, 'a vendor send').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 2000));
  const vendorSends = fakes.fcm.received.length + fakes.apns.received.length;

  // Every answer the API gives about these things.
  const answers = JSON.stringify([
    await api.keys(),
    await api.channels(),
    ...(await Promise.all(devices.map((d) => api.device(d)))),
    await api.user('user-0'),
    await api.messages(),
  ]);
  const logs = fleet.output();
  const inLogs = Object.entries(secrets).filter(([, value]) => logs.includes(value)).map(([name]) => name);
  const inAnswers = Object.entries(secrets)
    .filter(([name]) => !name.startsWith('wrong') && !name.startsWith('forged'))
    .filter(([, value]) => answers.includes(value))
    .map(([name]) => name);

  record('15-secrets', {
    scenario: '15',
    title: 'Secrets in logs and API answers',
    injected: { secrets: Object.keys(secrets).length, devices: DEVICES, log_level: 'debug', vendor_sends: vendorSends },
    messages_checked: Object.keys(secrets).length,
    lost: 0,
    duplicates_shown: 0,
    expired_shown: 0,
    crashes: fleet.crashes(),
    detail: { log_lines: logs.split('\n').length, secrets_in_logs: inLogs, secrets_in_answers: inAnswers },
  });
  expect(logs.split('\n').length).toBeGreaterThan(DEVICES * 5);
  expect(vendorSends).toBeGreaterThan(0);
  expect(inLogs).toEqual([]);
  expect(inAnswers).toEqual([]);
  expect(fleet.crashes()).toBe(0);
}, sized(120_000, 600_000));
