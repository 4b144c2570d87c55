/**
 * Two gateway processes (and a control plane) as separate processes: a user with a device on each
 * gets a per-user push on both, and a device moves to the other gateway when its gateway drains.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { DeviceClient, type MessageFrame } from '@mps/sdk';
import { eventually, type ServiceProcess } from './support/services.js';
import { startProcessStack, type ProcessStack } from './support/processes.js';

describe('two gateway processes', () => {
  let stack: ProcessStack;
  const clients: DeviceClient[] = [];

  beforeAll(async () => {
    stack = await startProcessStack({ gateways: 2, gatewayEnv: { GATEWAY_DRAIN_WINDOW_MS: '300' } });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await stack?.stop();
  });

  it('delivers a per-user push to the user device on each gateway', async () => {
    onTestFailed(() => console.error(stack.output()));
    const api = stack.api();
    const shown: MessageFrame[][] = [[], []];
    for (const [i, url] of stack.gatewayUrls.entries()) {
      const client = new DeviceClient({
        url,
        app: stack.app.app,
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
    const gateway = stack.gateways[0] as ServiceProcess;
    const exited = new Promise<number | null>((resolve) => gateway.child.once('exit', (code) => resolve(code)));
    gateway.child.kill('SIGTERM');
    expect(await exited).toBe(0);
    // The device was told to reconnect and left on its own before the gateway closed what remained.
    await eventually(async () => (states.includes('reconnecting') ? true : undefined), 5000, 'the device to reconnect');
    expect(closedBy).not.toContain('going_away');
  });
});
