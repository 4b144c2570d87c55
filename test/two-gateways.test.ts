/**
 * Two gateway processes (and a control plane) as separate processes: a user with a device on each
 * gets a per-user push on both, and a device moves to the other gateway when its gateway drains.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { MasterKey } from '@mps/shared';
import { KeyStore, type CreatedApp } from '@mps/control-plane';
import { DeviceClient, PushClient, type MessageFrame } from '@mps/sdk';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  freePort,
  NATS_URL,
  startService,
  waitForPort,
  type ServiceProcess,
  type TestDatabase,
  type TestNats,
} from './support/services.js';

describe('two gateway processes', () => {
  let database: TestDatabase;
  let nats: TestNats;
  let dataDir: string;
  const services: ServiceProcess[] = [];
  const gatewayPorts: number[] = [];
  let apiPort: number;
  let app: CreatedApp;
  const clients: DeviceClient[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
    dataDir = await mkdtemp(join(tmpdir(), 'mps-two-'));
    const masterKey = MasterKey.generate();
    app = await new KeyStore(database.db, MasterKey.fromBase64(masterKey), 0).createApp('two');
    apiPort = await freePort();
    const env = { DATABASE_URL: database.url, NATS_URL, NATS_PREFIX: nats.prefix, DATA_DIR: dataDir, MASTER_KEY: masterKey, API_PORT: String(apiPort) };
    const controlPlane = startService('control-plane', env);
    services.push(controlPlane);
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      gatewayPorts.push(port);
      const gateway = startService('gateway', {
        ...env,
        GATEWAY_PORT: String(port),
        GATEWAY_ADMIN_PORT: String(await freePort()),
        GATEWAY_DRAIN_WINDOW_MS: '300',
      });
      services.push(gateway);
      await waitForPort(port, gateway);
    }
    await waitForPort(apiPort, controlPlane);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(services.map((s) => s.stop()));
    await nats?.cleanup();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers a per-user push to the user device on each gateway', async () => {
    onTestFailed(() => {
      for (const s of services) console.error(s.output());
    });
    const api = new PushClient({ baseUrl: `http://127.0.0.1:${apiPort}`, keyId: app.keyId, secret: app.secret });
    const shown: MessageFrame[][] = [[], []];
    for (const [i, port] of gatewayPorts.entries()) {
      const client = new DeviceClient({
        url: `ws://127.0.0.1:${port}/v1/device`,
        app: app.app,
        platform: i === 0 ? 'ios' : 'android',
        onMessage: (m) => {
          shown[i]?.push(m);
        },
      });
      clients.push(client);
      await client.connect();
      await client.bind(await api.bindToken('erin'));
    }
    const pushed = await api.pushSimple({ target: { user: 'erin' }, title: 'both' });
    expect(pushed.targeted).toBe(2);
    await eventually(async () => (shown.every((s) => s.length === 1) ? true : undefined), 10_000, 'both devices');
    expect(shown.map((s) => s.map((m) => m.id))).toEqual([[pushed.messageId], [pushed.messageId]]);
    const status = await eventually(async () => {
      const s = await api.message(pushed.messageId);
      return s.counts.delivered === 2 ? s : undefined;
    });
    expect(status.counts).toMatchObject({ targeted: 2, delivered: 2, pending: 0 });
  });

  it('drains on SIGTERM: the gateway tells its devices to reconnect, then exits', async () => {
    const first = clients[0] as DeviceClient;
    const states: string[] = [];
    const closedBy: string[] = [];
    first.on('state', (s) => states.push(s));
    first.on('error', (e) => closedBy.push(e.close?.reason ?? e.message));
    const gateway = services[1] as ServiceProcess;
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    gateway.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The device was told to reconnect and left on its own before the gateway closed what remained.
    await eventually(async () => (states.includes('reconnecting') ? true : undefined), 5000, 'the device to reconnect');
    expect(closedBy).not.toContain('going_away');
  });
});
