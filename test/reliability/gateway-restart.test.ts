/**
 * Scenario 5: restart the gateways of a node holding 50,000 connections. Every process here may
 * have 20,000 open files, so a node of that size is several gateway processes sharing one port
 * (SO_REUSEPORT), and "restart a gateway" is done both ways an operator meets it:
 *
 * 1. The node's gateways crash: every process SIGKILLed at once and started again by the
 *    supervisor half a second later. Every device loses its connection at the same instant and
 *    comes back by the SDK's full-jitter backoff: the reconnect storm, against one PostgreSQL.
 * 2. Rolling restart of one process: SIGTERM, so it drains (every device gets a RECONNECT frame
 *    with a random delay within GATEWAY_DRAIN_WINDOW_MS) and exits; its share moves to the other
 *    processes while they keep theirs; then it starts again.
 *
 * Most devices are lean load clients (bench/src/loadgen/reconnecting-devices.ts, with the SDK's
 * backoff: checked against the SDK in backoff.test.ts, and here against the real SDK devices of the
 * same run), the rest real SDK devices. Proves: every device that held a session holds one again,
 * within a bound; reconnects are spread as full jitter predicts (no large share in one slot);
 * PostgreSQL stays within the per-reconnect budget below; a broadcast and a unicast sent afterwards
 * reach every device once. Figures are recorded; only generous bounds are asserted.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, expect, it, onTestFailed } from 'vitest';
import { SDK_BACKOFF } from '../../bench/src/loadgen/backoff.js';
import { INSERT_DEVICES } from '../../bench/src/loadgen/identity.js';
import { startReconnectingDevices, type ReconnectingFleet } from '../../bench/src/loadgen/reconnecting.js';
import type { DeviceEpisode } from '../../bench/src/loadgen/reconnecting-messages.js';
import { wallClockMs } from '../../bench/src/loadgen/stamp.js';
import { eventually } from '../support/services.js';
import { quantile, record, sized } from './record.js';
import { startFleet, type Fleet, type FleetProcess } from './support/fleet.js';
import { busiestTables, describeLoad, difference, PgLoad } from './support/pg-load.js';
import { SdkCrowd } from './support/sdk-crowd.js';
import { describeSpread, firstAttemptsAfter, histogram, ksCritical, ksDistance, ksUniform, largestSlotShare, lateness, normalizedDelays } from './support/spread.js';

/** Gateway processes of the node: with 50,000 devices, one crashed or draining leaves 4 to take 12,500 each. */
const GATEWAYS = sized(2, 5);
const LEAN_DEVICES = sized(3000, 48_000);
/** Lean devices per load-client process: a process with fewer sockets runs its timers less late. */
const LEAN_PER_PROCESS = 8000;
const SDK_DEVICES = sized(100, 2000);
const DEVICES = LEAN_DEVICES + SDK_DEVICES;
/**
 * Device rows of the app: more than connect, as in any real app (most devices are offline), and as
 * many at CI size as at full size, so that PostgreSQL plans the connect path's statements the same.
 */
const SEEDED_DEVICES = 50_000;
/** A drained process's devices leave at random within it: the gateway's default (10 s) at full size. */
const DRAIN_WINDOW_MS = sized(5000, 10_000);
/** The supervisor starts the crashed processes again after this (systemd's RestartSec, say). */
const RESTART_DELAY_MS = 500;
/** Every device READY again within this after the restart began (its backoff tops out at 30 s). */
const RESUME_BOUND_MS = sized(90_000, 900_000);
const SLOT_MS = 250;
/**
 * The instants are the clients' own: when a client process ran its timers later than this (p99),
 * the machine (shared, 2 cores) was too busy for them to say how the backoff spread the crowd, and
 * the figures that rest on them are recorded, not asserted.
 */
const LAG_LIMIT_MS = 1000;

