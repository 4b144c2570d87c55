/**
 * Analytics on a real ClickHouse server (Debian's clickhouse-server, 18.16): the test starts its own
 * server (own config, data folder and ports on 127.0.0.1), kills it in the middle of an ingestion
 * and starts it again, and compares every report with embedded chDB's for the same events.
 * Skipped, saying why, when the clickhouse-server binary is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, encodeEvent, encodeEvents, ensureEventStream, jetstreamManagerFor, newId, type EventKind, type TrackingEvent } from '@mps/shared';
import {
  ChdbStore,
  ClickHouseStore,
  EventBatch,
  messageFunnelByChannel,
  parseSeriesRequest,
  startIngest,
  timeSeries,
  type EventStore,
  type Ingest,
} from '@mps/analytics';
import { writeClickHouseConfig } from './support/clickhouse.js';
import { createTestNats, eventually, freePort, ROOT, type TestNats } from './support/services.js';

const BINARY = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin']
  .map((dir) => join(dir, 'clickhouse-server'))
  .find((path) => existsSync(path));
if (!BINARY) {
  console.warn('analytics-clickhouse: SKIPPED: clickhouse-server is not installed (apt-get install clickhouse-server; make test installs it)');
}

const log = createLogger('analytics', 'silent');

/** A clickhouse-server of this test's own: config, data and ports, killed and restarted at will. */
class TestClickHouse {
  /** The shell that ties the server to this process (the server dies with it, even by SIGKILL). */
  private shell: ChildProcess | undefined;
  private pid = 0;
  private output = '';
  readonly url: string;

  private constructor(
    private readonly dir: string,
    private readonly httpPort: number,
  ) {
    this.url = `http://127.0.0.1:${httpPort}`;
  }

