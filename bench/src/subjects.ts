/**
 * What per-device NATS subjects cost at the bench's connection counts: one subscription per device
 * (and per bound user) held by a gateway's connection, as the gateway's hub makes them.
 *
 * 1. One nats-server: a subscriber process (the gateway's side: nats.js subscriptions with a
 *    callback and a hub entry each) adds subscriptions in steps; after each step, the RSS and heap
 *    of the subscriber and the RSS of nats-server.
 * 2. A three-node cluster (full mesh of routes): the same subscriber on node 1; after each step, the
 *    RSS of every node (each holds the whole cluster's interest), and how long the new interest took
 *    to reach the other nodes when the step's subscriptions appeared at once (as when that many
 *    devices reconnect together), read from each node's /subsz.
 * 3. The alternative, routing by gateway (one subject per gateway, a presence map device -> gateway):
 *    the cost of the presence map is a JetStream KV write per connect; their rate on the cluster,
 *    with replicas 3.
 *
 * Writes bench/results/subjects.json (or BENCH_RESULTS_DIR). Everything runs on loopback, with its
 * own nats-servers in a temporary folder, and stops by itself (BENCH_TIMEOUT_S).
 *
 *   npm run bench -- subjects                                   # 10k, 50k, 100k subscriptions
 *   BENCH_SUBJECTS_STEPS=1000,2000 npm run bench -- subjects    # a quick one
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { availableParallelism, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { createSubjects, int, loadConfig, makeValidator, str } from '@mps/shared';
import { rssBytes } from './support/procfs.js';
import { sleep } from './support/util.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

const counts = makeValidator<number[]>((input) => {
  const steps = input.split(',').map((s) => Number(s.trim()));
  if (steps.length === 0 || steps.some((n, i) => !Number.isInteger(n) || n < 1 || (i > 0 && n <= (steps[i - 1] as number)))) {
    throw new Error(`not increasing positive integers: "${input}"`);
  }
  return steps;
});

const spec = {
  BENCH_SUBJECTS_STEPS: counts({ default: [10_000, 50_000, 100_000], desc: 'subscription counts to measure at, increasing, comma-separated' }),
  BENCH_SUBJECTS_KV_PUTS: int({ min: 100, default: 20_000, desc: 'presence-map writes (KV puts) measured on the cluster' }),
  BENCH_TIMEOUT_S: int({ min: 30, default: 900, desc: 'the run stops (and cleans up) after this many seconds' }),
  BENCH_RESULTS_DIR: str({ default: '', desc: 'where subjects.json goes (empty: bench/results)' }),
  NATS_SERVER: str({ default: '/usr/sbin/nats-server', desc: 'the nats-server binary' }),
};

// --- the subscriber: a gateway's interest layer, in a process of its own ---------------------------

/** Local interest as the gateway's hub keeps it: a NATS subscription with a callback, and a set of sockets. */
async function subscriber(url: string): Promise<void> {
  const nc = await connect({ servers: url, name: `bench-subscriber-${process.pid}` });
  const subjects = createSubjects('bench');
  const interest = new Map<string, { sockets: Set<object>; subscription: Subscription }>();
  let delivered = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, arg] = line.split(' ');
    if (command === 'add') {
      const target = Number(arg);
      const started = performance.now();
      // All at once, in one turn of the event loop: a reconnect storm as the gateway sees it.
      for (let i = interest.size; i < target; i++) {
        const subject = subjects.device('app_bench', `dev${i}`);
        const sockets = new Set<object>([{ device: i }]);
        const subscription = nc.subscribe(subject, { callback: () => void (delivered += sockets.size) });
        interest.set(subject, { sockets, subscription });
      }
      const issuedMs = performance.now() - started;
      await nc.flush();
      const flushedMs = performance.now() - started;
      gc?.();
      const memory = process.memoryUsage();
      process.stdout.write(`${JSON.stringify({ subscriptions: interest.size, issued_ms: issuedMs, flushed_ms: flushedMs, rss: memory.rss, heap_used: memory.heapUsed, delivered })}\n`);
    } else if (command === 'probe') {
      // A message on the last subject: proves the interest is live end to end.
      await nc.request(subjects.device('app_bench', `dev${interest.size - 1}`), new Uint8Array(0), { timeout: 1 }).catch(() => undefined);
      process.stdout.write(`${JSON.stringify({ delivered })}\n`);
    }
  }
  await nc.close();
}

