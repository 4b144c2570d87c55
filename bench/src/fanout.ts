/**
 * fanout: how fast the gateways get messages to connected devices (issue #12, item 2).
 * (a) one broadcast to N devices: time until the last device has it, beside a bare uWS.js publish
 *     server holding as many sockets in the same run (interleaved, so both see the same machine);
 * (b) a sustained stream of broadcasts plus targeted pushes: deliveries per second, at offered rates
 *     that rise until the gateways fall behind.
 * First at BENCH_FANOUT_DEVICES on one gateway process, then at BENCH_FANOUT_LARGE_DEVICES across
 * processes. Devices are the lean receivers of src/loadgen (they count frames, they do not decode
 * them). Writes results/fanout.json; `npm run bench -- fanout`; bench/README.md lists the knobs.
 */
import { execFileSync } from 'node:child_process';
import { int, loadConfig, str, url } from '@mps/shared';
import { deviceId } from './loadgen/identity.js';
import { startPeer } from './peers/servers.js';
import { messageFrame, timeBroadcasts, runStream, type BroadcastTimings, type StreamStep } from './support/fanout-measure.js';
import { Fleet, type ConnectResult } from './support/fleet.js';
import { pidListeningOn } from './support/procfs.js';
import { ROOT, type RunFrom } from './support/processes.js';
import { guardRun } from './support/guard.js';
import { gitCommit, machineInfo, round, writeResult } from './support/results.js';
import { broadcastPublisher, startService } from './support/service.js';
import { raiseSocketLimits } from './support/sysctl.js';
import { CleanupStack, formatCount } from './support/util.js';

const spec = {
  BENCH_FANOUT_DEVICES: int({ min: 1, default: 18_000, desc: 'devices on one gateway process (the first size)' }),
  BENCH_FANOUT_LARGE_DEVICES: int({ min: 0, default: 100_000, desc: 'devices of the second size, across gateway processes (0: skip it)' }),
  BENCH_FANOUT_REPEAT: int({ min: 1, default: 9, desc: 'single broadcasts timed per path (the machine is shared: the median of several)' }),
  BENCH_FANOUT_OFFERED: str({ default: '250000,500000,1000000,1500000,2000000,3000000', desc: 'offered deliveries per second of the stream steps' }),
  BENCH_FANOUT_TARGETED_PER_S: int({ min: 0, default: 2000, desc: 'targeted pushes per second inside the stream' }),
  BENCH_FANOUT_STREAM_S: int({ min: 1, default: 8, desc: 'measured seconds of each stream step (after 2 s of warm-up)' }),
  BENCH_FANOUT_TICK_MS: int({ min: 1, default: 10, desc: 'the publisher pacing tick' }),
  BENCH_IN_FLIGHT: int({ min: 1, default: 200, desc: 'handshakes under way at once per receiver process' }),
  BENCH_RUN_FROM: str({ choices: ['source', 'dist'], default: 'source', desc: 'source (tsx) or dist (tsc -b output)' }),
  BENCH_TIMEOUT_S: int({ min: 30, default: 2400, desc: 'the whole run' }),
  DATABASE_URL: url({ default: 'postgres://postgres@127.0.0.1:5432/mps', desc: 'the PostgreSQL server' }),
  NATS_URL: url({ default: 'nats://127.0.0.1:4222', desc: 'the NATS server' }),
};

const SOCKETS_PER_GATEWAY = 18_500;
const SOCKETS_PER_ADDRESS = 500;

interface SizeResult {
  devices: number;
  /** The machine is shared: its load when this size started. */
  load_average_at_start: number[];
  gateways: number;
  receivers: number;
  connect: ConnectResult;
  broadcast_via_nats: BroadcastTimings;
  broadcast_via_api?: BroadcastTimings;
  uws_raw?: { connect: ConnectResult; broadcast: BroadcastTimings };
  stream: StreamStep[];
  best_sustained_deliveries_per_second: number;
  peak_deliveries_per_second: number;
}

