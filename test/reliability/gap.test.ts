/**
 * Scenario 4: devices offline beyond the validity period of some of their messages, with more
 * pending for them than an inbox keeps (GATEWAY_INBOX_CAP). No expired message is ever shown;
 * each device gets one explicit GAP frame with what it missed (expired, and dropped past the cap),
 * before the newest `cap` messages, which it is shown once each; once it acked the gap, its next
 * connection has none. The inbox says the same: expired, dropped, delivered.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CreatedApp } from '@mps/control-plane';
import { MemoryCredentialStore, type PushClient } from '@mps/sdk';
import { eventually } from '../support/services.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { record, sized } from './record.js';

const DEVICES = sized(20, 200);
const CAP = sized(40, 1000);
/** Short-lived messages per device (ttl 1 s), expired before the device comes back. */
const SHORT = sized(5, 20);
/** Long-lived messages per device past the cap: the oldest, dropped. */
const OVER = sized(10, 100);
const LONG = CAP + OVER;
/** The API's multiple push takes at most this many targets. */
const TARGETS_PER_PUSH = 1000;

let stack: TestStack;
let app: CreatedApp;
let api: PushClient;
const tally = { checked: 0, lost: 0, duplicates: 0, expired: 0 };
const detail: Record<string, unknown> = {};

beforeAll(async () => {
  stack = await startTestStack({ GATEWAY_INBOX_CAP: String(CAP) });
  app = await stack.createApp('gaps');
  api = stack.api(app);
});

afterAll(async () => {
  record('4-gap', {
    scenario: '4',
    title: 'Offline beyond the validity period, and an inbox filled past its cap: one gap marker, nothing expired shown',
    injected: { devices: DEVICES, inbox_cap: CAP, expired_per_device: SHORT, over_cap_per_device: OVER, messages: DEVICES * (SHORT + LONG) },
    messages_checked: tally.checked,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: tally.expired,
    crashes: 0,
    detail,
  });
  await stack?.stop();
});

/**
 * One message to each device per call, `title` told apart by the test. With a business id, as a
 * business server under load would: the SDK retries a 503 without making a second message.
 */
async function pushToAll(devices: string[], title: string, ttl?: number): Promise<void> {
  for (let i = 0; i < devices.length; i += TARGETS_PER_PUSH) {
    const targets = devices.slice(i, i + TARGETS_PER_PUSH).map((device) => ({ device }));
    await api.pushMultiple({ targets, title, businessId: `${title}-${i}`, ...(ttl !== undefined && { ttl }) });
  }
}

it('tells each device once what it missed, shows none of it, and shows the newest messages once each', { timeout: sized(120_000, 1_800_000) }, async () => {
  const stores: MemoryCredentialStore[] = [];
  const ids: string[] = [];
  for (let i = 0; i < DEVICES; i += 1) {
    const credentials = new MemoryCredentialStore();
    const device = await stack.device(app, { credentials });
    device.client.close();
    stores.push(credentials);
    ids.push(device.id);
  }

  for (let n = 0; n < SHORT; n += 1) await pushToAll(ids, `short-${n}`, 1);
  const shortDeadline = Date.now() + 1000;
  for (let n = 0; n < LONG; n += 1) await pushToAll(ids, `long-${n}`);
  await new Promise((r) => setTimeout(r, Math.max(0, shortDeadline + 200 - Date.now())));

  const started = Date.now();
  const back = await Promise.all(stores.map((credentials) => stack.device(app, { credentials, reconnect: { initialMs: 200, maxMs: 2000 } })));
  await Promise.all(back.map((d) => d.waitFor(CAP, sized(30_000, 600_000))));
  detail.catch_up_ms = Date.now() - started;
  // Time for a late duplicate or a second gap to show up, were there one.
  await new Promise((r) => setTimeout(r, 500));

  const expected = Array.from({ length: CAP }, (_, n) => `long-${n + OVER}`);
  for (const device of back) {
    const titles = device.shown.map((m) => m.title ?? '');
    tally.checked += SHORT + LONG;
    tally.expired += titles.filter((t) => t.startsWith('short-')).length;
    tally.duplicates += titles.length - new Set(titles).size;
    const told = device.gaps.reduce((sum, g) => ({ expired: sum.expired + g.expired, dropped: sum.dropped + g.dropped }), { expired: 0, dropped: 0 });
    // Due and neither shown nor in the gap.
    tally.lost += Math.max(0, SHORT - told.expired) + Math.max(0, LONG - new Set(titles).size - told.dropped);
    expect(device.gaps).toEqual([{ expired: SHORT, dropped: OVER }]);
    expect(titles).toEqual(expected);
  }
  expect(tally).toMatchObject({ lost: 0, duplicates: 0, expired: 0 });

  const statuses = await eventually(async () => {
    const rows = await stack.database.db.query<{ status: string; n: number }>(
      `SELECT i.status, count(*)::int AS n FROM inbox i JOIN devices d ON d.id = i.device_id
       WHERE d.app_id = $1 GROUP BY i.status`,
      [app.app],
    );
    const counts = Object.fromEntries(rows.rows.map((r) => [r.status, r.n]));
    return counts.pending === undefined ? counts : undefined;
  }, sized(30_000, 600_000), 'every inbox row settled');
  expect(statuses).toEqual({ expired: DEVICES * SHORT, dropped: DEVICES * OVER, delivered: DEVICES * CAP });
  detail.inbox = statuses;

  // The gaps were acked: the next connection tells none.
  for (const device of back) device.client.close();
  const again = await Promise.all(stores.map((credentials) => stack.device(app, { credentials })));
  await new Promise((r) => setTimeout(r, 500));
  expect(again.flatMap((d) => d.gaps)).toEqual([]);
  expect(again.flatMap((d) => d.shown)).toEqual([]);
});

it('counts a message that expires while its device is away, after the device acked a first gap', async () => {
  const credentials = new MemoryCredentialStore();
  const first = await stack.device(app, { credentials });
  first.client.close();
  /** Pushes a 1 s message to the device and waits until it has expired (by the database's clock). */
  const expiredWhileAway = async (title: string) => {
    const { messageId } = await api.pushSimple({ target: { device: first.id }, title, ttl: 1, businessId: `${title}-${first.id}` });
    const row = await stack.database.db.query<{ left_ms: number }>(
      'SELECT extract(epoch FROM expires_at - now()) * 1000 AS left_ms FROM messages WHERE id = $1',
      [messageId],
    );
    await new Promise((r) => setTimeout(r, Math.max(0, Number(row.rows[0]?.left_ms)) + 100));
  };
  await expiredWhileAway('soon gone');
  const second = await stack.device(app, { credentials });
  await eventually(async () => (second.gaps.length > 0 ? true : undefined), 15_000, 'the gap');
  second.client.close();
  await expiredWhileAway('gone too');
  const third = await stack.device(app, { credentials });
  await eventually(async () => (third.gaps.length > 0 ? true : undefined), 15_000, 'the second gap');
  tally.checked += 2;
  expect([second.gaps, third.gaps]).toEqual([[{ expired: 1, dropped: 0 }], [{ expired: 1, dropped: 0 }]]);
  expect([...second.shown, ...third.shown]).toEqual([]);
});
