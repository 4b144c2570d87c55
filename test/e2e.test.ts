/**
 * The walking skeleton, every hop real and in its own process: a device (the SDK) registers on a
 * gateway, a business server signs POST /v1/push/simple, the control plane stores and publishes it,
 * the gateway delivers it, the device acks, the ack reaches the ledger (GET /v1/messages/{id} says
 * delivered) and analytics (the message's funnel counts the delivery).
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { MessageFrame } from '@mps/shared';
import { DeviceClient } from '@mps/sdk';
import { eventually } from './support/services.js';
import { startProcessStack, type ProcessStack } from './support/processes.js';

describe('end to end: one message from the API to a device and back', () => {
  let stack: ProcessStack;

  beforeAll(async () => {
    stack = await startProcessStack({ gateways: 1, analytics: true });
  });
  afterAll(async () => stack?.stop());

  it('delivers a signed simple push to a registered device and records the ack', async () => {
    onTestFailed(() => console.error(stack.output()));
    const { app, database, nats } = stack;
    const received: MessageFrame[] = [];
    const device = new DeviceClient({
      url: stack.gatewayUrls[0] as string,
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

      const api = stack.api();
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