export async function main(): Promise<void> {
  const c = loadConfig(spec, process.env);
  const runFrom = c.BENCH_RUN_FROM as RunFrom;
  const offered = c.BENCH_FANOUT_OFFERED.split(',').map(Number).filter((x) => x > 0);
  const log = (line: string) => console.log(line);
  const check = guardRun('fanout', c.BENCH_TIMEOUT_S);
  const machine = machineInfo();
  if (runFrom === 'dist') {
    log('building (tsc -b)');
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-b', 'gateway', 'control-plane', 'bench'], { cwd: ROOT, stdio: 'inherit' });
  }
  const limits = await raiseSocketLimits(log);
  const sizes: SizeResult[] = [];
  const failures: string[] = [];
  try {
    const sizesWanted = [c.BENCH_FANOUT_DEVICES, ...(c.BENCH_FANOUT_LARGE_DEVICES > c.BENCH_FANOUT_DEVICES ? [c.BENCH_FANOUT_LARGE_DEVICES] : [])];
    for (const [i, devices] of sizesWanted.entries()) {
      try {
        sizes.push(await runSize(devices, i === 0, { ...c, offered, runFrom, log, check }));
      } catch (error) {
        // The first size is the result; a larger one that fails is reported beside it.
        if (i === 0) throw error;
        failures.push(`${devices} devices: ${(error as Error).message.split('\n')[0]}`);
        log(`the ${devices}-device size failed: ${(error as Error).message}`);
      }
    }
  } finally {
    await limits.restore();
  }

  const first = sizes[0]!;
  const best = sizes.reduce((a, b) => (b.best_sustained_deliveries_per_second > a.best_sustained_deliveries_per_second ? b : a));
  const ours18k = first.broadcast_via_nats.median_ms;
  const raw18k = first.uws_raw?.broadcast.median_ms ?? NaN;
  const metrics = {
    deliveries_per_second: best.best_sustained_deliveries_per_second,
    devices: best.devices,
    last_delivery_ms: best.broadcast_via_nats.median_ms,
    broadcast_18k_last_ms: ours18k,
    uws_raw_broadcast_18k_last_ms: raw18k,
    broadcast_18k_ratio_to_uws_raw: round(ours18k / raw18k, 3),
    broadcast_18k_via_api_last_ms: first.broadcast_via_api?.median_ms ?? null,
    peak_deliveries_per_second: Math.max(...sizes.map((s) => s.peak_deliveries_per_second)),
    largest_devices: Math.max(...sizes.map((s) => s.devices)),
  };
  const targets = {
    deliveries_per_second: { target: '> 1,000,000', met: metrics.deliveries_per_second > 1_000_000 },
    broadcast_18k_last_ms: { target: `<= 1.25 x uws_raw (${round(raw18k * 1.25, 1)} ms)`, met: ours18k <= raw18k * 1.25 },
  };
  const notes = explain(sizes, metrics, targets, limits.changes.length > 0 ? limits.changes : limits.notes, failures);
  const result = {
    name: 'fanout',
    date: new Date().toISOString(),
    machine,
    commit: gitCommit(),
    params: {
      devices: c.BENCH_FANOUT_DEVICES,
      large_devices: c.BENCH_FANOUT_LARGE_DEVICES,
      repeat: c.BENCH_FANOUT_REPEAT,
      offered_deliveries_per_second: offered,
      targeted_per_second: c.BENCH_FANOUT_TARGETED_PER_S,
      stream_seconds: c.BENCH_FANOUT_STREAM_S,
      tick_ms: c.BENCH_FANOUT_TICK_MS,
      in_flight_per_receiver: c.BENCH_IN_FLIGHT,
      run_from: runFrom,
      message_bytes: messageFrame().byteLength,
      system_limits: limits.changes,
    },
    metrics,
    targets,
    sizes,
    notes,
  };
  const path = await writeResult('fanout', result);
  console.log(`\nwritten to ${path}\n\n${notes}\n`);
  console.log(
    `fanout: ${formatCount(metrics.deliveries_per_second)} deliveries/s sustained at ${formatCount(metrics.devices)} devices; ` +
      `one broadcast to ${formatCount(first.devices)}: last device after ${ours18k} ms (raw uWS.js ${raw18k} ms, ratio ${metrics.broadcast_18k_ratio_to_uws_raw})`,
  );
}

interface RunContext {
  BENCH_FANOUT_REPEAT: number;
  BENCH_FANOUT_TARGETED_PER_S: number;
  BENCH_FANOUT_STREAM_S: number;
  BENCH_FANOUT_TICK_MS: number;
  BENCH_IN_FLIGHT: number;
  DATABASE_URL: string;
  NATS_URL: string;
  offered: number[];
  runFrom: RunFrom;
  log: (line: string) => void;
  check: () => void;
}

