/**
 * The walking skeleton, every hop real and in its own process: a device (the SDK) registers on a
 * gateway, a business server signs POST /v1/push/simple, the control plane stores and publishes it,
 * the gateway delivers it, the device acks, the ack reaches the ledger (GET /v1/messages/{id} says
 * delivered) and analytics (the message's funnel counts the delivery).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { MasterKey, type MessageFrame } from '@mps/shared';
import { KeyStore } from '@mps/control-plane';
import { DeviceClient, PushClient } from '@mps/sdk';
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

describe('end to end: one message from the API to a device and back', () => {
  let database: TestDatabase;
  let nats: TestNats;
  let dataDir: string;
  const services: ServiceProcess[] = [];
  let apiPort: number;
  let gatewayPort: number;
  let app: { app: string; keyId: string; secret: string };

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
    dataDir = await mkdtemp(join(tmpdir(), 'mps-e2e-'));
    const masterKey = MasterKey.generate();
    app = await new KeyStore(database.db, MasterKey.fromBase64(masterKey), 0).createApp('e2e');
    apiPort = await freePort();
    gatewayPort = await freePort();
    const env = {
      DATABASE_URL: database.url,
      NATS_URL,
      NATS_PREFIX: nats.prefix,
      DATA_DIR: dataDir,
      MASTER_KEY: masterKey,
      API_PORT: String(apiPort),
      GATEWAY_PORT: String(gatewayPort),
      GATEWAY_ADMIN_PORT: String(await freePort()),
    };
    const controlPlane = startService('control-plane', env);
    services.push(controlPlane);
    await waitForPort(apiPort, controlPlane);
    const gateway = startService('gateway', env);
    const analytics = startService('analytics', env);
    services.push(gateway, analytics);
    await waitForPort(gatewayPort, gateway);
  });

  afterAll(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await nats?.cleanup();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('delivers a signed simple push to a registered device and records the ack', async () => {
    onTestFailed(() => {
      for (const s of services) console.error(s.output());
    });
    const received: MessageFrame[] = [];
    const device = new DeviceClient({
      url: `ws://127.0.0.1:${gatewayPort}/v1/device`,
      app: app.app,
      platform: 'android',
      osVersion: '14',
      appVersion: '2.3.0',
      onMessage: (m) => {
        received.push(m);
      },
    });
    try {
      const deviceId = await device.connect();
      const stored = await database.db.query('SELECT app_id, platform, app_version FROM devices WHERE id = $1', [deviceId]);
      expect(stored.rows).toEqual([{ app_id: app.app, platform: 'android', app_version: '2.3.0' }]);

      const api = new PushClient({ baseUrl: `http://127.0.0.1:${apiPort}`, keyId: app.keyId, secret: app.secret });
      const accepted = await api.pushSimple({
        target: { device: deviceId },
        title: 'Hello',
        body: 'from the walking skeleton',
        payload: { orderId: 42 },
      });
      expect(accepted).toMatchObject({ targeted: 1, duplicate: false });

      const message = await eventually(async () => received[0], 10_000, 'the message on the device');
      expect(message).toMatchObject({
        id: accepted.messageId,
        type: 'notification',
        title: 'Hello',
        body: 'from the walking skeleton',
        payload: { orderId: 42 },
      });

      const status = await eventually(
        async () => {
          const s = await api.message(accepted.messageId);
          return s.counts.delivered === 1 ? s : undefined;
        },
        15_000,
        'the ledger to record the ack',
      );
      expect(status.targets).toEqual([
        { device: deviceId, status: 'delivered', channel: 'socket', deliveredAt: expect.any(String) },
      ]);
      expect(status.counts).toMatchObject({ targeted: 1, pending: 0, delivered: 1 });

      const funnel = await eventually(
        async () => {
          const reply = await nats.nc.request(
            nats.subjects.reportFunnel,
            JSON.stringify({ app: app.app, message: accepted.messageId }),
            { timeout: 5000 },
          );
          const body = reply.json<{ funnel?: Record<string, number> }>();
          return body.funnel?.delivered === 1 ? body.funnel : undefined;
        },
        20_000,
        'analytics to count the delivery',
      );
      expect(funnel).toEqual({ delivered: 1 });
      expect(received).toHaveLength(1);
    } finally {
      device.close();
    }
  });
});
