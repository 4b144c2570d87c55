/**
 * Scenario 1: a random gateway is SIGKILLed again and again while devices receive unicast and
 * broadcast pushes. Two gateway processes share one port, so a killed gateway's devices reconnect
 * (SDK backoff with full jitter) to the survivor; the killed one comes back on the same port. Every
 * message due to a device must be shown exactly once by the SDK and acked (its inbox row, or the
 * device's broadcast cursor, says so); with a validity far beyond the run, nothing may be missing.
 */
import { afterAll, expect, it, onTestFailed } from 'vitest';
import { eventually } from '../support/services.js';
import { record, sized } from './record.js';
import { Devices, startFleet, type Fleet } from './support/fleet.js';

const DEVICES = sized(30, 2000);
const KILLS = sized(3, 12);
const ROUNDS = sized(12, 60);
const BROADCAST_EVERY = 4;

let fleet: Fleet | undefined;
let devices: Devices | undefined;

afterAll(async () => {
  devices?.close();
  await fleet?.stop();
});

it('loses nothing and shows nothing twice while gateways are SIGKILLed', async () => {
  fleet = await startFleet({ gateways: 2, sharedPort: true, env: { RATE_LIMIT_PER_S: '100000' } });
  const f = fleet;
  onTestFailed(() => console.error(f.output().slice(-20_000)));
  const api = f.api();
  devices = new Devices(() => f.gatewayUrl(), f.app.app);
  await devices.connect(DEVICES);
  const d = devices;
  const expected = d.ids.map(() => new Set<string>());
  const unicastIds = new Set<string>();
  let broadcastLast = '';

  // Kills at random moments while the rounds go out.
  let kills = 0;
  let sending = true;
  const chaos = (async () => {
    while (sending && kills < KILLS) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 700));
      if (!sending) break;
      const victim = f.gateways()[Math.floor(Math.random() * 2)]!;
      await f.kill(victim);
      kills += 1;
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 500));
      await f.restart(victim);
    }
  })();

  // At least ROUNDS rounds, and on until the last kill: every kill lands while messages flow.
  let round = 0;
  for (; round < ROUNDS || kills < KILLS; round++) {
    if (round % BROADCAST_EVERY === 0) {
      const b = await api.pushBroadcast({ title: `broadcast ${round}` });
      for (const set of expected) set.add(b.messageId);
      broadcastLast = b.messageId;
    }
    for (let from = 0; from < d.ids.length; from += 1000) {
      const slice = d.ids.slice(from, from + 1000);
      const r = await api.pushMultiple({ title: 'round {{n}}', targets: slice.map((device) => ({ device, values: { n: String(round) } })) });
      r.messages.forEach((m, k) => {
        expected[from + k]?.add(m.messageId);
        unicastIds.add(m.messageId);
      });
    }
    await new Promise((r) => setTimeout(r, sized(150, 100)));
  }
  sending = false;
  await chaos;

  await d.settle(expected, sized(60_000, 600_000));
  const tally = d.tally(expected);
  // Acked: no inbox row left pending, and every device's broadcast cursor at the last broadcast.
  const pendingRows = await eventually(
    async () => {
      const r = await f.database.db.query<{ pending: string; cursors: string }>(
        `SELECT (SELECT count(*) FROM inbox WHERE status = 'pending') AS pending,
                (SELECT count(*) FROM devices WHERE app_id = $1 AND broadcast_cursor = $2) AS cursors`,
        [f.app.app, broadcastLast],
      );
      const row = r.rows[0]!;
      return Number(row.pending) === 0 && Number(row.cursors) === DEVICES ? row : undefined;
    },
    sized(30_000, 300_000),
    'every delivery acked',
  ).catch(async () => (await f.database.db.query<{ pending: string; cursors: string }>(
    `SELECT (SELECT count(*) FROM inbox WHERE status = 'pending') AS pending,
            (SELECT count(*) FROM devices WHERE app_id = $1 AND broadcast_cursor = $2) AS cursors`,
    [f.app.app, broadcastLast],
  )).rows[0]!);

  const result = record('1-gateway-kill', {
    scenario: '1',
    title: 'SIGKILL a random gateway repeatedly during unicast and broadcast pushes',
    injected: { gateway_processes: 2, sigkills: kills, devices: DEVICES, rounds: round, broadcasts: Math.ceil(round / BROADCAST_EVERY) },
    messages_checked: tally.expected,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: d.expiredShown,
    crashes: f.crashes(),
    detail: {
      shown_once: tally.once,
      unexpected_shown: tally.unexpected,
      inbox_rows_left_pending: Number(pendingRows.pending),
      devices_with_cursor_at_last_broadcast: Number(pendingRows.cursors),
      sdk_close_reasons: Object.fromEntries(d.closes),
      device_reconnects: d.reconnects,
    },
  });
  expect(kills).toBe(KILLS);
  expect(result.messages_checked).toBe(DEVICES * (round + Math.ceil(round / BROADCAST_EVERY)));
  expect(d.reconnects).toBeGreaterThan(0);
  expect(result).toMatchObject({ lost: 0, duplicates_shown: 0, expired_shown: 0, crashes: 0 });
  expect(tally.unexpected).toBe(0);
  expect(Number(pendingRows.pending)).toBe(0);
  expect(Number(pendingRows.cursors)).toBe(DEVICES);
}, sized(240_000, 3_600_000));
