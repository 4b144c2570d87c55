/**
 * The analytics benchmark, two measurements on this machine, loopback only, bounded in count and time:
 *
 * 1. Ingestion: BENCH_EVENTS tracking events are published to a JetStream stream of the bench's own
 *    prefix, the way gateways publish them (shared EventPublisher: up to BENCH_EVENTS_PER_MESSAGE
 *    events of one app and kind per message), then the real ingest (analytics/src/ingest.ts) moves
 *    them into the store; events per second = events / time until the store holds the last one.
 * 2. Reports: BENCH_REPORT_EVENTS events of one day are generated inside the store
 *    (INSERT ... SELECT FROM numbers(), through the same materialized views), then the one-day
 *    minute-level report (timeSeries, as the report routes call it, split by platform) is timed,
 *    and a message's funnel over the raw events too.
 *
 * The store is embedded chDB in a temporary folder, or the ClickHouse server at BENCH_CLICKHOUSE_URL
 * (the bench creates and drops its own database there). Run with `npm run bench -- analytics`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  connectNats,
  createLogger,
  createSubjects,
  ensureEventStream,
  EVENT_MESSAGE_MAX_EVENTS,
  EventPublisher,
  int,
  loadConfig,
  str,
  type EventKind,
  type TrackingEvent,
} from '@mps/shared';
import {
  ChdbStore,
  ClickHouseStore,
  loadAnalyticsConfig,
  messageFunnel,
  parseSeriesRequest,
  startIngest,
  timeSeries,
  type EventStore,
} from '@mps/analytics';
import { busyShare, cpuSeconds, machineCpu } from './support/procfs.js';
import { CleanupStack, formatCount, sleep } from './support/util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const APP = 'app_bench';
/** As GATEWAY_TRACK_FLUSH_MS's default. */
const PUBLISH_DELAY_MS = 5;
const DAY_MS = 86_400_000;

export const analyticsBenchSpec = {
  BENCH_EVENTS: int({ min: 1, default: 1_000_000, desc: 'events sent through JetStream into the store' }),
  BENCH_EVENTS_PER_MESSAGE: int({
    min: 1,
    max: EVENT_MESSAGE_MAX_EVENTS,
    default: EVENT_MESSAGE_MAX_EVENTS,
    desc: 'events of one app and kind per JetStream message at most, as GATEWAY_TRACK_BATCH (1: each event alone, as the sender publishes)',
  }),
  BENCH_BATCH_SIZE: int({
    min: 1,
    default: loadAnalyticsConfig({}).ANALYTICS_BATCH_SIZE,
    desc: "ANALYTICS_BATCH_SIZE of the ingest under test (default: the service's)",
  }),
  BENCH_FLUSH_MS: int({ min: 1000, default: 1000, desc: 'ANALYTICS_FLUSH_MS of the ingest under test' }),
  BENCH_REPORT_EVENTS: int({ min: 1, default: 100_000_000, desc: 'events of one day generated in the store for the report queries' }),
  BENCH_REPORT_RUNS: int({ min: 1, default: 15, desc: 'times each report is timed' }),
  BENCH_TIMEOUT_S: int({ min: 10, default: 1800, desc: 'the whole run; it stops with an error past this' }),
  BENCH_CLICKHOUSE_URL: str({ default: '', desc: 'a ClickHouse server, e.g. http://127.0.0.1:8123 (empty: embedded chDB in a temporary folder)' }),
  BENCH_OUTPUT: str({ default: '', desc: 'the result file (default bench/results/analytics.json)' }),
  BENCH_NATS_URL: str({ default: '', desc: 'a NATS server with JetStream (empty: the bench starts its own nats-server on a free port, so that its CPU use is the bench\'s alone)' }),
};

export interface AnalyticsBenchParams {
  events: number;
  eventsPerMessage: number;
  batchSize: number;
  flushMs: number;
  reportEvents: number;
  reportRuns: number;
  timeoutS: number;
  clickhouseUrl: string;
  output: string;
  /** Empty: a nats-server of the bench's own. */
  natsUrl: string;
}