/**
 * The PostgreSQL budget of one reconnect, from what the gateway runs when a known device (unbound,
 * nothing pending) authenticates: gateway/src/handlers.ts authenticate, gateway/src/gateway.ts
 * deliverPending and catchUpBroadcasts, gateway/src/devices.ts. Five statements, each its own
 * transaction: the facts UPDATE (checks the secret, returns the device's row), the inbox settling
 * UPDATE (nothing to settle), the gap SELECT, the pending-inbox SELECT and the broadcast catch-up
 * SELECT. Devices connecting together share each statement (up to 256 a statement), so a storm costs
 * fewer; never more. One row written: the device's own. Rows read by index: the device's row, its
 * app's and its previous version (for seen_before); its user's profile, inbox rows, gap and newer
 * broadcasts are none. The budget allows about three times those 3 rows, for the catalog reads of
 * the restarted gateways' new database connections and the control plane's periodic jobs, which
 * weigh most at CI size. Statements at once: each gateway process runs each of its three grouped
 * queues (facts, inbox, broadcasts) at most twice concurrently.
 */
const BUDGET = {
  transactions_per_reconnect: 5,
  rows_written_per_reconnect: 1,
  rows_fetched_per_reconnect: 10,
  rows_returned_per_reconnect: 20,
  active_statements_per_gateway: 6,
};

let fleet: Fleet | undefined;
let lean: ReconnectingFleet | undefined;
let crowd: SdkCrowd | undefined;
let pg: PgLoad | undefined;

afterAll(async () => {
  // Devices first: the gateways' SIGTERM drain then has nothing to wait for.
  crowd?.close();
  await lean?.stop();
  await pg?.close();
  await fleet?.stop();
}, 120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits;
const mean = (values: number[]) => round(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length), 3);
const percentiles = (values: number[]) => ({ p50: round(quantile(values, 0.5)), p99: round(quantile(values, 0.99)), max: round(quantile(values, 1)) });