  static async create(): Promise<TestClickHouse> {
    const dir = await mkdtemp(join(tmpdir(), 'mps-clickhouse-'));
    const [httpPort, tcpPort] = [await freePort(), await freePort()];
    await writeClickHouseConfig(dir, httpPort, tcpPort);
    const server = new TestClickHouse(dir, httpPort);
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const script = `"$0" "$@" & child=$!; echo "pid $child"; trap 'kill $child 2>/dev/null' TERM INT
      while kill -0 ${process.pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; kill $child 2>/dev/null; wait $child`;
    const shell = spawn('/bin/sh', ['-c', script, BINARY as string, `--config-file=${join(this.dir, 'config.xml')}`], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.shell = shell;
    this.output = '';
    shell.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    shell.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    await eventually(
      async () => {
        if (shell.exitCode !== null) throw new Error(`clickhouse-server exited:\n${this.output}`);
        this.pid = Number(/^pid (\d+)/m.exec(this.output)?.[1] ?? 0);
        const response = await fetch(`${this.url}/ping`).catch(() => undefined);
        return response?.ok ? true : undefined;
      },
      30_000,
      'clickhouse-server to answer',
    );
  }

  /** Kills the server without letting it finish anything (an outage, not a shutdown). */
  async kill(): Promise<void> {
    const shell = this.shell;
    if (!shell || shell.exitCode !== null) return;
    const exited = new Promise((resolve) => shell.once('exit', resolve));
    process.kill(this.pid, 'SIGKILL');
    await exited;
  }

  async destroy(): Promise<void> {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function event(app: string, kind: EventKind, overrides: Partial<TrackingEvent> = {}): TrackingEvent {
  return {
    id: randomUUID(),
    kind,
    app,
    message: randomUUID(),
    device: randomUUID(),
    channel: 'socket',
    platform: 'android',
    osVersion: '14',
    appVersion: '2.3.0',
    sdkVersion: '0.1.0',
    pushType: 'notification',
    at: Date.now(),
    ...overrides,
  };
}

/**
 * Raw rows once merged, distinct events, and what each aggregate table counts (the per-dimension
 * ones in total). A write completed after a crash stores some events twice in `events` until
 * ClickHouse merges them; everything reads distinct ids meanwhile.
 */
async function counts(store: EventStore, app: string) {
  const [raw] = await store.select<{ rows: string; ids: string }>(`SELECT count() AS rows, uniqExact(id) AS ids FROM events FINAL WHERE app = '${app}'`);
  const sum = async (table: string, where = '') =>
    Number((await store.select<{ n: string }>(`SELECT sum(events) AS n FROM ${table} WHERE app = '${app}' ${where}`))[0]?.n);
  return {
    rows: Number(raw?.rows),
    ids: Number(raw?.ids),
    minute: await sum('events_minute'),
    hour: await sum('events_hour'),
    minuteBy: await sum('events_minute_by', "AND dimension = ''"),
    hourBy: await sum('events_hour_by', "AND dimension = ''"),
  };
}
const all = (n: number) => ({ rows: n, ids: n, minute: n, hour: n, minuteBy: n, hourBy: n });

/**
 * The SQL of every panel and variable of the Grafana dashboard, with the Altinity plugin's macros
 * ($from, $to, $interval) and the $app variable filled in as Grafana would.
 */
async function dashboardQueries(app: string, from: number, to: number): Promise<string[]> {
  const dashboard = JSON.parse(await readFile(join(ROOT, 'infra/grafana/mps-analytics.json'), 'utf8')) as {
    panels: { targets: { query: string }[] }[];
    templating: { list: { query: string }[] };
  };
  const queries = [...dashboard.templating.list.map((v) => v.query), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.query))];
  return queries.map((q) =>
    q.replaceAll('$app', app).replaceAll('$from', String(from / 1000)).replaceAll('$to', String(to / 1000)).replaceAll('$interval', '60'),
  );
}

async function checkDashboard(store: EventStore): Promise<void> {
  const app = `app_dash${randomBytes(3).toString('hex')}`;
  const at = Date.UTC(2026, 10, 22, 10, 0, 30);
  const events = (['sent', 'delivered', 'arrived', 'opened', 'failed'] as const).map((kind) =>
    event(app, kind, { at, channel: kind === 'sent' || kind === 'failed' ? 'fcm' : 'socket' }),
  );
  await store.insert(EventBatch.of(events));
  const queries = await dashboardQueries(app, at - 3_600_000, at + 3_600_000);
  expect(queries.length).toBeGreaterThan(10);
  for (const sql of queries) {
    const result = await store.select<Record<string, unknown>>(sql);
    expect(result.length, sql).toBeGreaterThan(0);
  }
}

// One chDB for the file: libchdb holds one data folder per process.
let chdbDir: string;
let chdb: ChdbStore;
beforeAll(async () => {
  chdbDir = await mkdtemp(join(tmpdir(), 'mps-chdb-'));
  chdb = new ChdbStore(chdbDir);
  await chdb.init();
});
afterAll(async () => {
  await chdb?.close();
  if (chdbDir) await rm(chdbDir, { recursive: true, force: true });
});

describe('the Grafana dashboard on embedded chDB', () => {
  it('runs every panel query', async () => {
    await checkDashboard(chdb);
  });
});

describe.skipIf(!BINARY)('analytics on a ClickHouse server', () => {
  let server: TestClickHouse;
  let serverStore: ClickHouseStore;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    server = await TestClickHouse.create();
    serverStore = new ClickHouseStore(server.url, { requestTimeoutMs: 5000 });
    await serverStore.init();
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await serverStore?.close();
    await server?.destroy();
  });

