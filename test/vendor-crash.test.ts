/**
 * A sender process killed (SIGKILL) while its requests to APNs are in flight: another sender takes
 * the jobs over and nothing is lost. What was settled before the kill is never sent again; only
 * sends in flight at the kill can reach the vendor twice, and they carry the message id as their
 * collapse id, so the device shows one notification.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { eventually, NATS_URL, startService, type ServiceProcess } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { testTls } from './fakes/tls.js';
import { apnsToken, configureChannels, offlineDevice, startFakes, type Fakes } from './support/vendors.js';

const DEVICES = 300;

let stack: TestStack;
let fakes: Fakes;
const senders: ServiceProcess[] = [];

beforeAll(async () => {
  stack = await startTestStack();
  const caFile = join(await mkdtemp(join(tmpdir(), 'mps-vendor-ca-')), 'ca.pem');
  await writeFile(caFile, (await testTls()).ca);
  fakes = await startFakes(caFile);
});

afterAll(async () => {
  await Promise.all(senders.map((s) => s.stop()));
  await fakes?.close();
  await stack?.stop();
});

function startSenderProcess(): ServiceProcess {
  const sender = startService('sender', {
    ...fakes.env,
    DATABASE_URL: stack.database.url,
    NATS_URL,
    NATS_PREFIX: stack.nats.prefix,
    MASTER_KEY: stack.masterKeyBase64,
    SENDER_BATCH: '20',
    SENDER_ACK_WAIT_MS: '2000',
  });
  senders.push(sender);
  return sender;
}

async function statuses(): Promise<Map<string, string>> {
  const r = await stack.database.db.query<{ device_id: string; status: string }>('SELECT device_id, status FROM vendor_sends');
  return new Map(r.rows.map((row) => [row.device_id, row.status]));
}

it('loses nothing and resends only what was in flight when a sender is killed', async () => {
  const app = await stack.createApp();
  const api = stack.api(app);
  await configureChannels(api, fakes, ['apns']);
  const tokens = new Map<string, string>();
  for (let i = 0; i < DEVICES; i++) {
    const token = apnsToken();
    tokens.set(await offlineDevice(stack.database.db, app.app, 'ios', { apns: token }), token);
  }
  fakes.apns.latency(300);
  const first = startSenderProcess();
  const task = await api.pushMultiple({ targets: [...tokens.keys()].map((device) => ({ device })), title: 'crash test' });
  expect(task.messages).toHaveLength(DEVICES);

  await eventually(async () => (fakes.apns.received.length >= DEVICES / 4 ? true : undefined), 60_000, 'a quarter of the sends');
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  const atKill = await statuses();
  const settledBefore = [...atKill].filter(([, s]) => s === 'sent').map(([device]) => device);
  const inFlight = [...atKill.values()].filter((s) => s === 'sending').length;
  expect(settledBefore.length).toBeLessThan(DEVICES);

  startSenderProcess();
  await eventually(
    async () => {
      const now = await statuses();
      return [...now.values()].filter((s) => s === 'sent').length === DEVICES ? true : undefined;
    },
    90_000,
    'every send settled',
  );

  const times = new Map<string, number>();
  for (const r of fakes.apns.received) times.set(r.token, (times.get(r.token) ?? 0) + 1);
  // Nothing lost: every device's token reached the vendor.
  expect([...tokens.values()].filter((t) => !times.has(t))).toEqual([]);
  // Settled before the kill: never sent again.
  expect(settledBefore.filter((device) => times.get(tokens.get(device) as string) !== 1)).toEqual([]);
  // Twice at most for what was in flight, under one collapse id (the device shows it once).
  const twice = [...times].filter(([, n]) => n > 1);
  expect(twice.length).toBeLessThanOrEqual(inFlight);
  expect(Math.max(...times.values())).toBeLessThanOrEqual(2);
  for (const [token] of twice) {
    const copies = fakes.apns.received.filter((r) => r.token === token);
    expect(new Set(copies.map((r) => r.headers['apns-collapse-id'])).size).toBe(1);
    expect(copies[0]?.headers['apns-collapse-id']).toBe(copies[0]?.body.mps_id);
  }
}, 180_000);
