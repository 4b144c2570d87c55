/**
 * latency: targeted pushes at fixed rates through the signed API (POST /v1/push/simple, each request
 * signed anew) to connected devices; end-to-end latency from the moment each push was due to be sent
 * until its device had it (issue #12, item 3). Coordinated omission is avoided by sending on a fixed
 * schedule whatever the answers do, and measuring from the scheduled time: a push that waits for a
 * free connection, or behind a slow server, waits on the clock. A push not delivered by the end of
 * its step counts as slower than everything delivered. The rates rise until p99 breaks badly.
 * Writes results/latency.json; `npm run bench -- latency`; bench/README.md lists the knobs.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { int, loadConfig, str, url } from '@mps/shared';
import { deviceId } from './loadgen/identity.js';
import { stampText, wallClockMs } from './loadgen/stamp.js';
import { Fleet } from './support/fleet.js';
import { ROOT, type RunFrom } from './support/processes.js';
import { guardRun } from './support/guard.js';
import { ascending, gitCommit, machineInfo, resultsDir, round, writeResult } from './support/results.js';
import { startService, type SignedApi } from './support/service.js';
import { CleanupStack, formatCount, sleep } from './support/util.js';

/** The API bench's figure, as last measured (api.json beside this result), in words. */
function apiRate(): string {
  try {
    const api = JSON.parse(readFileSync(join(resultsDir(), 'api.json'), 'utf8')) as { metrics?: { signed_pushes_per_second?: number } };
    const rate = api.metrics?.signed_pushes_per_second;
    return rate === undefined ? 'a limited number of' : `about ${formatCount(rate)}`;
  } catch {
    return 'a limited number of';
  }
}

const spec = {
  BENCH_LATENCY_DEVICES: int({ min: 1, default: 1000, desc: 'connected devices the pushes go to, round robin' }),
  BENCH_LATENCY_RATES: str({ default: '100,200,300,400,500,750,1000,2000,5000,10000', desc: 'pushes per second of the steps, in order' }),
  BENCH_LATENCY_SECONDS: int({ min: 1, default: 10, desc: 'seconds each rate is held' }),
  BENCH_LATENCY_CONNECTIONS: int({ min: 1, default: 64, desc: 'keep-alive HTTP connections to the control plane' }),
  BENCH_LATENCY_DRAIN_S: int({ min: 1, default: 10, desc: 'seconds a step waits for its last deliveries' }),
  BENCH_LATENCY_STOP_P99_MS: int({ min: 1, default: 1000, desc: 'no higher rate once a step\'s p99 is above this' }),
  BENCH_RUN_FROM: str({ choices: ['source', 'dist'], default: 'source', desc: 'source (tsx) or dist (tsc -b output)' }),
  BENCH_TIMEOUT_S: int({ min: 30, default: 1200, desc: 'the whole run' }),
  DATABASE_URL: url({ default: 'postgres://postgres@127.0.0.1:5432/mps', desc: 'the PostgreSQL server' }),
  NATS_URL: url({ default: 'nats://127.0.0.1:4222', desc: 'the NATS server' }),
};

const TARGET_RATE = 10_000;
const TARGET_P99_MS = 10;

export interface LatencyStep {
  rate_per_second: number;
  scheduled: number;
  /** Pushes the API accepted (202), answered with another status or an error, and left unanswered by the end of the step. */
  accepted: number;
  rejected: number;
  unanswered: number;
  delivered: number;
  /** Achieved send rate: requests started per second (behind schedule when the client itself lags). */
  sent_per_second: number;
  p50_ms: number | null;
  p90_ms: number | null;
  p99_ms: number | null;
  p999_ms: number | null;
  max_ms: number | null;
  /** API answer times from the scheduled send, for comparison. */
  api_p50_ms: number | null;
  api_p99_ms: number | null;
  /** Every delivered push's latency in ms (0.01 ms resolution), in arrival order: the raw samples behind the percentiles. */
  samples_ms: number[];
  errors: Record<string, number>;
}

/** A percentile over all scheduled pushes: an undelivered one is slower than any delivered. */
function percentile(sorted: number[], scheduled: number, q: number): number | null {
  if (scheduled === 0) return null;
  const rank = Math.max(0, Math.ceil(q * scheduled) - 1);
  return rank < sorted.length ? round(sorted[rank]!, 2) : null;
}