export function paramsFromEnv(env: NodeJS.ProcessEnv = process.env): AnalyticsBenchParams {
  const c = loadConfig(analyticsBenchSpec, env);
  return {
    events: c.BENCH_EVENTS,
    eventsPerMessage: c.BENCH_EVENTS_PER_MESSAGE,
    batchSize: c.BENCH_BATCH_SIZE,
    flushMs: c.BENCH_FLUSH_MS,
    reportEvents: c.BENCH_REPORT_EVENTS,
    reportRuns: c.BENCH_REPORT_RUNS,
    timeoutS: c.BENCH_TIMEOUT_S,
    clickhouseUrl: c.BENCH_CLICKHOUSE_URL,
    output: c.BENCH_OUTPUT || `${ROOT}bench/results/analytics.json`,
    natsUrl: c.BENCH_NATS_URL,
  };
}

export interface Timing {
  /** The first run, before anything is cached. */
  first_ms: number;
  median_ms: number;
  p95_ms: number;
  min_ms: number;
}

export interface AnalyticsResult {
  name: 'analytics';
  date: string;
  machine: { cores: number; memory: number; load_average_at_start: number[] };
  params: {
    events: number;
    /** How the events were published. */
    publish: {
      how: string;
      /** Events of one app and kind per JetStream message at most. */
      max_events_per_message: number;
      /** Longest an event waited for others (as GATEWAY_TRACK_FLUSH_MS). */
      max_delay_ms: number;
    };
    batch_size: number;
    flush_ms: number;
    report_events: number;
    report_runs: number;
    engine: string;
    engine_version: string;
    nats: 'own' | 'given';
  };
  metrics: {
    /** Sustained events per second from JetStream into the store (inserted and acked). */
    events_per_second: number;
    /** Median time of the one-day minute-level report split by platform, over report_events events. */
    report_ms: number;
  };
  ingest: {
    events: number;
    /** JetStream messages that carried them. */
    messages: number;
    events_per_message: number;
    seconds: number;
    publish_events_per_second: number;
    batches: number;
    /** Events acked without a second insert (redelivered while held, then found in the store). */
    duplicates: number;
    /** Share of the machine's CPU time used while ingesting (nats-server, this process and everything else). */
    machine_cpu_busy: number;
    /** CPU time per event of this process (the ingest and, for chDB, the engine) and of nats-server (0 when not the bench's own). */
    cpu_us_per_event: { analytics: number; nats_server: number };
    /**
     * What those two costs allow on this machine's cores with nothing else running: cores / (sum of
     * the costs). An estimate, to read beside events_per_second when the machine was shared.
     */
    cpu_bound_events_per_second: number;
  };
  reports: {
    generate_seconds: number;
    minute_rows: number;
    day_minute_by_platform: Timing;
    day_minute_total: Timing;
    day_hour_by_app_version: Timing;
    message_funnel: Timing & { events: number };
  };
  /** How to read the run: how events were published, and how busy the machine was. */
  notes: string;
}

const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'].find((path) => existsSync(path));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Runs `binary args` under a shell that kills it once this process is gone, even by SIGKILL (a
 * timed-out run must not leave a server behind). The shell prints the binary's pid first.
 */