async function runSize(devices: number, withPeerAndApi: boolean, c: RunContext): Promise<SizeResult> {
  const { log, check } = c;
  const cleanup = new CleanupStack(log);
  const loadAverage = machineInfo().load_average;
  try {
    const gateways = Math.ceil(devices / SOCKETS_PER_GATEWAY);
    const receivers = Math.max(2, Math.ceil(devices / 19_000));
    log(`\n== ${formatCount(devices)} devices, ${gateways} gateway process(es), ${receivers} receiver processes ==`);
    const service = await startService(
      { devices, gateways, runFrom: c.runFrom, databaseUrl: c.DATABASE_URL, natsUrl: c.NATS_URL, controlPlane: withPeerAndApi, log, check },
      cleanup,
    );
    const fleet = await Fleet.start({
      runFrom: c.runFrom,
      endpoint: { protocol: 'mps', host: '127.0.0.1', port: service.port, path: '/v1/device', app: service.app, seed: service.seed, topic: '' },
      sockets: devices,
      processes: receivers,
      inFlight: c.BENCH_IN_FLIGHT,
      socketsPerAddress: SOCKETS_PER_ADDRESS,
    });
    cleanup.push('stop the receivers', () => fleet.kill());
    const connect = await fleet.connect(check, log);
    log(`connected ${formatCount(connect.held)} devices in ${connect.seconds} s (${formatCount(connect.connects_per_second)}/s)`);

    let raw: { fleet: Fleet; server: Awaited<ReturnType<typeof startPeer>>; connect: ConnectResult } | undefined;
    if (withPeerAndApi) {
      const server = await startPeer('uws_raw', c.runFrom);
      cleanup.push('stop the uWS.js server', () => server.stop());
      const rawFleet = await Fleet.start({
        runFrom: c.runFrom,
        endpoint: server.endpoint,
        sockets: devices,
        processes: receivers,
        inFlight: c.BENCH_IN_FLIGHT,
        socketsPerAddress: SOCKETS_PER_ADDRESS,
      });
      cleanup.push('stop the uWS.js receivers', () => rawFleet.kill());
      const rawConnect = await rawFleet.connect(check);
      log(`raw uWS.js: connected ${formatCount(rawConnect.held)} sockets in ${rawConnect.seconds} s`);
      raw = { fleet: rawFleet, server, connect: rawConnect };
    }

    const publishBroadcasts = broadcastPublisher(service);
    const viaNats = (frame: Uint8Array) => publishBroadcasts([frame]);
    const timing = { repeat: 1, pauseMs: 300, timeoutMs: 30_000 };
    const samples = { nats: [] as number[], api: [] as number[], raw: [] as number[] };
    const incomplete = { nats: 0, api: 0, raw: 0 };
    // Interleaved, so that a busier moment of the shared machine does not fall on one side only.
    for (let i = 0; i < c.BENCH_FANOUT_REPEAT; i++) {
      check();
      const n = await timeBroadcasts(fleet, viaNats, timing);
      samples.nats.push(...n.samples_ms);
      incomplete.nats += n.incomplete;
      if (raw) {
        const publisher = raw.server.publisher;
        const r = await timeBroadcasts(raw.fleet, (frame) => publisher.publish([frame]), timing);
        samples.raw.push(...r.samples_ms);
        incomplete.raw += r.incomplete;
      }
      const api = service.controlPlane?.api;
      if (api) {
        const a = await timeBroadcasts(
          fleet,
          async (frame) => {
            void frame;
            const response = await api.post('/v1/push/broadcast', { title: 'bench', body: 'fan-out bench message via the API' });
            if (response.status !== 202) throw new Error(`broadcast API answered ${response.status}: ${response.body}`);
          },
          timing,
        );
        samples.api.push(...a.samples_ms);
        incomplete.api += a.incomplete;
      }
      log(
        `broadcast ${i + 1}/${c.BENCH_FANOUT_REPEAT}: ours via NATS ${samples.nats.at(-1)} ms` +
          (raw ? `, raw uWS.js ${samples.raw.at(-1)} ms` : '') +
          (service.controlPlane ? `, ours via the API ${samples.api.at(-1)} ms` : ''),
      );
    }
    const summarize = (values: number[], missing: number): BroadcastTimings => {
      const sorted = [...values].sort((a, b) => a - b);
      return { samples_ms: values, median_ms: sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN, incomplete: missing };
    };

    // The stream: raw receivers are idle meanwhile (their server only answers pings).
    const natsPid = await pidListeningOn(Number(new URL(c.NATS_URL).port || 4222), 'nats-server');
    const deviceSubjects = Array.from({ length: devices }, (_, i) => service.subjects.device(service.app, deviceId(service.seed, i)));
    let nextTarget = 0;
    const stream: StreamStep[] = [];
    for (const rate of c.offered) {
      check();
      const broadcastsPerSecond = Math.max(0, (rate - c.BENCH_FANOUT_TARGETED_PER_S) / devices);
      const step = await runStream(fleet, {
        broadcastsPerSecond,
        targetedPerSecond: c.BENCH_FANOUT_TARGETED_PER_S,
        seconds: c.BENCH_FANOUT_STREAM_S,
        warmupSeconds: 2,
        tickMs: c.BENCH_FANOUT_TICK_MS,
        publishBroadcasts,
        publishTargeted: (count) => {
          for (let i = 0; i < count; i++) {
            service.nc.publish(deviceSubjects[nextTarget]!, messageFrame());
            nextTarget = (nextTarget + 1) % devices;
          }
        },
        cpuOf: {
          gateways: service.gateways.map((g) => g.pid),
          receivers: fleet.pids,
          'nats-server': natsPid === undefined ? [] : [natsPid],
          bench: [process.pid],
        },
      });
      stream.push(step);
      log(
        `stream offered ${formatCount(step.offered_deliveries_per_second)}/s (${step.broadcasts_per_second} broadcasts/s + ${step.targeted_per_second} targeted/s): ` +
          `${formatCount(step.delivered_per_second)} delivered/s, ${Math.round(step.delivered_fraction * 1000) / 10}% within 15 s of the end, cpu ${JSON.stringify(step.cpu)}`,
      );
      // Past the sustained rates the gateway falls behind and coalesces more broadcasts into each
      // write: delivered/s may still grow. The ramp ends once it stops growing or the backlog no
      // longer drains within 15 s of the end.
      const previous = stream.at(-2)?.delivered_per_second ?? 0;
      if (!step.sustained && (step.delivered_per_second < previous * 1.05 || step.delivered_fraction < 0.99)) break;
    }
    const sustained = stream.filter((s) => s.sustained).map((s) => s.delivered_per_second);
    return {
      devices,
      load_average_at_start: loadAverage,
      gateways,
      receivers,
      connect,
      broadcast_via_nats: summarize(samples.nats, incomplete.nats),
      ...(service.controlPlane && { broadcast_via_api: summarize(samples.api, incomplete.api) }),
      ...(raw && { uws_raw: { connect: raw.connect, broadcast: summarize(samples.raw, incomplete.raw) } }),
      stream,
      best_sustained_deliveries_per_second: Math.max(0, ...sustained),
      peak_deliveries_per_second: Math.max(0, ...stream.map((s) => s.delivered_per_second)),
    };
  } finally {
    await cleanup.run();
  }
}