async function runStep(api: SignedApi, fleet: Fleet, devices: string[], rate: number, seconds: number, drainS: number, firstSeq: number): Promise<LatencyStep> {
  const count = rate * seconds;
  const latencies: number[] = [];
  const apiTimes: number[] = [];
  const errors: Record<string, number> = {};
  let accepted = 0;
  let rejected = 0;
  fleet.onStamps((samples) => {
    for (let i = 0; i < samples.length; i += 2) {
      const seq = samples[i]!;
      if (seq >= firstSeq && seq < firstSeq + count) latencies.push(round(samples[i + 1]!, 2));
    }
  });
  const start = wallClockMs() + 50;
  const pending: Promise<void>[] = [];
  let next = 0;
  while (next < count) {
    const now = wallClockMs();
    // Everything due by now goes out now, stamped with the time it was due.
    while (next < count && start + (next * 1000) / rate <= now) {
      const intended = start + (next * 1000) / rate;
      const seq = firstSeq + next;
      const body = { target: { device: devices[next % devices.length]! }, title: 'latency', body: stampText(seq, intended) };
      pending.push(
        api.post('/v1/push/simple', body).then(
          (response) => {
            apiTimes.push(wallClockMs() - intended);
            if (response.status === 202) accepted++;
            else {
              rejected++;
              errors[`http ${response.status}`] = (errors[`http ${response.status}`] ?? 0) + 1;
            }
          },
          (error: Error) => {
            rejected++;
            errors[error.message] = (errors[error.message] ?? 0) + 1;
          },
        ),
      );
      next++;
    }
    await sleep(1);
  }
  const sendSeconds = (wallClockMs() - start) / 1000;
  const drainUntil = Date.now() + drainS * 1000;
  while (latencies.length < count && Date.now() < drainUntil) await sleep(50);
  await Promise.race([Promise.all(pending), sleep(Math.max(0, drainUntil - Date.now()))]);
  await fleet.refresh();
  await sleep(300); // the receivers' last stamps
  fleet.onStamps(() => undefined);
  const sorted = ascending(latencies);
  const sortedApi = ascending(apiTimes);
  return {
    rate_per_second: rate,
    scheduled: count,
    accepted,
    rejected,
    unanswered: count - accepted - rejected,
    delivered: latencies.length,
    sent_per_second: Math.round(count / Math.max(sendSeconds, 1e-3)),
    p50_ms: percentile(sorted, count, 0.5),
    p90_ms: percentile(sorted, count, 0.9),
    p99_ms: percentile(sorted, count, 0.99),
    p999_ms: percentile(sorted, count, 0.999),
    max_ms: latencies.length === count ? round(sorted.at(-1) ?? NaN, 2) : null,
    api_p50_ms: percentile(sortedApi, count, 0.5),
    api_p99_ms: percentile(sortedApi, count, 0.99),
    samples_ms: latencies,
    // A copy: requests still open are failed when the run ends, after this step.
    errors: { ...errors },
  };
}