/** A gateway process's own figures from its metrics: sockets, closes by reason, and its event loop's delay since the last read. */
async function gatewayFigures(p: FleetProcess) {
  const text = await (await fetch(`http://127.0.0.1:${p.env.GATEWAY_ADMIN_PORT}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  const closes = Object.fromEntries([...text.matchAll(/^mps_gateway_closes_total\{reason="([a-z_]+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
  return {
    connections: value('mps_gateway_connections'),
    closes,
    loop_lag_ms: { p99: round(value('mps_gateway_nodejs_eventloop_lag_p99_seconds') * 1000), max: round(value('mps_gateway_nodejs_eventloop_lag_max_seconds') * 1000) },
  };
}

const connectionsOf = async (p: FleetProcess): Promise<number> => (await gatewayFigures(p)).connections;

/** The instant the port accepts again (the first gateway process listens), probing every 10 ms. */
async function firstAccept(port: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const at = await new Promise<number | undefined>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        resolve(wallClockMs());
        socket.destroy();
      });
      socket.once('error', () => resolve(undefined));
    });
    if (at !== undefined) return at;
    await sleep(10);
  }
  throw new Error(`port ${port} did not accept within ${ms} ms`);
}

/** Per device, the time from losing the connection to READY again; and the last READY after `from`. */
function resumeFigures(episodes: DeviceEpisode[], from: number) {
  const resumed = episodes.filter((e) => e.lost !== null && e.ready !== null && e.ready > e.lost);
  return {
    lost: episodes.filter((e) => e.lost !== null).length,
    resumed: resumed.length,
    ready_again_ms: percentiles(resumed.map((e) => (e.ready as number) - (e.lost as number))),
    all_ready_after_ms: round(resumed.reduce((max, e) => Math.max(max, e.ready as number), from) - from),
  };
}

it('resumes every session after its gateways restart, reconnects spread by full jitter, PostgreSQL within budget', async () => {
  fleet = await startFleet({
    gateways: GATEWAYS,
    sharedPort: true,
    env: { RATE_LIMIT_PER_S: '100000' },
    gatewayEnv: { GATEWAY_DRAIN_WINDOW_MS: String(DRAIN_WINDOW_MS) },
  });
  const f = fleet;
  onTestFailed(() => console.error(f.output().slice(-20_000)));
  const port = Number(new URL(f.gatewayUrl()).port);
  pg = await PgLoad.watch(f.database.url);
  const load = pg;
  // How late this process (the SDK devices' and the sampler's) runs its timers.
  const ownLag = monitorEventLoopDelay({ resolution: 10 });
  ownLag.enable();

  // The crowd: lean devices seeded in the app, SDK devices registering through the gateways.
  const seed = randomBytes(6).toString('hex');
  await f.database.db.query(INSERT_DEVICES, [seed, f.app.app, 0, SEEDED_DEVICES]);
  await f.database.db.query('ANALYZE devices');
  const connectStarted = Date.now();
  lean = await startReconnectingDevices(
    {
      host: '127.0.0.1',
      port,
      path: '/v1/device',
      app: f.app.app,
      seed,
      maxInFlight: 200,
      socketsPerAddress: 500,
      // The SDK gives a handshake no deadline of its own: neither do these, within the run.
      handshakeTimeoutMs: RESUME_BOUND_MS,
      backoff: SDK_BACKOFF,
    },
    LEAN_DEVICES,
    Math.ceil(LEAN_DEVICES / LEAN_PER_PROCESS),
  );
  const l = lean;
  const leanStatus = await l.connect(sized(120_000, 1_200_000));
  crowd = new SdkCrowd(f.gatewayUrl(), f.app.app);
  const c = crowd;
  await c.connect(SDK_DEVICES);
  const connectSeconds = (Date.now() - connectStarted) / 1000;
  expect(leanStatus.ready).toBe(LEAN_DEVICES);
  const allReady = async () => (await l.status()).ready + c.ready;
  const untilAllReady = (what: string) =>
    eventually(async () => ((await allReady()) === DEVICES ? true : undefined), RESUME_BOUND_MS, what).catch(() => undefined);
  const sharesBefore = await Promise.all(f.gateways().map(connectionsOf));
  expect(sharesBefore.reduce((a, b) => a + b, 0)).toBe(DEVICES);

  // 1. The node's gateways crash together and come back: the reconnect storm. The counters settle
  // first, which also leaves every connection up long enough for its loss to reset the backoff.
  const before = await load.settled();
  const tablesBefore = await load.tables();
  await l.mark();
  c.mark();
  ownLag.reset();
  load.start();
  const killAt = wallClockMs();
  await Promise.all(f.gateways().map((g) => f.kill(g, 'SIGKILL')));
  await sleep(RESTART_DELAY_MS);
  const accepting = firstAccept(port, 60_000);
  await Promise.all(f.gateways().map((g) => f.restart(g)));
  const upAt = await accepting;
  await untilAllReady('every device READY after the crash');
  const readyAfterCrash = await allReady();
  const leanAtCrash = await l.status();
  const ownLagAtCrash = { p99: round(ownLag.percentile(99) / 1e6), max: round(ownLag.max / 1e6) };
  const storm = await load.stop();
  const leanCrash = await l.episode();
  const sdkCrash = c.episode();
  const crash = [...leanCrash, ...sdkCrash];
  const crashResume = resumeFigures(crash, killAt);
  const gatewaysAfterCrash = await Promise.all(f.gateways().map(gatewayFigures));
  const sharesAfterCrash = gatewaysAfterCrash.map((g) => g.connections);
  const after = await load.settled();
  const reconnects = crash.filter((e) => e.ready !== null).length;
  const postgres = describeLoad(difference(after, before), storm, reconnects, busiestTables(await load.tables(), tablesBefore));

  // The spread: each device's first attempt once the port accepted again, against where full
  // jitter puts it given the device's own refused attempts; and every delay the devices waited,
  // normalised by its ceiling (uniform under full jitter). A lean client's attempt counts at the
  // instant its backoff made it due (a load client shares a CPU with thousands of devices and may
  // run the timer late; the lateness is recorded), an SDK device's when it started.
  const first = firstAttemptsAfter(crash, upAt, SDK_BACKOFF);
  const stormSpread = {
    ...describeSpread(first.conditioned, first.predicted, upAt, SLOT_MS, 80),
    ks_position_from_uniform: round(ksUniform(first.position), 3),
    conditioned: first.conditioned.length,
    early: first.early,
    all_largest_slot_share: round(largestSlotShare(first.measured, SLOT_MS), 3),
    ready_largest_slot_share: round(largestSlotShare(crash.flatMap((e) => (e.ready === null ? [] : [e.ready])), SLOT_MS), 3),
  };
  const leanDelays = normalizedDelays(leanCrash, SDK_BACKOFF, 'due');
  const sdkDelays = normalizedDelays(sdkCrash, SDK_BACKOFF, 'started', 1);
  const backoff = {
    lean_delays: leanDelays.length,
    sdk_delays: sdkDelays.length,
    lean_ks_from_uniform: round(ksUniform(leanDelays), 3),
    sdk_ks_from_uniform: round(ksUniform(sdkDelays), 3),
    lean_vs_sdk_ks: round(ksDistance(leanDelays, sdkDelays), 3),
    lean_mean: mean(leanDelays),
    sdk_mean: mean(sdkDelays),
    lean_timer_lateness_ms: percentiles(lateness(leanCrash)),
  };
  const crashTimely = leanAtCrash.lagMs.p99 <= LAG_LIMIT_MS && ownLagAtCrash.p99 <= LAG_LIMIT_MS;

  // 2. Rolling restart of one process: SIGTERM drains it, its devices move to the others.
  const victim = f.gateways()[0] as FleetProcess;
  const victimShare = await connectionsOf(victim);
  await l.mark();
  c.mark();
  const termAt = wallClockMs();
  await f.kill(victim, 'SIGTERM');
  const drainedMs = wallClockMs() - termAt;
  await f.restart(victim);
  await untilAllReady('every device READY after the drain');
  const leanAtRolling = await l.status();
  const rolling = [...(await l.episode()), ...c.episode()];
  const rollingLost = rolling.filter((e) => e.lost !== null);
  const rollingResume = resumeFigures(rolling, termAt);
  const leftAt = rollingLost.map((e) => e.lost as number);
  const askedAfter = rolling.flatMap((e) => (e.reconnectAfter === undefined || e.reconnectAfter === null ? [] : [e.reconnectAfter]));
  const departures = {
    per_second_from_sigterm: histogram(leftAt, termAt, 1000, Math.ceil(DRAIN_WINDOW_MS / 1000) + 2),
    largest_slot_share: round(largestSlotShare(leftAt, SLOT_MS), 3),
    uniform_slot_share: round(SLOT_MS / DRAIN_WINDOW_MS, 3),
    ks_from_uniform_over_window: round(ksUniform(leftAt.map((t) => Math.min(1, Math.max(0, (t - termAt) / DRAIN_WINDOW_MS)))), 3),
    // Where in the window the first and the last tenth left (uniform: 0.1 and 0.9).
    window_q10: round((quantile(leftAt, 0.1) - termAt) / DRAIN_WINDOW_MS, 3),
    window_q90: round((quantile(leftAt, 0.9) - termAt) / DRAIN_WINDOW_MS, 3),
    asked_delays: askedAfter.length,
    asked_ks_from_uniform: round(ksUniform(askedAfter.map((a) => a / DRAIN_WINDOW_MS)), 3),
  };
  const readyAfterRolling = await allReady();
  const sharesAfterRolling = await Promise.all(f.gateways().map(connectionsOf));
  const rollingTimely = leanAtRolling.lagMs.p99 <= LAG_LIMIT_MS;

  // 3. A push after the restarts reaches every device once: a broadcast to all, a unicast to each SDK device.
  const api = f.api();
  const broadcast = await api.pushBroadcast({ title: 'after the restart' });
  const expected = c.ids.map(() => new Set([broadcast.messageId]));
  for (let from = 0; from < c.ids.length; from += 1000) {
    const slice = c.ids.slice(from, from + 1000);
    const r = await api.pushMultiple({ title: 'after the restart {{n}}', targets: slice.map((device, k) => ({ device, values: { n: String(from + k) } })) });
    r.messages.forEach((m, k) => expected[from + k]?.add(m.messageId));
  }
  const leanReceived = await eventually(
    async () => {
      const r = await l.received([broadcast.messageId]);
      return r.never === 0 && c.tally(expected).lost === 0 ? r : undefined;
    },
    sized(30_000, 300_000),
    'the pushes after the restart to arrive',
  ).catch(() => l.received([broadcast.messageId]));
  const tally = c.tally(expected);
  const ackedRows = async () =>
    (
      await f.database.db.query<{ cursors: string; pending: string }>(
        `SELECT (SELECT count(*) FROM devices WHERE app_id = $1 AND broadcast_cursor = $2) AS cursors,
                (SELECT count(*) FROM inbox WHERE status = 'pending') AS pending`,
        [f.app.app, broadcast.messageId],
      )
    ).rows[0]!;
  const acked = await eventually(
    async () => {
      const row = await ackedRows();
      return Number(row.cursors) === DEVICES && Number(row.pending) === 0 ? row : undefined;
    },
    sized(30_000, 300_000),
    'every device to ack',
  ).catch(ackedRows);
  const leanEnd = await l.status();

  const result = record('5-gateway-restart', {
    scenario: '5',
    title: 'Restart the gateways of a node holding 50,000 connections (all crashed together, then one drained)',
    injected: {
      connections: DEVICES,
      lean_devices: LEAN_DEVICES,
      sdk_devices: SDK_DEVICES,
      gateway_processes: GATEWAYS,
      lean_client_processes: l.processes,
      processes_restarted: GATEWAYS + 1,
      node_crash: { signal: 'SIGKILL', processes: GATEWAYS, restart_delay_ms: RESTART_DELAY_MS, refused_for_ms: round(upAt - killAt) },
      rolling_restart: { signal: 'SIGTERM', process: victim.name, its_connections: victimShare, drain_window_ms: DRAIN_WINDOW_MS, drained_in_ms: round(drainedMs) },
      how: `every gateway process SIGKILLed at once and started again ${RESTART_DELAY_MS} ms later; then one process SIGTERMed (drain) and started again`,
    },
    messages_checked: leanReceived.once + leanReceived.never + leanReceived.more + tally.expected,
    lost: leanReceived.never + tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: c.expiredShown,
    crashes: f.crashes() + l.crashed(),
    detail: {
      connect_seconds: round(connectSeconds, 1),
      shares_before: sharesBefore,
      crash: {
        ...crashResume,
        ready_after: readyAfterCrash,
        shares_after: sharesAfterCrash,
        gateways: gatewaysAfterCrash.map(({ closes, loop_lag_ms }) => ({ closes, loop_lag_ms })),
        first_attempt_after_accepting: stormSpread,
        backoff_delays: backoff,
        client_lag_ms: { lean: { p99: round(leanAtCrash.lagMs.p99), max: round(leanAtCrash.lagMs.max) }, sdk_process: ownLagAtCrash },
        timing_asserted: crashTimely,
        lean_reasons: leanAtCrash.reasons,
        sdk_errors: Object.fromEntries(c.errors),
        postgres: { ...postgres, budget: BUDGET },
      },
      rolling: {
        ...rollingResume,
        ready_after: readyAfterRolling,
        shares_after: sharesAfterRolling,
        departures,
        client_lag_ms: { lean: { p99: round(leanAtRolling.lagMs.p99), max: round(leanAtRolling.lagMs.max) } },
        timing_asserted: rollingTimely,
      },
      after_push: {
        lean: leanReceived,
        sdk_shown_once: tally.once,
        sdk_unexpected: tally.unexpected,
        devices_with_cursor_at_broadcast: Number(acked.cursors),
        inbox_rows_left_pending: Number(acked.pending),
      },
    },
  });

  // Every session resumed, within the bound, after each restart; the survivors kept theirs.
  expect(crashResume.lost).toBe(DEVICES);
  expect(crashResume.resumed).toBe(DEVICES);
  expect(readyAfterCrash).toBe(DEVICES);
  expect(crashResume.all_ready_after_ms).toBeLessThan(RESUME_BOUND_MS);
  expect(sharesAfterCrash.reduce((a, b) => a + b, 0)).toBe(DEVICES);
  expect(rollingLost.length).toBe(victimShare);
  expect(rollingResume.resumed).toBe(victimShare);
  expect(readyAfterRolling).toBe(DEVICES);
  // The spread, as chosen: the lean clients' delays are uniform under the SDK's ceilings step by
  // step; the draining gateway's RECONNECT delays are uniform over its window.
  expect(backoff.lean_ks_from_uniform).toBeLessThan(Math.max(0.02, 3 * ksCritical(leanDelays.length)));
  expect(departures.asked_ks_from_uniform).toBeLessThan(Math.max(0.05, 2 * ksCritical(askedAfter.length)));
  // The spread, as it happened (unless the machine was too busy for the clients' clocks): the first
  // attempts after the crash fall where full jitter puts them, with no large share in one slot;
  // the SDK's own delays are uniform too, and like the lean clients'; drained devices leave over
  // the whole window, neither at once nor at its end (a load client that stalls clumps its
  // departures, so their slots are recorded, not asserted).
  expect(first.measured.length).toBe(DEVICES);
  if (crashTimely) {
    expect(first.conditioned.length).toBeGreaterThan(0.9 * DEVICES);
    expect(stormSpread.largest_slot_share).toBeLessThan(Math.min(0.25, 2 * stormSpread.predicted_largest_slot_share + 0.02));
    expect(stormSpread.ks_position_from_uniform).toBeLessThan(0.1);
    expect(stormSpread.ks_distance_from_prediction).toBeLessThan(0.1);
    expect(backoff.sdk_ks_from_uniform).toBeLessThan(Math.max(0.1, 2 * ksCritical(sdkDelays.length)));
    expect(backoff.lean_vs_sdk_ks).toBeLessThan(Math.max(0.1, 2 * ksCritical(leanDelays.length, sdkDelays.length)));
  }
  if (rollingTimely) {
    expect(departures.window_q10).toBeLessThan(0.3);
    expect(departures.window_q90).toBeGreaterThan(0.7);
  }
  // PostgreSQL within the budget.
  expect(postgres.per_unit.transactions).toBeLessThanOrEqual(BUDGET.transactions_per_reconnect);
  expect(postgres.per_unit.rows_written).toBeLessThanOrEqual(BUDGET.rows_written_per_reconnect);
  expect(postgres.per_unit.rows_fetched).toBeLessThanOrEqual(BUDGET.rows_fetched_per_reconnect);
  expect(postgres.per_unit.rows_returned).toBeLessThanOrEqual(BUDGET.rows_returned_per_reconnect);
  expect(postgres.backends.peak_active).toBeLessThanOrEqual(BUDGET.active_statements_per_gateway * GATEWAYS);
  // The pushes afterwards reached everyone once, and everyone acked.
  expect(result).toMatchObject({ lost: 0, duplicates_shown: 0, expired_shown: 0, crashes: 0 });
  expect(leanReceived).toEqual({ once: LEAN_DEVICES, never: 0, more: 0, other: 0 });
  expect(tally.unexpected).toBe(0);
  expect(Number(acked.cursors)).toBe(DEVICES);
  expect(Number(acked.pending)).toBe(0);
  expect(leanEnd.stopped).toBe(0);
}, sized(240_000, 3_600_000));