  const ingestInto = async (store: EventStore, nats: TestNats, options: { batchSize: number; ackWaitMs?: number }): Promise<Ingest> => {
    const ingest = await startIngest({ nc: nats.nc, js: jetstream(nats.nc), store, subjects: nats.subjects, log, flushMs: 1000, ...options });
    cleanups.push(() => ingest.stop());
    return ingest;
  };
  const testNats = async () => {
    const nats = await createTestNats();
    await ensureEventStream(await jetstreamManagerFor(nats.nc), nats.subjects);
    cleanups.push(() => nats.cleanup());
    return nats;
  };
  const publish = async (nats: TestNats, events: TrackingEvent[]) => {
    const js = jetstream(nats.nc);
    await Promise.all(events.map((e) => js.publish(nats.subjects.event(e.app, e.kind), encodeEvent(e), { msgID: e.id })));
  };
  /** As gateways publish them: up to `per` events (of one app and kind) to a message. */
  const publishBatched = async (nats: TestNats, events: TrackingEvent[], per: number) => {
    const js = jetstream(nats.nc);
    const messages = [];
    for (let i = 0; i < events.length; i += per) messages.push(events.slice(i, i + per));
    await Promise.all(messages.map((m) => js.publish(nats.subjects.event(m[0]?.app as string, m[0]?.kind as EventKind), encodeEvents(m), { msgID: newId() })));
  };

  it('runs on ClickHouse 18.16 without LowCardinality, and so do the Grafana dashboard queries', async () => {
    expect(await serverStore.version()).toMatch(/^18\.16\./);
    const [events] = await serverStore.select<{ statement: string }>('SHOW CREATE TABLE events');
    expect(events?.statement).not.toMatch(/LowCardinality/);
    await checkDashboard(serverStore);
  });