export async function main(): Promise<void> {
  const c = loadConfig(spec, process.env);
  const runFrom = c.BENCH_RUN_FROM as RunFrom;
  const rates = c.BENCH_LATENCY_RATES.split(',').map(Number).filter((x) => x > 0);
  const log = (line: string) => console.log(line);
  const check = guardRun('latency', c.BENCH_TIMEOUT_S);
  const machine = machineInfo();
  if (runFrom === 'dist') {
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-b', 'gateway', 'control-plane', 'bench'], { cwd: ROOT, stdio: 'inherit' });
  }
  const cleanup = new CleanupStack(log);
  const steps: LatencyStep[] = [];
  let stopReason = 'every rate ran';
  try {
    const service = await startService(
      { devices: c.BENCH_LATENCY_DEVICES, gateways: 1, runFrom, databaseUrl: c.DATABASE_URL, natsUrl: c.NATS_URL, controlPlane: true, apiConnections: c.BENCH_LATENCY_CONNECTIONS, log, check },
      cleanup,
    );
    const api = service.controlPlane!.api;
    const devices = Array.from({ length: c.BENCH_LATENCY_DEVICES }, (_, i) => deviceId(service.seed, i));
    const fleet = await Fleet.start({
      runFrom,
      endpoint: { protocol: 'mps', host: '127.0.0.1', port: service.port, path: '/v1/device', app: service.app, seed: service.seed, topic: '' },
      sockets: c.BENCH_LATENCY_DEVICES,
      processes: 1,
      inFlight: 200,
      socketsPerAddress: 500,
      stamps: true,
    });
    cleanup.push('stop the receivers', () => fleet.kill());
    const connect = await fleet.connect(check);
    log(`connected ${formatCount(connect.held)} devices`);
    // Warm-up (not recorded): JIT, connection pools, prepared statements.
    await runStep(api, fleet, devices, rates[0]!, 2, 3, 0);
    let seq = 1_000_000;
    for (const rate of rates) {
      check();
      const step = await runStep(api, fleet, devices, rate, c.BENCH_LATENCY_SECONDS, c.BENCH_LATENCY_DRAIN_S, seq);
      seq += step.scheduled;
      steps.push(step);
      log(
        `${formatCount(rate)}/s: sent ${formatCount(step.sent_per_second)}/s, delivered ${step.delivered}/${step.scheduled}, ` +
          `p50 ${step.p50_ms ?? '-'} ms, p99 ${step.p99_ms ?? '-'} ms, p999 ${step.p999_ms ?? '-'} ms (API answer p99 ${step.api_p99_ms ?? '-'} ms)` +
          (step.rejected ? `, ${step.rejected} rejected ${JSON.stringify(step.errors)}` : '') +
          (step.unanswered ? `, ${step.unanswered} unanswered ${c.BENCH_LATENCY_DRAIN_S} s after the step` : '') +
          ` [load ${machineInfo().load_average.join(' ')}]`,
      );
      const controlPlane = service.controlPlane!;
      if (controlPlane.process.exitCode !== null || controlPlane.process.signalCode !== null) {
        const last = controlPlane.output().trim().split('\n').slice(-5).join(' | ');
        stopReason = `stopped after ${rate}/s: the control plane exited (${controlPlane.process.exitCode ?? controlPlane.process.signalCode}) during the step: ${last}`;
        log(stopReason);
        break;
      }
      if (step.p99_ms === null || step.p99_ms > c.BENCH_LATENCY_STOP_P99_MS) {
        stopReason = `stopped after ${rate}/s: p99 ${step.p99_ms === null ? 'not reached (more than 1% of the pushes undelivered)' : `${step.p99_ms} ms`} is past ${c.BENCH_LATENCY_STOP_P99_MS} ms`;
        break;
      }
    }
  } finally {
    await cleanup.run();
  }

  const good = steps.filter((s) => s.p99_ms !== null && s.p99_ms < TARGET_P99_MS);
  const headline = good.at(-1) ?? steps[0];
  const atTarget = steps.find((s) => s.rate_per_second === TARGET_RATE);
  const metrics = {
    rate_per_second: headline?.rate_per_second ?? 0,
    p50_ms: headline?.p50_ms ?? null,
    p99_ms: headline?.p99_ms ?? null,
    p999_ms: headline?.p999_ms ?? null,
    /** The highest rate whose p99 stayed under 10 ms (0: none). */
    max_rate_p99_under_10ms: good.at(-1)?.rate_per_second ?? 0,
    target_rate_p99_ms: atTarget?.p99_ms ?? null,
  };
  const met = metrics.max_rate_p99_under_10ms >= TARGET_RATE;
  const notes = [
    'Each push: a signed POST /v1/push/simple to one control-plane process (signature, nonce claim in NATS KV, one PostgreSQL transaction storing the message and its inbox row), ' +
      'then a NATS publish on the device subject, the gateway, and the device socket; devices are lean receivers that find the stamp (sequence and scheduled time) in the raw frame and do not ack.',
    `The metrics are the step at the highest rate whose p99 stayed under ${TARGET_P99_MS} ms (or the lowest rate when none did): ${metrics.rate_per_second}/s.`,
    met
      ? `Target met: p99 under ${TARGET_P99_MS} ms at ${TARGET_RATE}/s.`
      : `Target NOT met: p99 < ${TARGET_P99_MS} ms at ${formatCount(TARGET_RATE)}/s` +
        (atTarget ? ` (p99 ${atTarget.p99_ms ?? 'beyond the step'} ms there).` : ` was not reached: ${stopReason}.`) +
        ` The bound is the API: one control-plane process does ${apiRate()} signed pushes per second here (api.json), and past that rate pushes queue and latency grows with the backlog.`,
    `Load average at the start: ${machine.load_average.join(' ')} (the machine is shared).`,
  ];
  const result = {
    name: 'latency',
    date: new Date().toISOString(),
    machine,
    commit: gitCommit(),
    params: {
      devices: c.BENCH_LATENCY_DEVICES,
      rates,
      seconds_per_rate: c.BENCH_LATENCY_SECONDS,
      http_connections: c.BENCH_LATENCY_CONNECTIONS,
      drain_s: c.BENCH_LATENCY_DRAIN_S,
      run_from: runFrom,
      control_plane_processes: 1,
      gateway_processes: 1,
    },
    metrics,
    targets: { p99_ms: { target: `< ${TARGET_P99_MS} ms at ${formatCount(TARGET_RATE)} pushes/s`, met } },
    stop_reason: stopReason,
    steps,
    notes: notes.join(' '),
  };
  const path = await writeResult('latency', result);
  console.log(`\nwritten to ${path}\n\n${result.notes}\n`);
  console.log(
    `latency: p50 ${metrics.p50_ms} ms, p99 ${metrics.p99_ms} ms, p999 ${metrics.p999_ms} ms at ${formatCount(metrics.rate_per_second)} pushes/s ` +
      `(highest rate with p99 < ${TARGET_P99_MS} ms: ${formatCount(metrics.max_rate_p99_under_10ms)}/s; target ${formatCount(TARGET_RATE)}/s ${met ? 'met' : 'NOT met'})`,
  );
}
