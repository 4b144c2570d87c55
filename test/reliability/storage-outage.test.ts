/**
 * Scenario 7: PostgreSQL crashes and restarts, then ClickHouse is down for a while, under steady
 * pushes (a multiple push to every device, several a second). Delivery continues or the API refuses
 * cleanly (an error, and the push accepted later on a retry with its business id); nothing the API
 * accepted is lost; and once everything is back, what analytics counts as delivered equals what
 * the devices acked (the inbox rows marked delivered), task by task. PostgreSQL and ClickHouse are
 * the scenario's own servers (a PostgreSQL 15 cluster, Debian's clickhouse-server 18.16).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { eventually } from '../support/services.js';
import { record, sized } from './record.js';
import { send } from './support/http.js';
import { createDatabaseOn, Devices, startFleet, type Fleet } from './support/fleet.js';
import { startOwnClickHouse, startOwnPostgres, type OwnClickHouse, type OwnPostgres } from './support/servers.js';

const DEVICES = sized(8, 100);
const TASKS_PER_S = sized(4, 10);
const PG_DOWN_MS = sized(3000, 30_000);
const CH_DOWN_MS = sized(6000, 180_000);
const CALM_MS = sized(3000, 20_000);

let pgServer: OwnPostgres;
let clickhouse: OwnClickHouse | undefined;
let fleet: Fleet;
let devices: Devices;

beforeAll(async () => {
  pgServer = await startOwnPostgres();
  clickhouse = await startOwnClickHouse();
  if (!clickhouse) throw new Error('clickhouse-server is not installed (make test installs it)');
  fleet = await startFleet({
    gateways: 1,
    database: await createDatabaseOn(pgServer.url),
    analytics: true,
    analyticsEnv: { CLICKHOUSE_URL: clickhouse.url, ANALYTICS_FLUSH_MS: '1000' },
    env: { RATE_LIMIT_PER_S: '100000' },
  });
  devices = new Devices(() => fleet.gatewayUrl(), fleet.app.app);
  await devices.connect(DEVICES);
}, 180_000);

afterAll(async () => {
  devices?.close();
  await fleet?.stop();
  await clickhouse?.stop();
  await pgServer?.stop();
});

it('delivers or refuses cleanly through a ClickHouse outage, and counts what was acked', async () => {
  await runOutage({ postgres: false, clickhouse: true });
}, sized(300_000, 3_600_000));

// Every service process survives the restart: the database pool drops a connection that broke
// while idle (shared/src/db.ts) instead of dying of the unhandled 'error' event.
it('delivers or refuses cleanly through a PostgreSQL crash and restart, and counts what was acked', async () => {
  await runOutage({ postgres: true, clickhouse: false });
}, sized(300_000, 3_600_000));

/** The scenario's run: calm, then each outage asked for, then calm; records under 7-storage-outage. */
async function runOutage(outages: { postgres: boolean; clickhouse: boolean }): Promise<void> {
  const f = fleet;
  onTestFailed(() => console.error(f.output().slice(-20_000)));
  devices.forget();
  const sign = { keyId: f.app.keyId, secret: f.app.secret };
  type Task = { businessId: string; taskId?: string; ids?: string[]; refusedWith?: string; phase: string };
  const tasks: Task[] = [];
  const inFlight: Promise<void>[] = [];
  let phase = 'calm';

  const pushOne = (task: Task) =>
    send(f.apiUrl, 'POST', '/v1/push/multiple', { title: `t ${tasks.length}`, businessId: task.businessId, targets: devices.ids.map((device) => ({ device })) }, sign)
      .then((a) => {
        if (a.status === 202 || a.status === 200) {
          task.taskId = a.body.taskId as string;
          task.ids = (a.body.messages as { messageId: string }[]).map((m) => m.messageId);
        } else task.refusedWith = `${a.status} ${a.body.error?.code}`;
      })
      .catch((error: Error) => {
        task.refusedWith = `network: ${error.message}`;
      });

  let pushing = true;
  const pusher = (async () => {
    while (pushing) {
      const task: Task = { businessId: randomUUID(), phase };
      tasks.push(task);
      inFlight.push(pushOne(task));
      await new Promise((r) => setTimeout(r, 1000 / TASKS_PER_S));
    }
  })();

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(CALM_MS);
  if (outages.postgres) {
    phase = 'postgres down';
    // An immediate shutdown: the server stops without a checkpoint and recovers on start, as after a crash.
    await pgServer.kill('SIGQUIT');
    await sleep(PG_DOWN_MS);
    await pgServer.start();
    phase = 'after postgres';
    await sleep(CALM_MS);
  }
  if (outages.clickhouse) {
    phase = 'clickhouse down';
    await clickhouse!.kill();
    await sleep(CH_DOWN_MS);
    await clickhouse!.start();
    phase = 'after clickhouse';
    await sleep(CALM_MS);
  }
  pushing = false;
  await pusher;
  await Promise.all(inFlight);

  // The business server retries what was refused, with its business id.
  const refusals: Record<string, number> = {};
  for (const task of tasks.filter((t) => !t.taskId)) {
    const key = `${task.phase}: ${task.refusedWith}`;
    refusals[key] = (refusals[key] ?? 0) + 1;
    for (let attempt = 0; attempt < 20 && !task.taskId && f.crashes() === 0; attempt++) {
      await pushOne(task);
      if (!task.taskId) await sleep(1000);
    }
  }
  const expected = devices.ids.map(() => new Set<string>());
  for (const task of tasks) task.ids?.forEach((id, i) => expected[i]!.add(id));
  await devices.settle(expected, f.crashes() === 0 ? sized(60_000, 600_000) : 5000);
  const tally = devices.tally(expected);

  // Acked deliveries (inbox) against what analytics counts, task by task, once both have settled.
  const accepted = tasks.filter((t) => t.taskId);
  const acked = async (taskId: string) =>
    Number(
      (
        await f.database.db.query<{ n: string }>(
          `SELECT count(*) AS n FROM inbox i JOIN messages m ON m.id = i.message_id WHERE m.task_id = $1 AND i.status = 'delivered'`,
          [taskId],
        )
      ).rows[0]?.n,
    );
  const api = f.api();
  const mismatches = await eventually(
    async () => {
      const wrong: string[] = [];
      for (const task of accepted) {
        const [inbox, report] = await Promise.all([acked(task.taskId!), api.request<{ counts: { delivered: number } }>('GET', `/v1/reports/tasks/${task.taskId}`)]);
        if (inbox !== DEVICES || report.counts.delivered !== inbox) wrong.push(`${task.taskId} (${task.phase}): acked ${inbox}, counted ${report.counts.delivered}`);
      }
      return wrong.length === 0 ? wrong : undefined;
    },
    f.crashes() === 0 ? sized(90_000, 900_000) : 1000,
    'analytics to count every acked delivery',
  ).catch(async () => {
    const wrong: string[] = [];
    for (const task of accepted) {
      const inbox = await acked(task.taskId!);
      const report = await api.request<{ counts: { delivered: number } }>('GET', `/v1/reports/tasks/${task.taskId}`).catch((e: Error) => ({ counts: { delivered: -1 }, e }));
      if (inbox !== DEVICES || report.counts.delivered !== inbox) wrong.push(`${task.taskId} (${task.phase}): acked ${inbox}, counted ${report.counts.delivered}`);
    }
    return wrong;
  });

  record(outages.postgres ? '7-postgres-restart' : '7-clickhouse-outage', {
    scenario: '7',
    title: outages.postgres ? 'PostgreSQL crash and restart under steady pushes' : 'ClickHouse down under steady pushes',
    injected: { ...(outages.postgres && { postgres_down_ms: PG_DOWN_MS }), ...(outages.clickhouse && { clickhouse_down_ms: CH_DOWN_MS }), tasks: tasks.length, devices: DEVICES, tasks_per_s: TASKS_PER_S },
    messages_checked: tally.expected,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: devices.expiredShown,
    crashes: f.crashes(),
    detail: {
      refused_first_time: Object.values(refusals).reduce((a, b) => a + b, 0),
      refusals,
      never_accepted: tasks.length - accepted.length,
      delivered_counted_vs_acked_mismatches: mismatches.slice(0, 20),
      device_reconnects: devices.reconnects,
      sdk_close_reasons: Object.fromEntries(devices.closes),
    },
  });
  expect(f.crashes()).toBe(0);
  expect(tasks.length - accepted.length).toBe(0);
  expect({ lost: tally.lost, duplicates: tally.duplicates, unexpected: tally.unexpected }).toEqual({ lost: 0, duplicates: 0, unexpected: 0 });
  expect(mismatches).toEqual([]);
}
