/**
 * Which way a message goes: the socket when the device is connected, its vendor channel when not
 * (policy auto), one of them only when asked; one ledger per (message, device) across both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import type { PushClient } from '@mps/sdk';
import { eventually } from './support/services.js';
import { startTestStack, type TestStack } from './support/stack.js';
import { appWithChannels, configureChannels, offlineDevice, startFakes, startTestSender, type Fakes, type TestSender } from './support/vendors.js';

let stack: TestStack;
let fakes: Fakes;
let sender: TestSender | undefined;

beforeAll(async () => {
  stack = await startTestStack();
  fakes = await startFakes();
});

afterAll(async () => {
  await sender?.stop();
  await fakes?.close();
  await stack?.stop();
});

const newApp = () => appWithChannels(stack, fakes, ['fcm']);

const fcmGot = (token: string) => fakes.fcm.received.filter((r) => r.token === token).map((r) => (r.body.message.data as Record<string, string>).mps_id);

async function vendorResult(api: PushClient, messageId: string) {
  return eventually(async () => (await api.message(messageId)).vendor.sends.find((s) => s.status !== 'sending'), 15_000, `a vendor result for ${messageId}`);
}

/** A connected SDK device (android) that has reported an FCM token. */
async function connectedDevice(app: CreatedApp, token: string) {
  const device = await stack.device(app);
  device.client.setVendorToken('fcm', token);
  await eventually(async () => {
    const r = await stack.database.db.query('SELECT 1 FROM device_vendor_tokens WHERE device_id = $1', [device.id]);
    return r.rowCount === 1 ? true : undefined;
  });
  return device;
}

describe('channel policy', () => {
  beforeAll(async () => {
    sender = await startTestSender(stack, fakes);
  });

  it('auto: a connected device gets the socket only, a disconnected one its vendor channel', async () => {
    const { app, api } = await newApp();
    const online = await connectedDevice(app, 'fcm-online');
    const offline = await offlineDevice(stack.database.db, app.app, 'android', { fcm: 'fcm-offline' });

    const toOnline = await api.pushSimple({ target: { device: online.id }, title: 'socket' });
    const toOffline = await api.pushSimple({ target: { device: offline }, title: 'vendor' });
    await online.waitFor(1);
    // Skipped because the device is connected, or (when the job runs later) because it already acked.
    expect(await vendorResult(api, toOnline.messageId)).toMatchObject({ status: 'skipped', reason: expect.stringMatching(/connected|acked/) });
    expect(await vendorResult(api, toOffline.messageId)).toMatchObject({ status: 'sent', vendor: 'fcm' });
    expect(fcmGot('fcm-online')).toEqual([]);
    expect(fcmGot('fcm-offline')).toEqual([toOffline.messageId]);
    // The vendor-sent message still waits in the inbox for the socket, until it expires.
    expect((await api.message(toOffline.messageId)).targets[0]?.status).toBe('pending');
  });

  it('socket: never a vendor send; vendor: never the socket', async () => {
    const { app, api } = await newApp();
    const device = await connectedDevice(app, 'fcm-policies');
    const viaSocket = await api.pushSimple({ target: { device: device.id }, title: 'socket only', channel: 'socket' });
    const viaVendor = await api.pushSimple({ target: { device: device.id }, title: 'vendor only', channel: 'vendor' });
    expect(viaVendor.targeted).toBe(1);
    expect(await vendorResult(api, viaVendor.messageId)).toMatchObject({ status: 'sent' });
    await device.waitFor(1);
    await new Promise((r) => setTimeout(r, 500));
    expect(device.shown.map((m) => m.id)).toEqual([viaSocket.messageId]);
    expect(fcmGot('fcm-policies')).toEqual([viaVendor.messageId]);
    expect((await api.message(viaSocket.messageId)).vendor.sends).toEqual([]);
    expect((await api.message(viaVendor.messageId)).targets).toEqual([]);
  });

  it('a user push reaches each of their devices by its own way', async () => {
    const { app, api } = await newApp();
    const online = await connectedDevice(app, 'fcm-user-online');
    await online.client.bind(await api.bindToken('routing-user'));
    const offline = await offlineDevice(stack.database.db, app.app, 'android', { fcm: 'fcm-user-offline' }, 'routing-user');
    const accepted = await api.pushSimple({ target: { user: 'routing-user' }, title: 'both' });
    await online.waitFor(1);
    const status = await eventually(async () => {
      const s = await api.message(accepted.messageId);
      return s.vendor.sends.filter((v) => v.status !== 'sending').length === 2 ? s : undefined;
    });
    const byDevice = new Map(status.vendor.sends.map((s) => [s.device, s.status]));
    expect(byDevice.get(online.id)).toBe('skipped');
    expect(byDevice.get(offline)).toBe('sent');
    expect(fcmGot('fcm-user-offline')).toEqual([accepted.messageId]);
    expect(fcmGot('fcm-user-online')).toEqual([]);
  });
});