async function spawnTied(binary: string, args: string[]): Promise<{ shell: ChildProcess; pid: number }> {
  const script = `"$0" "$@" & child=$!; echo $child; trap 'kill $child 2>/dev/null' TERM INT
    while kill -0 ${process.pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; kill $child 2>/dev/null; wait $child`;
  const shell = spawn('/bin/sh', ['-c', script, binary, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pid = await new Promise<number>((resolve, reject) => {
    shell.stdout?.once('data', (data: Buffer) => resolve(Number(data.toString().split('\n')[0])));
    shell.once('exit', () => reject(new Error(`${binary} did not start`)));
  });
  return { shell, pid };
}

/** A nats-server with JetStream of the bench's own: its CPU time is the bench's, its store a temporary folder. */
async function startNatsServer(cleanup: CleanupStack): Promise<{ url: string; pid: number }> {
  if (!NATS_SERVER) throw new Error('nats-server is not installed: install it or set BENCH_NATS_URL');
  const dir = await mkdtemp(join(tmpdir(), 'mps-bench-nats-'));
  cleanup.push('remove the nats-server store', () => rm(dir, { recursive: true, force: true }));
  const port = await freePort();
  const { shell, pid } = await spawnTied(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]);
  cleanup.push('stop the nats-server', async () => {
    if (shell.exitCode !== null) return;
    const exited = new Promise((resolve) => shell.once('exit', resolve));
    process.kill(pid, 'SIGTERM');
    await exited;
  });
  for (let i = 0; ; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return { url: `nats://127.0.0.1:${port}`, pid };
    if (shell.exitCode !== null || i > 100) throw new Error('the bench nats-server did not start');
    await sleep(100);
  }
}

function timing(samples: number[]): Timing {
  const sorted = [...samples.slice(1)].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? samples[0] ?? 0;
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return { first_ms: round(samples[0] ?? 0), median_ms: round(at(0.5)), p95_ms: round(at(0.95)), min_ms: round(sorted[0] ?? samples[0] ?? 0) };
}

async function timed(runs: number, run: () => Promise<unknown>): Promise<Timing> {
  const samples: number[] = [];
  for (let i = 0; i < Math.max(2, runs); i++) {
    const started = performance.now();
    await run();
    samples.push(performance.now() - started);
  }
  return timing(samples);
}

const KINDS: EventKind[] = ['delivered', 'delivered', 'delivered', 'arrived', 'arrived', 'opened', 'sent', 'ignored', 'expired', 'failed'];
const PLATFORMS = ['android', 'ios', 'harmony'];
const CHANNELS = ['socket', 'apns', 'fcm', 'huawei', 'xiaomi'] as const;
const APP_VERSIONS = Array.from({ length: 10 }, (_, i) => `3.${i}.0`);
const OS_VERSIONS = ['12', '13', '14', '15', '16', '17.5', '18.1'];

/** Realistic events, made on demand: 1,000 messages, 100,000 devices, every kind, platform, channel and version. */
function eventMaker(app: string, at: number): (i: number) => TrackingEvent {
  const messages = Array.from({ length: 1000 }, () => randomUUID());
  const devices = Array.from({ length: 100_000 }, () => randomUUID());
  return (i) => ({
    id: randomUUID(),
    kind: KINDS[i % KINDS.length] as EventKind,
    app,
    message: messages[i % messages.length] as string,
    device: devices[(i * 7919) % devices.length] as string,
    channel: CHANNELS[(i >> 3) % CHANNELS.length] as (typeof CHANNELS)[number],
    platform: PLATFORMS[i % PLATFORMS.length] as string,
    osVersion: OS_VERSIONS[i % OS_VERSIONS.length] as string,
    appVersion: APP_VERSIONS[(i >> 2) % APP_VERSIONS.length] as string,
    sdkVersion: '1.4.2',
    pushType: i % 7 === 0 ? 'silent' : 'notification',
    at: at + (i % 60_000),
  });
}

/** The report data: `total` events spread over the day starting at `dayStart`, made by the store itself. */
function generateSql(dayStart: number, offset: number, count: number, total: number): string {
  const list = (values: readonly string[]) => `[${values.map((v) => `'${v}'`).join(', ')}]`;
  const pick = (values: readonly string[], expr: string) => `${list(values)}[1 + (${expr}) % ${values.length}]`;
  return `INSERT INTO events (id, kind, app, message, device, channel, platform, os_version, app_version, sdk_version, push_type, at)
    SELECT
      concat('e', toString(number)),
      ${pick(KINDS, 'intDiv(number, 13)')},
      '${APP}',
      concat('m', toString(number % 1000)),
      concat('d', toString(cityHash64(number) % 5000000)),
      ${pick(CHANNELS, 'intDiv(number, 17)')},
      ${pick(PLATFORMS, 'number')},
      ${pick(OS_VERSIONS, 'intDiv(number, 5)')},
      ${pick(APP_VERSIONS, 'intDiv(number, 3)')},
      '1.4.2',
      if(number % 7 = 0, 'silent', 'notification'),
      toDateTime(${dayStart / 1000} + intDiv(number * 86400, ${total}), 'UTC')
    FROM numbers(${offset}, ${count})`;
}

export async function runAnalyticsBench(params: AnalyticsBenchParams, say: (line: string) => void = () => undefined): Promise<AnalyticsResult> {
  const cleanup = new CleanupStack(say);
  const deadline = Date.now() + params.timeoutS * 1000;
  const checkTime = (what: string) => {
    if (Date.now() > deadline) throw new Error(`the bench ran past BENCH_TIMEOUT_S=${params.timeoutS} during ${what}`);
  };
  const loadAtStart = loadavg();
  const suffix = randomBytes(4).toString('hex');
  try {
    let store: EventStore;
    let engine: string;
    if (params.clickhouseUrl === '') {
      const dir = await mkdtemp(join(tmpdir(), 'mps-bench-chdb-'));
      cleanup.push('remove the chDB folder', () => rm(dir, { recursive: true, force: true }));
      store = new ChdbStore(dir);
      engine = 'chdb';
    } else {
      const admin = new ClickHouseStore(params.clickhouseUrl);
      const database = `mps_bench_${suffix}`;
      await admin.command(`CREATE DATABASE ${database}`);
      cleanup.push('drop the bench database', async () => {
        await admin.command(`DROP DATABASE IF EXISTS ${database}`);
        await admin.close();
      });
      const target = new URL(params.clickhouseUrl);
      target.pathname = `/${database}`;
      store = new ClickHouseStore(target.toString(), { requestTimeoutMs: 600_000 });
      engine = 'clickhouse';
    }
    cleanup.push('close the store', () => store.close());
    await store.init();
    const engineVersion = await store.version();
    say(`store: ${engine} ${engineVersion}`);

    // 1. Ingestion through JetStream.
    // With a server of its own the bench knows its pid; finding a given server's pid reads
    // /proc/net/tcp, which takes minutes on a machine holding hundreds of thousands of sockets.
    const own = params.natsUrl === '' ? await startNatsServer(cleanup) : undefined;
    const natsUrl = own?.url ?? params.natsUrl;
    const nc = await connectNats(natsUrl, `bench-analytics-${suffix}`);
    cleanup.push('close the NATS connection', () => nc.close());
    const subjects = createSubjects(`bench${suffix}`);
    const jsm = await jetstreamManager(nc);
    await ensureEventStream(jsm, subjects);
    cleanup.push('delete the bench stream', async () => {
      await jsm.streams.delete(subjects.eventStream);
    });
    const js = jetstream(nc);
    const makeEvent = eventMaker(`${APP}_ingest`, Date.now());
    say(`publishing ${formatCount(params.events)} events to ${subjects.eventStream}, up to ${params.eventsPerMessage} to a message`);
    const publishStarted = performance.now();
    const publishErrors: unknown[] = [];
    const publisher = new EventPublisher(js, subjects, {
      maxEvents: params.eventsPerMessage,
      maxDelayMs: PUBLISH_DELAY_MS,
      onError: (error) => publishErrors.push(error),
    });
    // A window of events in flight at a time, as many gateways would have.
    const WINDOW = Math.max(4000, 40 * params.eventsPerMessage);
    for (let i = 0; i < params.events; i += WINDOW) {
      for (let j = i; j < Math.min(i + WINDOW, params.events); j++) publisher.publish(makeEvent(j));
      await publisher.settle();
      if (publishErrors.length > 0) throw new Error(`${publishErrors.length} event messages were not published`, { cause: publishErrors[0] });
      checkTime('publishing');
    }
    const publishSeconds = (performance.now() - publishStarted) / 1000;
    const publishedMessages = Number((await jsm.streams.info(subjects.eventStream)).state.messages);

    const natsPid = own?.pid;
    const natsBefore = natsPid === undefined ? 0 : await cpuSeconds(natsPid);
    const cpuBefore = await machineCpu();
    const processBefore = process.cpuUsage();
    const ingestStarted = performance.now();
    const ingest = await startIngest({
      nc,
      js,
      store,
      subjects,
      log: createLogger('bench-ingest', 'warn'),
      batchSize: params.batchSize,
      flushMs: params.flushMs,
    });
    cleanup.push('stop the ingest', () => ingest.stop());
    // Done when the store holds every event: acks alone could count a redelivered copy twice.
    const storedCount = async () =>
      Number((await store.select<{ n: string }>(`SELECT count() AS n FROM events WHERE app = '${APP}_ingest'`))[0]?.n ?? 0);
    let lastSaid = 0;
    for (let stored = 0; stored < params.events; ) {
      await sleep(ingest.stats().inserted < params.events ? 20 : 200);
      if (ingest.stats().inserted + ingest.stats().duplicates >= params.events) stored = await storedCount();
      checkTime('ingestion');
      if (performance.now() - lastSaid > 5000) {
        lastSaid = performance.now();
        say(`ingested ${formatCount(ingest.stats().inserted)} of ${formatCount(params.events)}`);
      }
    }
    const ingestSeconds = (performance.now() - ingestStarted) / 1000;
    const cpuAfter = await machineCpu();
    const processCpu = process.cpuUsage(processBefore);
    const natsSeconds = natsPid === undefined ? 0 : (await cpuSeconds(natsPid)) - natsBefore;
    const stats = ingest.stats();
    const [stored] = await store.select<{ n: string; ids: string }>(`SELECT count() AS n, uniqExact(id) AS ids FROM events WHERE app = '${APP}_ingest'`);
    if (Number(stored?.n) !== params.events || Number(stored?.ids) !== params.events) {
      throw new Error(`the store holds ${stored?.n} ingested rows of ${stored?.ids} events, not ${params.events}`);
    }
    await ingest.stop();
    const eventsPerSecond = Math.round(params.events / ingestSeconds);
    say(`ingest: ${formatCount(eventsPerSecond)} events/s (${formatCount(stats.batches)} batches)`);

    // 2. Reports over reportEvents events of one day.
    const dayStart = Math.floor(Date.now() / DAY_MS) * DAY_MS - 2 * DAY_MS;
    const chunk = 10_000_000;
    const generateStarted = performance.now();
    for (let offset = 0; offset < params.reportEvents; offset += chunk) {
      await store.command(generateSql(dayStart, offset, Math.min(chunk, params.reportEvents - offset), params.reportEvents));
      checkTime('generating the report data');
      say(`generated ${formatCount(Math.min(offset + chunk, params.reportEvents))} of ${formatCount(params.reportEvents)} report events`);
    }
    const generateSeconds = (performance.now() - generateStarted) / 1000;
    const [minuteRows] = await store.select<{ n: string }>(`SELECT count() AS n FROM events_minute WHERE app = '${APP}'`);

    const day = { app: APP, from: dayStart, to: dayStart + DAY_MS };
    const byPlatform = parseSeriesRequest({ ...day, granularity: 'minute', by: ['platform'] });
    const check = await timeSeries(store, parseSeriesRequest({ ...day, granularity: 'day' }));
    const counted = Object.values(check.series[0]?.counts ?? {}).reduce((sum, values) => sum + (values?.[0] ?? 0), 0);
    if (counted !== params.reportEvents) throw new Error(`the day report counts ${counted} events, not ${params.reportEvents}`);

    const runs = params.reportRuns;
    const dayMinuteByPlatform = await timed(runs, () => timeSeries(store, byPlatform));
    checkTime('the reports');
    const dayMinuteTotal = await timed(runs, () => timeSeries(store, parseSeriesRequest({ ...day, granularity: 'minute' })));
    const dayHourByVersion = await timed(runs, () => timeSeries(store, parseSeriesRequest({ ...day, granularity: 'hour', by: ['appVersion'] })));
    // The bench's messages are not UUIDs; messageFunnel takes the store's values as they are.
    const funnel = await timed(runs, () => messageFunnel(store, { app: APP, message: 'm7' }));
    checkTime('the reports');
    say(`one-day minute report by platform: median ${dayMinuteByPlatform.median_ms} ms over ${formatCount(params.reportEvents)} events`);

    const cpuBusy = busyShare(cpuBefore, cpuAfter);
    const analyticsUs = (processCpu.user + processCpu.system) / params.events;
    const natsUs = (natsSeconds * 1e6) / params.events;
    const round1 = (n: number) => Math.round(n * 10) / 10;
    const result: AnalyticsResult = {
      name: 'analytics',
      date: new Date().toISOString(),
      machine: { cores: availableParallelism(), memory: totalmem(), load_average_at_start: loadAtStart.map((l) => Math.round(l * 100) / 100) },
      params: {
        events: params.events,
        publish: {
          how:
            params.eventsPerMessage === 1
              ? 'one event per JetStream message, as the sender publishes'
              : 'as gateways publish: shared EventPublisher, events of one app and kind gathered into one JetStream message',
          max_events_per_message: params.eventsPerMessage,
          max_delay_ms: PUBLISH_DELAY_MS,
        },
        batch_size: params.batchSize,
        flush_ms: params.flushMs,
        report_events: params.reportEvents,
        report_runs: params.reportRuns,
        engine,
        engine_version: engineVersion,
        nats: params.natsUrl === '' ? 'own' : 'given',
      },
      metrics: { events_per_second: eventsPerSecond, report_ms: dayMinuteByPlatform.median_ms },
      ingest: {
        events: params.events,
        messages: publishedMessages,
        events_per_message: Math.round((params.events / Math.max(1, publishedMessages)) * 10) / 10,
        seconds: Math.round(ingestSeconds * 1000) / 1000,
        publish_events_per_second: Math.round(params.events / publishSeconds),
        batches: stats.batches,
        duplicates: stats.duplicates,
        machine_cpu_busy: Math.round(cpuBusy * 1000) / 1000,
        cpu_us_per_event: { analytics: round1(analyticsUs), nats_server: round1(natsUs) },
        cpu_bound_events_per_second: Math.round((availableParallelism() * 1e6) / Math.max(0.001, analyticsUs + natsUs)),
      },
      reports: {
        generate_seconds: Math.round(generateSeconds * 10) / 10,
        minute_rows: Number(minuteRows?.n ?? 0),
        day_minute_by_platform: dayMinuteByPlatform,
        day_minute_total: dayMinuteTotal,
        day_hour_by_app_version: dayHourByVersion,
        message_funnel: { ...funnel, events: Math.round(params.reportEvents / 1000) },
      },
      notes: notesOf(params, publishedMessages, loadAtStart, cpuBusy),
    };
    await mkdir(dirname(params.output), { recursive: true });
    await writeFile(params.output, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await cleanup.run();
  }
}

function notesOf(params: AnalyticsBenchParams, messages: number, load: number[], cpuBusy: number): string {
  const cores = availableParallelism();
  const published =
    params.eventsPerMessage === 1
      ? `Events were published one per JetStream message (${formatCount(messages)} messages), as the sender publishes them.`
      : `Events were published as gateways publish them: up to ${params.eventsPerMessage} events of one app and kind per JetStream message, ` +
        `held up to ${PUBLISH_DELAY_MS} ms (${formatCount(params.events)} events in ${formatCount(messages)} messages). ` +
        'Messages of one event (as the sender publishes) are read as well: BENCH_EVENTS_PER_MESSAGE=1 measures those.';
  const [now = 0] = load;
  const shared =
    now > cores
      ? ` The machine was busy with other work: load average ${load.map((l) => l.toFixed(2)).join(' / ')} at the start on ${cores} cores, ` +
        `${Math.round(cpuBusy * 100)}% of its CPU busy during the ingest; ingest.cpu_bound_events_per_second is what the measured CPU costs allow with the machine to itself.`
      : ` Load average at the start ${load.map((l) => l.toFixed(2)).join(' / ')} on ${cores} cores.`;
  return published + shared;
}

export async function main(): Promise<void> {
  const params = paramsFromEnv();
  const result = await runAnalyticsBench(params, (line) => process.stdout.write(`[analytics] ${line}\n`));
  process.stdout.write(`${JSON.stringify(result.metrics)}\nwritten to ${params.output}\n`);
}
