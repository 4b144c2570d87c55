/**
 * The four vendor fakes, the credentials that reach them, and a vendor sender in the test process
 * pointed at them: what the vendor-channel tests share.
 */
import { jetstream } from '@nats-io/jetstream';
import { ChannelStore, createLogger, newId, type ApnsConfig, type ChannelConfigs, type Db, type Vendor } from '@mps/shared';
import { startSender, VendorClients, type Endpoints, type Sender } from '@mps/sender';
import type { CreatedApp } from '@mps/control-plane';
import type { PushClient } from '@mps/sdk';
import { startFakeApns, type FakeApns } from '../fakes/apns.js';
import { startFakeFcm, type FakeFcm } from '../fakes/fcm.js';
import { startFakeHuawei, type FakeHuawei } from '../fakes/huawei.js';
import { apnsSigningKey, fcmServiceAccount } from '../fakes/keys.js';
import { testTls } from '../fakes/tls.js';
import { startFakeXiaomi, type FakeXiaomi } from '../fakes/xiaomi.js';
import type { TestStack } from './stack.js';

export const BUNDLE_ID = 'com.example.mps';
export const XIAOMI_PACKAGE = 'com.example.mps';

export interface Fakes {
  apns: FakeApns;
  fcm: FakeFcm;
  huawei: FakeHuawei;
  xiaomi: FakeXiaomi;
  /** Credentials each fake accepts, as an app saves them. */
  configs: ChannelConfigs;
  endpoints: Endpoints;
  /** The environment a sender process needs to reach the fakes (its CA in a file). */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function startFakes(caFile?: string): Promise<Fakes> {
  const tls = await testTls();
  const signing = apnsSigningKey();
  const sa = fcmServiceAccount('mps-test');
  const huaweiApp = { appId: '104000001', appSecret: 'huawei-secret-0123456789' };
  const xiaomiSecret = 'xiaomi-secret-0123456789';
  const [apns, fcm, huawei, xiaomi] = await Promise.all([
    startFakeApns({ tls, auth: { kind: 'token', publicKey: signing.publicKey, keyId: signing.keyId, teamId: signing.teamId }, topic: BUNDLE_ID }),
    startFakeFcm({ tls, serviceAccount: sa, projectId: 'mps-test' }),
    startFakeHuawei({ tls, ...huaweiApp }),
    startFakeXiaomi({ tls, appSecret: xiaomiSecret, packageName: XIAOMI_PACKAGE }),
  ]);
  const apnsConfig: ApnsConfig = { auth: 'token', key: signing.p8, keyId: signing.keyId, teamId: signing.teamId, bundleId: BUNDLE_ID, production: false };
  const endpoints: Endpoints = {
    apnsOrigin: apns.origin,
    fcmOrigin: fcm.origin,
    huaweiOAuthUrl: `${huawei.origin}/oauth2/v3/token`,
    huaweiPushOrigin: huawei.origin,
    xiaomiOrigin: xiaomi.origin,
    ca: tls.ca,
  };
  return {
    apns,
    fcm,
    huawei,
    xiaomi,
    configs: {
      apns: apnsConfig,
      fcm: { serviceAccount: sa.json },
      huawei: { appId: huaweiApp.appId, clientSecret: huaweiApp.appSecret },
      xiaomi: { appSecret: xiaomiSecret, packageName: XIAOMI_PACKAGE },
    },
    endpoints,
    env: {
      APNS_ORIGIN: endpoints.apnsOrigin,
      FCM_ORIGIN: endpoints.fcmOrigin,
      HUAWEI_OAUTH_URL: endpoints.huaweiOAuthUrl,
      HUAWEI_PUSH_ORIGIN: endpoints.huaweiPushOrigin,
      XIAOMI_ORIGIN: endpoints.xiaomiOrigin,
      ...(caFile !== undefined && { VENDOR_CA_FILE: caFile }),
    },
    close: async () => {
      await Promise.all([apns.close(), fcm.close(), huawei.close(), xiaomi.close()]);
    },
  };
}

/** A new app of the stack with these vendor channels saved, and its API client. */
export async function appWithChannels(stack: TestStack, fakes: Fakes, vendors?: Vendor[]): Promise<{ app: CreatedApp; api: PushClient }> {
  const app = await stack.createApp();
  const api = stack.api(app);
  await configureChannels(api, fakes, vendors);
  return { app, api };
}

/** Saves every vendor channel of an app through the API. */
export async function configureChannels(api: PushClient, fakes: Fakes, vendors: Vendor[] = ['apns', 'fcm', 'huawei', 'xiaomi']): Promise<void> {
  for (const vendor of vendors) await api.setChannel(vendor, fakes.configs[vendor]);
}

export interface TestSender {
  sender: Sender;
  clients: VendorClients;
  stop(): Promise<void>;
}

/** A vendor sender in this process, on the stack's database and NATS prefix. */
export async function startTestSender(stack: TestStack, fakes: Fakes, options: { maxAttempts?: number } = {}): Promise<TestSender> {
  const clients = new VendorClients(new ChannelStore(stack.database.db, stack.masterKey), fakes.endpoints);
  const sender = await startSender({
    nc: stack.nats.nc,
    js: jetstream(stack.nats.nc),
    db: stack.database.db,
    subjects: stack.nats.subjects,
    clients,
    log: createLogger('sender', 'silent'),
    batch: 100,
    maxAttempts: options.maxAttempts ?? 5,
    presenceTimeoutMs: 500,
  });
  return {
    sender,
    clients,
    stop: async () => {
      await sender.stop();
      await clients.close();
    },
  };
}

/** A device that is not connected, with vendor tokens (as a phone whose app the OS suspended). */
export async function offlineDevice(
  db: Db,
  app: string,
  platform: 'ios' | 'android' | 'harmony' | 'web',
  tokens: Partial<Record<Vendor, string>>,
  userId: string | null = null,
): Promise<string> {
  const id = newId();
  await db.query(`INSERT INTO devices (id, app_id, secret_hash, platform, user_id, app_version) VALUES ($1, $2, $3, $4, $5, '1.0.0')`, [
    id,
    app,
    Buffer.alloc(32),
    platform,
    userId,
  ]);
  for (const [vendor, token] of Object.entries(tokens)) {
    await db.query('INSERT INTO device_vendor_tokens (device_id, vendor, token) VALUES ($1, $2, $3)', [id, vendor, token]);
  }
  return id;
}

/** A hex APNs device token (64 hex digits), distinct per call. */
export const apnsToken = (): string => Buffer.from(newId().replaceAll('-', '') + newId().replaceAll('-', ''), 'hex').toString('hex');

export async function tokenState(db: Db, device: string, vendor: Vendor): Promise<{ dead_at: Date | null; dead_reason: string | null } | undefined> {
  const r = await db.query<{ dead_at: Date | null; dead_reason: string | null }>(
    'SELECT dead_at, dead_reason FROM device_vendor_tokens WHERE device_id = $1 AND vendor = $2',
    [device, vendor],
  );
  return r.rows[0];
}