describe('broadcasts', () => {
  it('auto: every matching device that is not connected, page after page; vendor: no socket', async () => {
    const { app, api } = await newApp();
    // 1,100 offline devices with the tag (three pages), 50 without it.
    await stack.database.db.query(
      `INSERT INTO devices (id, app_id, secret_hash, platform, tags)
       SELECT gen_random_uuid(), $1, '\\x00', 'android', CASE WHEN i <= 1100 THEN ARRAY['vip'] ELSE '{}'::text[] END
       FROM generate_series(1, 1150) i`,
      [app.app],
    );
    await stack.database.db.query(
      `INSERT INTO device_vendor_tokens (device_id, vendor, token) SELECT id, 'fcm', 'fcm-bc-' || id FROM devices WHERE app_id = $1`,
      [app.app],
    );
    const online = await connectedDevice(app, 'fcm-bc-online');
    await api.changeTags({ device: online.id }, { add: ['vip'] });
    const accepted = await api.pushBroadcast({ title: 'VIP sale', condition: { tag: 'vip' } });
    expect(accepted.targeted).toBe(1101);
    await online.waitFor(1);
    const status = await eventually(
      async () => {
        const s = await api.message(accepted.messageId);
        return s.vendor.counts.sent + s.vendor.counts.skipped === 1101 ? s : undefined;
      },
      60_000,
      'every matching device handled',
    );
    expect(status.vendor.counts).toMatchObject({ sent: 1100, skipped: 1, failed: 0 });
    const reached = fakes.fcm.received.filter((r) => (r.body.message.data as Record<string, string>).mps_id === accepted.messageId);
    expect(reached).toHaveLength(1100);
    expect(new Set(reached.map((r) => r.token)).size).toBe(1100);
    expect(fcmGot('fcm-bc-online')).toEqual([]);

    const vendorOnly = await api.pushBroadcast({ title: 'vendor only', condition: { tag: 'vip' }, channel: 'vendor' });
    await eventually(async () => ((await api.message(vendorOnly.messageId)).vendor.counts.sent === 1101 ? true : undefined), 60_000);
    expect(fcmGot('fcm-bc-online')).toEqual([vendorOnly.messageId]);
    await new Promise((r) => setTimeout(r, 300));
    expect(online.shown.map((m) => m.id)).toEqual([accepted.messageId]);

    // Spread over 4 s: the pages (500 devices each, by id) start at 0, 4 x 500/1101 and 4 x 1000/1101 s.
    const spread = await api.pushBroadcast({ title: 'in turn', condition: { tag: 'vip' }, channel: 'vendor', spreadS: 4 });
    await eventually(async () => ((await api.message(spread.messageId)).vendor.counts.sent === 1101 ? true : undefined), 60_000);
    const starts = await stack.database.db.query<{ page: number; after_ms: number }>(
      `SELECT (row_number() OVER (ORDER BY v.device_id) - 1) / 500 AS page,
              extract(epoch FROM v.updated_at - m.created_at) * 1000 AS after_ms
         FROM vendor_sends v JOIN messages m ON m.id = v.message_id WHERE v.message_id = $1`,
      [spread.messageId],
    );
    const firstOf = (page: number) => Math.min(...starts.rows.filter((r) => Number(r.page) === page).map((r) => Number(r.after_ms)));
    expect(firstOf(1)).toBeGreaterThanOrEqual((4000 * 500) / 1101 - 50);
    expect(firstOf(2)).toBeGreaterThanOrEqual((4000 * 1000) / 1101 - 50);
  });
});

describe('one ledger across channels', () => {
  it('a message acked over the socket before its vendor job runs is not sent by the vendor', async () => {
    await sender?.stop();
    sender = undefined;
    const { app, api } = await newApp();
    const device = await connectedDevice(app, 'fcm-acked-first');
    const accepted = await api.pushSimple({ target: { device: device.id }, title: 'acked first' });
    await device.waitFor(1);
    await eventually(async () => ((await api.message(accepted.messageId)).targets[0]?.status === 'delivered' ? true : undefined));
    device.client.close();
    // The device is gone by the time the job runs: only the ledger says it has the message.
    sender = await startTestSender(stack, fakes);
    expect(await vendorResult(api, accepted.messageId)).toMatchObject({ status: 'skipped', reason: expect.stringContaining('acked') });
    expect(fcmGot('fcm-acked-first')).toEqual([]);
  });

  it('a message shown from the vendor notification is not shown again when the socket reconnects', async () => {
    const { app, api } = await newApp();
    const device = await connectedDevice(app, 'fcm-shown-by-vendor');
    device.client.close();
    // Let the gateway see the close (it then stops answering for the device).
    await new Promise((r) => setTimeout(r, 500));
    const accepted = await api.pushSimple({ target: { device: device.id }, title: 'through FCM' });
    await eventually(async () => (fcmGot('fcm-shown-by-vendor').includes(accepted.messageId) ? true : undefined), 15_000);
    // The app is opened from the notification: it tells the SDK, then connects.
    expect(device.client.shownByVendor(accepted.messageId, 'fcm')).toBe(true);
    await device.client.connect();
    await eventually(async () => ((await api.message(accepted.messageId)).targets[0]?.status === 'delivered' ? true : undefined));
    expect(device.shown.map((m) => m.id)).not.toContain(accepted.messageId);
  });
});
