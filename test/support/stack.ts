/**
 * The service in the test process: a control-plane app on a real port, a gateway, a fresh database
 * and NATS prefix. Devices are the real SDK; business servers the real server SDK.
 */
import { createLogger, MasterKey } from '@mps/shared';
import { buildApp, KeyStore, NonceGuard, startExpirySweep, startLedger, startReceipts, type AppDeps, type CreatedApp } from '@mps/control-plane';
import { DeviceClient, PushClient, type DeviceClientOptions, type Gap, type MessageFrame } from '@mps/sdk';
import { jetstream } from '@nats-io/jetstream';
import { createTestDatabase, createTestNats, eventually, type TestDatabase, type TestNats } from './services.js';
import { startTestGateway, type TestGateway } from './gateway.js';

export interface TestStack {
  database: TestDatabase;
  nats: TestNats;
  masterKey: MasterKey;
  /** The master key as a service process takes it (MASTER_KEY). */
  masterKeyBase64: string;
  keys: KeyStore;
  gateway: TestGateway;
  apiUrl: string;
  createApp(name?: string): Promise<CreatedApp>;
  api(app: CreatedApp): PushClient;
  /** A connected device of `app` that records what it is shown. */
  device(app: CreatedApp, options?: Partial<DeviceClientOptions>): Promise<TestDevice>;
  stop(): Promise<void>;
}

export interface TestDevice {
  client: DeviceClient;
  id: string;
  shown: MessageFrame[];
  revoked: string[];
  /** The gaps it was told of (GAP frames), in order. */
  gaps: Gap[];
  /** Waits until `n` messages were shown. */
  waitFor(n: number, ms?: number): Promise<MessageFrame[]>;
}

export async function startTestStack(gatewayEnv: Record<string, string> = {}, appOptions: Pick<AppDeps, 'console'> = {}): Promise<TestStack> {
  const database = await createTestDatabase();
  const nats = await createTestNats();
  const masterKeyBase64 = MasterKey.generate();
  const masterKey = MasterKey.fromBase64(masterKeyBase64);
  const keys = new KeyStore(database.db, masterKey, 0);
  const log = createLogger('test', 'silent');
  const gateway = await startTestGateway(database.db, nats, masterKey, gatewayEnv);
  const js = jetstream(nats.nc);
  const app = await buildApp({
    db: database.db,
    nc: nats.nc,
    js,
    subjects: nats.subjects,
    keys,
    nonces: await NonceGuard.open(nats.nc, nats.subjects),
    log,
    defaultTtlS: 3600,
    maxTtlS: 7 * 86_400,
    rateLimitPerS: 1000,
    ...appOptions,
  });
  const ledger = await startLedger({ nc: nats.nc, js, db: database.db, subjects: nats.subjects, log });
  const receipts = await startReceipts({ nc: nats.nc, js, db: database.db, keys, subjects: nats.subjects, log, horizonMs: 3_600_000 });
  const expiry = startExpirySweep({ db: database.db, js, subjects: nats.subjects, log, intervalMs: 500, retentionDays: 7 });
  const apiUrl = await app.listen({ host: '127.0.0.1', port: 0 });
  const devices: DeviceClient[] = [];

  return {
    database,
    nats,
    masterKey,
    masterKeyBase64,
    keys,
    gateway,
    apiUrl,
    createApp: (name = 'test') => keys.createApp(name),
    api: (created) => new PushClient({ baseUrl: apiUrl, keyId: created.keyId, secret: created.secret }),
    device: async (created, options = {}) => {
      const shown: MessageFrame[] = [];
      const revoked: string[] = [];
      const gaps: Gap[] = [];
      const client = new DeviceClient({
        url: gateway.url,
        app: created.app,
        platform: 'android',
        onMessage: (m) => {
          shown.push(m);
        },
        reconnect: { initialMs: 50, maxMs: 500 },
        ...options,
      });
      client.on('revoke', (id) => revoked.push(id));
      client.on('gap', (gap) => gaps.push(gap));
      devices.push(client);
      const id = await client.connect();
      return {
        client,
        id,
        shown,
        revoked,
        gaps,
        waitFor: (n, ms = 10_000) => eventually(async () => (shown.length >= n ? shown : undefined), ms, `${n} messages shown`),
      };
    },
    stop: async () => {
      for (const d of devices) d.close();
      await app.close();
      await Promise.all([ledger.stop(), receipts.stop(), expiry.stop()]);
      await gateway.close();
      await nats.cleanup();
      await database.drop();
    },
  };
}