/** What the run says, in words: which targets were met, and what bound the stream. */
function explain(
  sizes: SizeResult[],
  metrics: { deliveries_per_second: number; broadcast_18k_last_ms: number; uws_raw_broadcast_18k_last_ms: number },
  targets: Record<string, { target: string; met: boolean }>,
  limits: unknown,
  failures: string[],
): string {
  const notes: string[] = [
    'Broadcasts are published on NATS exactly as the control plane publishes them after its transaction (a broadcast envelope on the app\'s broadcast subject, ' +
      'audience all, no condition), so the figures are the gateway\'s fan-out path: NATS -> gateway -> uWS publish -> sockets. ' +
      '`broadcast_via_api` times the whole path from a signed POST /v1/push/broadcast (stored in PostgreSQL, then published) at the first size. ' +
      'Targeted pushes in the stream are published on device subjects (one device each, round robin), as the control plane does after storing them. ' +
      'Receivers count WebSocket frames without decoding them and do not ack.',
    `Targets: deliveries per second ${targets.deliveries_per_second!.met ? 'met' : 'NOT met'} (${Math.round(metrics.deliveries_per_second)} vs > 1,000,000); ` +
      `one broadcast to ${sizes[0]!.devices} ${targets.broadcast_18k_last_ms!.met ? 'met' : 'NOT met'} (${metrics.broadcast_18k_last_ms} ms vs raw uWS.js ${metrics.uws_raw_broadcast_18k_last_ms} ms in the same run).`,
  ];
  for (const size of sizes) {
    const last = size.stream.at(-1);
    if (!last) continue;
    const cpu = Object.entries(last.cpu)
      .map(([name, share]) => `${name} ${Math.round(share * 100)}%`)
      .join(', ');
    notes.push(
      `${size.devices} devices on ${size.gateways} gateway process(es): the stream ${last.sustained ? 'kept up at every offered rate' : `ended at ${last.offered_deliveries_per_second}/s offered (${last.delivered_per_second}/s delivered, ${Math.round(last.delivered_fraction * 1000) / 10}% of it all within 15 s of the end)`}; ` +
        `best sustained ${size.best_sustained_deliveries_per_second}/s, peak ${size.peak_deliveries_per_second}/s; ` +
        `CPU in the last step (share of one core; machine_busy is of all cores): ${cpu}.`,
    );
  }
  if (failures.length > 0) notes.push(`Sizes that did not complete: ${failures.join('; ')}.`);
  notes.push(`System limits: ${JSON.stringify(limits)}.`);
  return notes.join(' ');
}