interface SubscriberReport {
  subscriptions: number;
  issued_ms: number;
  flushed_ms: number;
  rss: number;
  heap_used: number;
}

interface Subscriber {
  pid: number;
  /** Sends the command and resolves with the report. */
  add(target: number): Promise<SubscriberReport>;
  stop(): Promise<void>;
}

function startSubscriber(url: string): Subscriber {
  const child = spawn(process.execPath, ['--expose-gc', '--conditions=source', '--import', 'tsx', SELF, '--subscriber', url], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  return {
    pid: child.pid as number,
    add: async (target) => {
      const answer = next();
      child.stdin.write(`add ${target}\n`);
      return JSON.parse(await answer) as SubscriberReport;
    },
    stop: () => stopChild(child, () => child.stdin.end()),
  };
}

// --- nats-servers -------------------------------------------------------------------------------------

interface NatsNode {
  name: string;
  port: number;
  monitor: number;
  pid: number;
  child: ChildProcess;
}

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

async function startNats(bin: string, dir: string, name: string, cluster?: { port: number; routes: number[] }): Promise<NatsNode> {
  const [port, monitor] = [await freePort(), await freePort()];
  const store = join(dir, name);
  await mkdir(store, { recursive: true });
  const conf = [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${port}`,
    `http: 127.0.0.1:${monitor}`,
    `jetstream { store_dir: "${store}", max_memory_store: 256MB, max_file_store: 2GB }`,
    ...(cluster
      ? [`cluster { name: bench, listen: 127.0.0.1:${cluster.port}, routes: [ ${cluster.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')} ] }`]
      : []),
  ].join('\n');
  await writeFile(join(dir, `${name}.conf`), conf);
  const child = spawn(bin, ['-c', join(dir, `${name}.conf`)], { stdio: 'ignore' });
  const node = { name, port, monitor, pid: child.pid as number, child };
  const deadline = Date.now() + 30_000;
  while (!(await monitorJson(node, '/varz').catch(() => undefined))) {
    if (child.exitCode !== null) throw new Error(`nats-server ${name} exited (${child.exitCode})`);
    if (Date.now() > deadline) throw new Error(`nats-server ${name} did not start within 30 s`);
    await sleep(100);
  }
  return node;
}

async function monitorJson<T = Record<string, unknown>>(node: NatsNode, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${node.monitor}${path}`);
  if (!response.ok) throw new Error(`${path} on ${node.name}: HTTP ${response.status}`);
  return (await response.json()) as T;
}

const subscriptionsOn = async (node: NatsNode) => (await monitorJson<{ num_subscriptions: number }>(node, '/subsz')).num_subscriptions;

function stopChild(child: ChildProcess, politely: () => void): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    politely();
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

// --- the measurements --------------------------------------------------------------------------------

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

interface Step {
  subscriptions: number;
  subscriber_rss_bytes: number;
  subscriber_heap_bytes: number;
  /** RSS of each nats-server, in node order. */
  nats_rss_bytes: number[];
  /** ms from the first subscribe of the step to the local server's flush answer. */
  flushed_ms: number;
  /** ms until each node's /subsz counted the step's new subscriptions (cluster only). */
  interest_ms?: number[];
}

async function measureSteps(steps: number[], nodes: NatsNode[], log: (line: string) => void): Promise<{ baseline: Step; steps: Step[] }> {
  const first = nodes[0] as NatsNode;
  const sub = startSubscriber(`nats://127.0.0.1:${first.port}`);
  try {
    const baselineReport = await sub.add(0);
    await sleep(500);
    const baseline: Step = {
      subscriptions: 0,
      subscriber_rss_bytes: baselineReport.rss,
      subscriber_heap_bytes: baselineReport.heap_used,
      nats_rss_bytes: await Promise.all(nodes.map((n) => rssBytes(n.pid))),
      flushed_ms: 0,
    };
    const results: Step[] = [];
    for (const target of steps) {
      const before = await Promise.all(nodes.map(subscriptionsOn));
      const added = target - (results.at(-1)?.subscriptions ?? 0);
      const started = performance.now();
      const reportPromise = sub.add(target);
      const interestMs: number[] = nodes.map(() => NaN);
      // Poll every node until it counts the new interest (the subscriber's own node included).
      const deadline = Date.now() + 300_000;
      while (interestMs.some(Number.isNaN) && Date.now() < deadline) {
        const now = await Promise.all(nodes.map(subscriptionsOn));
        now.forEach((count, i) => {
          if (Number.isNaN(interestMs[i]) && count - (before[i] as number) >= added) interestMs[i] = performance.now() - started;
        });
        await sleep(10);
      }
      const report = await reportPromise;
      await sleep(500);
      const step: Step = {
        subscriptions: target,
        subscriber_rss_bytes: report.rss,
        subscriber_heap_bytes: report.heap_used,
        nats_rss_bytes: await Promise.all(nodes.map((n) => rssBytes(n.pid))),
        flushed_ms: round(report.flushed_ms),
        ...(nodes.length > 1 && { interest_ms: interestMs.map((ms) => round(ms)) }),
      };
      results.push(step);
      log(
        `${target} subscriptions: subscriber RSS ${mb(step.subscriber_rss_bytes)}, nats RSS ${step.nats_rss_bytes.map(mb).join(' / ')}` +
          (step.interest_ms ? `, interest on every node after ${Math.max(...step.interest_ms)} ms` : ''),
      );
    }
    return { baseline, steps: results };
  } finally {
    await sub.stop();
  }
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Bytes per subscription between the baseline and the last step. */
function perSubscription(baseline: Step, last: Step, pick: (s: Step) => number): number {
  return Math.round((pick(last) - pick(baseline)) / last.subscriptions);
}

/** KV puts per second with `inFlight` outstanding: the presence map's write rate. */
async function kvPutsPerSecond(nc: NatsConnection, puts: number, replicas: number, inFlight = 256): Promise<{ per_second: number; p50_ms: number; p99_ms: number }> {
  const kv = await new Kvm(nc).create(`BENCH_PRESENCE_R${replicas}`, { history: 1, replicas });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < puts) {
      const i = next++;
      const t = performance.now();
      await kv.put(`dev${i}`, new TextEncoder().encode('gw-1'));
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  await kv.destroy();
  return {
    per_second: Math.round(puts / seconds),
    p50_ms: round(latencies[Math.floor(latencies.length * 0.5)] ?? NaN),
    p99_ms: round(latencies[Math.floor(latencies.length * 0.99)] ?? NaN),
  };
}

export async function main(): Promise<void> {
  const c = loadConfig(spec);
  const log = (line: string) => process.stderr.write(`[subjects] ${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'mps-bench-subjects-'));
  const nodes: NatsNode[] = [];
  const timer = setTimeout(() => {
    log(`BENCH_TIMEOUT_S (${c.BENCH_TIMEOUT_S} s) reached: stopping`);
    for (const n of nodes) n.child.kill('SIGKILL');
    process.exit(1);
  }, c.BENCH_TIMEOUT_S * 1000);
  timer.unref();
  const loadAtStart = loadavg().map((x) => round(x, 2));
  try {
    log('one nats-server');
    const single = await startNats(c.NATS_SERVER, dir, 'single');
    nodes.push(single);
    const alone = await measureSteps(c.BENCH_SUBJECTS_STEPS, [single], log);
    await stopChild(single.child, () => single.child.kill('SIGTERM'));

    log('a three-node cluster');
    const routes = [await freePort(), await freePort(), await freePort()];
    for (const [i, port] of routes.entries()) nodes.push(await startNats(c.NATS_SERVER, dir, `n${i + 1}`, { port, routes }));
    const cluster = nodes.slice(1);
    // Routes up: every node sees the other two.
    const deadline = Date.now() + 60_000;
    while ((await Promise.all(cluster.map((n) => monitorJson<{ num_routes: number }>(n, '/routez')))).some((r) => r.num_routes < 2)) {
      if (Date.now() > deadline) throw new Error('the cluster routes did not come up within 60 s');
      await sleep(200);
    }
    const meshed = await measureSteps(c.BENCH_SUBJECTS_STEPS, cluster, log);

    log(`presence map: ${c.BENCH_SUBJECTS_KV_PUTS} KV puts, replicas 1 and 3`);
    const nc = await connect({ servers: cluster.map((n) => `nats://127.0.0.1:${n.port}`), name: 'bench-presence' });
    let presence;
    for (let attempt = 0; ; attempt++) {
      try {
        presence = {
          r1: await kvPutsPerSecond(nc, c.BENCH_SUBJECTS_KV_PUTS, 1),
          r3: await kvPutsPerSecond(nc, c.BENCH_SUBJECTS_KV_PUTS, 3),
        };
        break;
      } catch (error) {
        // JetStream may still be electing its meta leader right after the cluster started.
        if (attempt >= 20) throw error;
        await sleep(1000);
      }
    }
    await nc.close();

    const lastAlone = alone.steps.at(-1) as Step;
    const lastMeshed = meshed.steps.at(-1) as Step;
    const perNode = (i: number) => perSubscription(meshed.baseline, lastMeshed, (s) => s.nats_rss_bytes[i] as number);
    const result = {
      name: 'subjects',
      date: new Date().toISOString(),
      machine: { cores: availableParallelism(), memory: totalmem(), load_average_at_start: loadAtStart, load_average_at_end: loadavg().map((x) => round(x, 2)) },
      params: { steps: c.BENCH_SUBJECTS_STEPS, kv_puts: c.BENCH_SUBJECTS_KV_PUTS, nats_server: '2.9.10 (Debian 12)', client: '@nats-io/transport-node 3.4' },
      metrics: {
        subscriber_rss_bytes_per_subscription: perSubscription(alone.baseline, lastAlone, (s) => s.subscriber_rss_bytes),
        subscriber_heap_bytes_per_subscription: perSubscription(alone.baseline, lastAlone, (s) => s.subscriber_heap_bytes),
        nats_rss_bytes_per_subscription: perSubscription(alone.baseline, lastAlone, (s) => s.nats_rss_bytes[0] as number),
        cluster_nats_rss_bytes_per_subscription_local_node: perNode(0),
        cluster_nats_rss_bytes_per_subscription_remote_node: Math.round((perNode(1) + perNode(2)) / 2),
        interest_propagation_ms_at_max: Math.max(...(lastMeshed.interest_ms ?? [NaN])),
        presence_kv_puts_per_second_r3: presence.r3.per_second,
      },
      single_server: alone,
      cluster: meshed,
      presence_map: presence,
      notes:
        'Subscriber: one nats.js connection with one subscription (callback) and one hub entry per subject, as the gateway keeps them; ' +
        'RSS and heap after a forced GC. nats-server RSS from /proc. In the cluster the subscriber is on node 1; interest_ms is the time from the ' +
        "first subscribe of a step until each node's /subsz counted all of the step's new subscriptions (the step's subscriptions are made at once). " +
        'presence_map: JetStream KV puts (256 in flight) on the same cluster, the write a connect would cost when routing by gateway. ' +
        'The machine is shared: read the load averages with the figures.',
    };
    const out = c.BENCH_RESULTS_DIR || join(ROOT, 'bench/results');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'subjects.json'), `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${join(out, 'subjects.json')}`);
    process.stdout.write(`${JSON.stringify(result.metrics)}\n`);
  } finally {
    clearTimeout(timer);
    await Promise.all(nodes.map((n) => stopChild(n.child, () => n.child.kill('SIGTERM'))));
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === SELF && process.argv[2] === '--subscriber') {
  await subscriber(process.argv[3] as string);
}
