/**
 * The loss test: devices on real gateway processes receive a mix of device, user and broadcast
 * messages while they disconnect and reconnect at random; at the end every (device, message) that
 * should arrive must have been shown exactly once by the SDK, and nothing expired shown.
 * Used at a small size by the suite and at full size by bench/ (loss.json).
 */
import { DeviceClient, MemoryCredentialStore } from '@mps/sdk';
import { startProcessStack } from './processes.js';
import { eventually } from './services.js';

export interface LossOptions {
  devices: number;
  messagesPerDevice: number;
  gateways: number;
  /** Random disconnects per second across all devices while messages are sent. */
  disconnectsPerSecond: number;
  /** How long to wait for everything to arrive at the end. */
  settleMs: number;
  log?: (line: string) => void;
}

export interface LossMetrics {
  expected: number;
  acked_once: number;
  duplicates_shown: number;
  expired_shown: number;
  lost: number;
  unexpected: number;
  disconnects: number;
}

const shuffle = <T>(items: T[]): T[] => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
};

export async function runLossTest(options: LossOptions): Promise<LossMetrics> {
  const log = options.log ?? (() => undefined);
  const stack = await startProcessStack({
    gateways: options.gateways,
    env: { RATE_LIMIT_PER_S: '100000' },
    gatewayEnv: { GATEWAY_ADMIN_PORT: '0', GATEWAY_MAX_FRAMES_PER_S: '1000' },
  });
  const clients: DeviceClient[] = [];
  try {
    const { app } = stack;
    const api = stack.api();

    // Devices: every other device belongs to a user with two devices.
    const shown: Map<string, number>[] = [];
    let expiredShown = 0;
    const ids: string[] = [];
    for (let i = 0; i < options.devices; i++) {
      const seen = new Map<string, number>();
      shown.push(seen);
      const client = new DeviceClient({
        url: stack.gatewayUrls[i % stack.gatewayUrls.length] as string,
        app: app.app,
        platform: i % 2 === 0 ? 'android' : 'ios',
        credentials: new MemoryCredentialStore(),
        reconnect: { initialMs: 100, maxMs: 1000 },
        onMessage: (m) => {
          seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
          if (m.exp <= Date.now()) expiredShown += 1;
        },
      });
      clients.push(client);
      ids.push(await client.connect());
    }
    const userOf = (i: number) => (i % 4 < 2 ? `user-${Math.floor(i / 4)}` : null);
    for (const [i, client] of clients.entries()) {
      const user = userOf(i);
      if (user) await client.bind(await api.bindToken(user));
    }
    log(`${options.devices} devices connected on ${options.gateways} gateways`);

    // The mix: a tenth broadcasts, a third to users, the rest to single devices.
    const broadcasts = Math.max(1, Math.round(options.messagesPerDevice / 10));
    const perUser = Math.max(1, Math.round(options.messagesPerDevice / 3));
    const perDevice = Math.max(1, options.messagesPerDevice - broadcasts);
    const expected = clients.map(() => new Set<string>());
    const users = [...new Set(clients.map((_, i) => userOf(i)).filter((u): u is string => u !== null))];
    const devicesOfUser = (user: string) => clients.map((_, i) => i).filter((i) => userOf(i) === user);

    type Send = () => Promise<void>;
    const sends: Send[] = [];
    for (let b = 0; b < broadcasts; b++) {
      sends.push(async () => {
        const r = await api.pushBroadcast({ title: `broadcast ${b}` });
        for (const set of expected) set.add(r.messageId);
      });
    }
    for (let round = 0; round < perDevice; round++) {
      // Users get `perUser` of the rounds (on each of their devices), devices without a user all of them.
      const targets = clients.map((_, i) => i).filter((i) => userOf(i) === null || round >= perUser);
      for (let from = 0; from < targets.length; from += 1000) {
        const slice = targets.slice(from, from + 1000);
        sends.push(async () => {
          const r = await api.pushMultiple({ title: 'Hi {{n}}', targets: slice.map((i) => ({ device: ids[i] as string, values: { n: String(round) } })) });
          r.messages.forEach((m, k) => expected[slice[k] as number]?.add(m.messageId));
        });
      }
      if (round < perUser) {
        for (let from = 0; from < users.length; from += 1000) {
          const slice = users.slice(from, from + 1000);
          sends.push(async () => {
            const r = await api.pushMultiple({ title: 'Hey {{n}}', targets: slice.map((user) => ({ user, values: { n: String(round) } })) });
            r.messages.forEach((m, k) => {
              for (const i of devicesOfUser(slice[k] as string)) expected[i]?.add(m.messageId);
            });
          });
        }
      }
    }

    // Chaos while sending: random devices drop their connection and come back a little later.
    let disconnects = 0;
    let chaos = true;
    const chaosLoop = (async () => {
      while (chaos) {
        await new Promise((r) => setTimeout(r, 1000 / options.disconnectsPerSecond));
        const client = clients[Math.floor(Math.random() * clients.length)] as DeviceClient;
        if (client.state !== 'ready') continue;
        disconnects += 1;
        client.close();
        setTimeout(() => void client.connect().catch(() => undefined), 50 + Math.random() * 500);
      }
    })();
    for (const send of shuffle(sends)) await send();
    chaos = false;
    await chaosLoop;
    log(`${sends.length} push calls sent, ${disconnects} disconnects`);

    const expectedTotal = expected.reduce((n, set) => n + set.size, 0);
    const ackedOnce = () => expected.reduce((n, set, i) => n + [...set].filter((id) => shown[i]?.get(id) === 1).length, 0);
    await eventually(async () => {
      for (const c of clients) if (c.state === 'closed') void c.connect().catch(() => undefined);
      return ackedOnce() >= expectedTotal ? true : undefined;
    }, options.settleMs, 'every message to arrive').catch(() => undefined);

    const duplicates = shown.reduce((n, seen) => n + [...seen.values()].filter((count) => count > 1).length, 0);
    const unexpected = shown.reduce((n, seen, i) => n + [...seen.keys()].filter((id) => !expected[i]?.has(id)).length, 0);
    const lost = expected.reduce((n, set, i) => n + [...set].filter((id) => !shown[i]?.has(id)).length, 0);
    return {
      expected: expectedTotal,
      acked_once: ackedOnce(),
      duplicates_shown: duplicates,
      expired_shown: expiredShown,
      lost,
      unexpected,
      disconnects,
    };
  } finally {
    for (const c of clients) c.close();
    await stack.stop();
  }
}