  it('loses nothing and counts nothing twice when the server is killed during ingestion and started again', async () => {
    const nats = await testNats();
    const ingest = await ingestInto(serverStore, nats, { batchSize: 2000, ackWaitMs: 6000 });
    const app = 'app_outage';
    const total = 12_000;
    const rounds = 12;
    const publishing = (async () => {
      for (let i = 0; i < rounds; i++) {
        const round = Array.from({ length: total / rounds }, () => event(app, i % 3 === 0 ? 'delivered' : 'arrived'));
        // One event to a message (the sender) and many (gateways), by turns.
        await (i % 2 === 0 ? publish(nats, round) : publishBatched(nats, round, 100));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    await eventually(async () => ((await counts(serverStore, app)).rows > 0 ? true : undefined), 10_000, 'the first rows');
    await server.kill();
    await new Promise((r) => setTimeout(r, 3000));
    expect(ingest.stats().failedAttempts).toBeGreaterThan(0);
    await server.start();
    await publishing;

    // Messages held through the outage may also be redelivered and acked twice: wait for the rows.
    await eventually(async () => ((await counts(serverStore, app)).ids === total ? true : undefined), 40_000, 'every event stored');
    // A batch cut short by the kill is completed by its retry or redelivery: wait for that too.
    await eventually(
      async () => (JSON.stringify(await counts(serverStore, app)) === JSON.stringify(all(total)) ? true : undefined),
      20_000,
      'the aggregates',
    ).catch(() => undefined);
    expect(await counts(serverStore, app)).toEqual(all(total));
  }, 90_000);

  it('counts a batch redelivered after its first write stopped between two tables in the tables it missed, and only there', async () => {
    // Issue #7, made certain: the server refuses the batch's per-hour counts (a column whose default
    // throws for its app), after its raw rows and whatever it writes before those counts.
    const nats = await testNats();
    const app = 'app_partial';
    await serverStore.command(`ALTER TABLE events_hour ADD COLUMN refuse UInt8 DEFAULT throwIf(app = '${app}')`);
    const first = await startIngest({
      nc: nats.nc,
      js: jetstream(nats.nc),
      store: serverStore,
      subjects: nats.subjects,
      log,
      flushMs: 1000,
      batchSize: 100,
      ackWaitMs: 2000,
      stopGraceMs: 0,
    });
    await publish(nats, Array.from({ length: 50 }, (_, i) => event(app, i % 2 ? 'opened' : 'arrived')));
    await eventually(async () => (first.stats().failedAttempts > 0 ? true : undefined), 10_000, 'a failed write');
    await first.stop();
    await serverStore.command('ALTER TABLE events_hour DROP COLUMN refuse');

    const second = await ingestInto(serverStore, nats, { batchSize: 100, ackWaitMs: 2000 });
    await eventually(async () => (JSON.stringify(await counts(serverStore, app)) === JSON.stringify(all(50)) ? true : undefined), 15_000).catch(
      () => undefined,
    );
    expect(await counts(serverStore, app)).toEqual(all(50));
    expect(second.stats()).toMatchObject({ inserted: 0, recounted: 50, duplicates: 0 });
  }, 30_000);

  it('gives the same reports as embedded chDB for the same events', async () => {
    // Three days of a few messages, over every kind, channel, platform and push type.
    const app = 'app_engines';
    const start = Date.UTC(2026, 10, 20, 22, 30);
    const messages = Array.from({ length: 5 }, () => randomUUID());
    const devices = Array.from({ length: 60 }, () => randomUUID());
    const platforms = ['android', 'ios', 'harmony'];
    const channels = ['socket', 'apns', 'fcm', 'huawei', 'xiaomi'] as const;
    const kinds: EventKind[] = ['sent', 'delivered', 'arrived', 'opened', 'ignored', 'expired', 'revoked', 'failed'];
    const events: TrackingEvent[] = [];
    for (let i = 0; i < 3000; i++) {
      const device = i % devices.length;
      events.push(
        event(app, kinds[(i * 7) % kinds.length] as EventKind, {
          message: messages[i % messages.length],
          device: devices[device],
          platform: platforms[device % 3],
          // The last one checks that both insert formats keep awkward values intact.
          appVersion: device % 4 === 3 ? "2.3\tbeta's\\x\n" : `2.${device % 4}.0`,
          channel: channels[(i >> 3) % channels.length],
          pushType: i % 5 === 0 ? 'silent' : 'notification',
          at: start + ((i * 97_000) % (3 * 86_400_000)),
        }),
      );
    }
    const [forChdb, forServer] = [await testNats(), await testNats()];
    const ingests = [await ingestInto(chdb, forChdb, { batchSize: 700 }), await ingestInto(serverStore, forServer, { batchSize: 700 })];
    await Promise.all([publish(forChdb, events), publish(forServer, events)]);
    await eventually(async () => (ingests.every((i) => i.stats().acked === events.length) ? true : undefined), 20_000, 'both engines ingested');

    const requests = [
      { app, granularity: 'minute', from: start, to: start + 86_400_000, by: ['platform'] },
      { app, granularity: 'hour', from: start, to: start + 3 * 86_400_000, by: ['appVersion', 'channel'], where: { platform: ['ios', 'harmony'] } },
      { app, granularity: 'day', from: start, to: start + 4 * 86_400_000, by: ['pushType'], kinds: ['delivered', 'opened'] },
      { app, granularity: 'hour', from: start, to: start + 2 * 86_400_000, message: messages[2], by: ['channel'] },
    ];
    for (const request of requests) {
      const [a, b] = await Promise.all([timeSeries(chdb, parseSeriesRequest(request)), timeSeries(serverStore, parseSeriesRequest(request))]);
      expect(b).toEqual(a);
      expect(a.series.length).toBeGreaterThan(0);
    }
    for (const funnel of [{ app, message: messages[0] as string }, { app, messages }]) {
      const [a, b] = await Promise.all([messageFunnelByChannel(chdb, funnel), messageFunnelByChannel(serverStore, funnel)]);
      expect(b).toEqual(a);
    }

    // And both are right: the daily counts add up to the events, per kind.
    const days = await timeSeries(serverStore, parseSeriesRequest({ app, granularity: 'day', from: start, to: start + 4 * 86_400_000 }));
    for (const kind of kinds) {
      const expected = events.filter((e) => e.kind === kind).length;
      expect((days.series[0]?.counts[kind] ?? []).reduce((x, y) => x + y, 0)).toBe(expected);
    }
    const first = events.filter((e) => e.message === messages[0]);
    const { funnel } = await messageFunnelByChannel(serverStore, { app, message: messages[0] as string });
    expect(funnel.delivered).toBe(new Set(first.filter((e) => e.kind === 'delivered').map((e) => e.device)).size);
  }, 60_000);
});
