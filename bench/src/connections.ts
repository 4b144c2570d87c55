/**
 * The connections benchmark: how many authenticated device sockets the gateways of one machine hold,
 * what each one costs in gateway RSS and in the whole machine's memory (kernel included), and how fast
 * devices connect. Run with `npm run bench -- connections`; bench/README.md lists the knobs.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { connectNats, createSubjects, int, jetstreamManagerFor, loadConfig, newPublicId, str, url } from '@mps/shared';
import { newClientStatus, type ClientConfig, type ClientStatus } from './loadgen/messages.js';
import {
  buildResult,
  currentLoadAverage,
  curvePoint,
  summary,
  type ConnectionsResult,
  type CurvePoint,
  type StopReason,
} from './support/connections-report.js';
import { addCpuUse, cpuShares, cpuUse, cpuUsedSince, noCpuUse } from './support/cpu.js';
import { createBenchDatabase, seedDevices } from './support/database.js';
import { DEFAULT_PGBOUNCER, pgBouncerAvailable, startPgBouncer } from './support/pgbouncer.js';
import { machineMemory, pidListeningOn } from './support/procfs.js';
import { kill, ROOT, startGateways, startLoadClients, type Child, type LoadClient, type RunFrom } from './support/processes.js';
import { resultsDir } from './support/results.js';
import { sum, takeSample, type SampleSources } from './support/sampler.js';
import { CleanupStack, formatBytes, formatCount, sleep } from './support/util.js';

export type { ConnectionsResult } from './support/connections-report.js';

/** Sockets one process may hold: every process here is capped at 20,000 open files. */
export const MAX_SOCKETS_PER_PROCESS = 19_000;
/** Default load per gateway: under the cap, since the kernel spreads connections only roughly evenly. */
const DEFAULT_SOCKETS_PER_GATEWAY = 18_500;
/** Server connections each gateway process's pg pool may open (createDb in shared/src/db.ts). */
const GATEWAY_DB_POOL = 10;
/** PostgreSQL connections left to everything else on the server before the gateways go through PgBouncer. */
const PG_HEADROOM = 30;
/** A ramp is stalled when no handshake completes or fails for this long. */
const STALL_MS = 60_000;
const POLL_MS = 250;

export const connectionsSpec = {
  BENCH_CONNECTIONS: int({ min: 1, default: 1_000_000, desc: 'device sockets to open' }),
  BENCH_GATEWAYS: int({ min: 0, default: 0, desc: 'gateway processes (0: max(2, ceil(connections / 18,500)))' }),
  BENCH_CLIENTS: int({ min: 0, default: 0, desc: 'load-client processes (0: ceil(connections / 19,000))' }),
  BENCH_STEPS: int({ min: 1, default: 10, desc: 'ramp steps, each one measured' }),
  BENCH_IN_FLIGHT: int({ min: 1, default: 100, desc: 'handshakes under way at once in each load client' }),
  BENCH_SOCKETS_PER_ADDRESS: int({ min: 1, default: 500, desc: 'sockets per client source address 127.x.y.z' }),
  BENCH_SETTLE_MS: int({ min: 0, default: 2000, desc: 'pause after each step before it is measured' }),
  BENCH_HOLD_S: int({ min: 0, default: 30, desc: 'seconds the full load is held before the last measurement' }),
  BENCH_TIMEOUT_S: int({ min: 30, default: 4800, desc: 'the whole run, set-up and clean-up included' }),
  BENCH_MIN_AVAILABLE_MB: int({ min: 0, default: 3072, desc: 'MemAvailable under which no more sockets are opened' }),
  BENCH_RUN_FROM: str({ choices: ['source', 'dist'], default: 'dist', desc: 'source (tsx) or dist (tsc -b output, as deployed)' }),
  BENCH_PGBOUNCER: str({ default: 'auto', desc: 'auto (when the gateways could exhaust max_connections), always, never, or its path' }),
  BENCH_PG_SERVER_CONNECTIONS: int({ min: 1, default: 16, desc: 'PostgreSQL connections PgBouncer may open' }),
  BENCH_OUTPUT: str({ default: '', desc: 'the result file (default connections.json in BENCH_RESULTS_DIR or bench/results)' }),
  DATABASE_URL: url({ default: 'postgres://postgres@127.0.0.1:5432/mps', desc: 'the PostgreSQL server (the bench creates its own database there)' }),
  NATS_URL: url({ default: 'nats://127.0.0.1:4222', desc: 'the NATS server' }),
};

export interface ConnectionsParams {
  connections: number;
  gateways: number;
  clients: number;
  steps: number;
  inFlightPerClient: number;
  socketsPerAddress: number;
  settleMs: number;
  holdS: number;
  timeoutS: number;
  minAvailableBytes: number;
  runFrom: RunFrom;
  /** 'auto', 'always', 'never' or a binary's path. */
  pgBouncer: string;
  pgServerConnections: number;
  output: string;
  databaseUrl: string;
  natsUrl: string;
}

export function paramsFromEnv(env: NodeJS.ProcessEnv = process.env): ConnectionsParams {
  const c = loadConfig(connectionsSpec, env);
  const n = c.BENCH_CONNECTIONS;
  return checkParams({
    connections: n,
    gateways: c.BENCH_GATEWAYS || Math.max(2, Math.ceil(n / DEFAULT_SOCKETS_PER_GATEWAY)),
    clients: c.BENCH_CLIENTS || Math.ceil(n / MAX_SOCKETS_PER_PROCESS),
    steps: c.BENCH_STEPS,
    inFlightPerClient: c.BENCH_IN_FLIGHT,
    socketsPerAddress: c.BENCH_SOCKETS_PER_ADDRESS,
    settleMs: c.BENCH_SETTLE_MS,
    holdS: c.BENCH_HOLD_S,
    timeoutS: c.BENCH_TIMEOUT_S,
    minAvailableBytes: c.BENCH_MIN_AVAILABLE_MB * 1024 * 1024,
    runFrom: c.BENCH_RUN_FROM as RunFrom,
    pgBouncer: c.BENCH_PGBOUNCER,
    pgServerConnections: c.BENCH_PG_SERVER_CONNECTIONS,
    output: c.BENCH_OUTPUT || join(resultsDir(env), 'connections.json'),
    databaseUrl: c.DATABASE_URL,
    natsUrl: c.NATS_URL,
  });
}

/** Refuses sizes that cannot work: no process here may hold more than 20,000 open files. */
export function checkParams(p: ConnectionsParams): ConnectionsParams {
  const atLeast = Math.ceil(p.connections / MAX_SOCKETS_PER_PROCESS);
  if (p.gateways < atLeast) throw new Error(`BENCH_GATEWAYS must be at least ${atLeast}: a process may hold ${MAX_SOCKETS_PER_PROCESS} sockets`);
  if (p.clients < atLeast) throw new Error(`BENCH_CLIENTS must be at least ${atLeast}: a process may hold ${MAX_SOCKETS_PER_PROCESS} sockets`);
  return p;
}

export interface RunOptions {
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export async function runConnectionsBench(params: ConnectionsParams, options: RunOptions = {}): Promise<ConnectionsResult> {
  const log = options.log ?? (() => undefined);
  const loadAverage = currentLoadAverage();
  const started = Date.now();
  const deadline = started + params.timeoutS * 1000;
  const checkDeadline = (what: string) => {
    if (Date.now() > deadline) throw new Error(`BENCH_TIMEOUT_S (${params.timeoutS} s) passed while ${what}`);
  };
  const check = (what: string) => {
    if (options.signal?.aborted) throw new Error(`interrupted while ${what}`);
    checkDeadline(what);
  };
  const cleanup = new CleanupStack(log);
  try {
    if (params.runFrom === 'dist') {
      log('building the gateway and the bench (tsc -b)');
      execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-b', 'gateway', 'bench'], { cwd: ROOT, stdio: 'inherit' });
    }

    const seed = randomBytes(8).toString('hex');
    const app = newPublicId('app');
    const database = await createBenchDatabase(params.databaseUrl);
    cleanup.push('drop the database', () => database.drop());
    log(`database ${database.name}: seeding ${formatCount(params.connections)} devices`);
    await seedDevices(database.db, app, seed, params.connections);
    check('seeding the database');

    const subjects = createSubjects(`bench${seed.slice(0, 10)}`);
    const nc = await connectNats(params.natsUrl, `bench-${subjects.prefix}`);
    cleanup.push('delete the NATS streams', async () => {
      const jsm = await jetstreamManagerFor(nc);
      for (const stream of [subjects.eventStream, `KV_${subjects.nonceBucket}`]) {
        await jsm.streams.delete(stream).catch((error: unknown) => {
          if (!/not found/i.test(String(error))) throw error;
        });
      }
      await nc.close();
    });

    const gatewayDb = await gatewayDatabaseUrl(params, database.name, database.url, await database.connections(), cleanup, log);
    const port = await freePort();
    const gatewayEnv = {
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_IDLE_TIMEOUT_S: '960', // the longest uWS allows: held sockets stay quiet
      GATEWAY_AUTH_TIMEOUT_MS: '120000',
      DATABASE_URL: gatewayDb.url,
      NATS_URL: params.natsUrl,
      NATS_PREFIX: subjects.prefix,
      MASTER_KEY: randomBytes(32).toString('base64'),
      DATA_DIR: `/tmp/mps-bench-${seed}`,
      LOG_LEVEL: 'warn',
    };
    const gateways: Child[] = [];
    const clients: LoadClient[] = [];
    // Gateways first: closing 19,000 sockets each would keep them busy for nothing.
    cleanup.push('stop the gateways and load clients', async () => {
      await kill(gateways);
      await kill(clients);
    });
    log(`starting ${params.gateways} gateways (${params.runFrom}) on 127.0.0.1:${port}`);
    await startGateways(params.gateways, params.runFrom, gatewayEnv, (g) => gateways.push(g), () => check('starting the gateways'));

    const shares = Array.from({ length: params.clients }, (_, i) =>
      Math.floor(params.connections / params.clients) + (i < params.connections % params.clients ? 1 : 0),
    );
    const configs = shares.map(
      (share, i): ClientConfig => ({
        host: '127.0.0.1',
        port,
        path: '/v1/device',
        app,
        seed,
        firstDevice: sum(shares.slice(0, i)),
        devices: share,
        maxInFlight: params.inFlightPerClient,
        socketsPerAddress: params.socketsPerAddress,
        handshakeTimeoutMs: 60_000,
        maxAttempts: 3,
      }),
    );
    const statuses: ClientStatus[] = configs.map(() => newClientStatus());
    log(`starting ${params.clients} load clients`);
    await startLoadClients(params.runFrom, configs, (client) => {
      const i = clients.push(client) - 1;
      client.onMessage((message) => {
        if (message.type === 'status') statuses[i] = message;
      });
    });

    const sources: SampleSources = {
      started,
      gatewayPids: gateways.map((g) => g.pid),
      clientPids: clients.map((c) => c.pid),
      natsPid: await pidListeningOn(Number(new URL(params.natsUrl).port || 4222), 'nats-server'),
      held: () => sum(statuses.map((s) => s.held)),
      pgConnections: async () => (await database.connections()).open,
    };
    await sleep(2000);
    const idle = await takeSample(sources);
    const curve: CurvePoint[] = [curvePoint(idle, 0)];
    log(`idle: gateways ${formatBytes(curve[0]!.gateway_rss_bytes)} RSS in all, machine ${formatBytes(idle.memory.used)} used`);

    // The ramp: each step raises every client's target, waits until all of them settle, then measures.
    // Time kept back for the hold, the last measurement and the clean-up.
    const rampDeadline = deadline - (params.holdS + Math.min(90, params.timeoutS / 5)) * 1000;
    const pids = { gateways: sources.gatewayPids, clients: sources.clientPids };
    const handled = () => sum(statuses.map((s) => s.handshakes + s.failed));
    const handshakes = () => sum(statuses.map((s) => s.handshakes));
    let rampCpu = noCpuUse();
    let connectMs = 0;
    let connects = 0;
    let stopReason: StopReason | undefined;
    const stopAll = (reason: StopReason) => {
      stopReason ??= reason;
      for (const client of clients) client.send({ type: 'stop' });
    };
    for (let step = 1; step <= params.steps && !stopReason; step++) {
      const targets = shares.map((share) => Math.round((share * step) / params.steps));
      const handshakesBefore = handshakes();
      const cpuBefore = await cpuUse(pids);
      const stepStart = Date.now();
      for (const [i, client] of clients.entries()) client.send({ type: 'target', connections: targets[i]! });
      let progress = { handled: handled(), at: stepStart };
      while (!statuses.every((s, i) => s.reached >= targets[i]! || (s.stopped && s.inFlight === 0))) {
        const dead = [...gateways, ...clients].find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
        if (dead) throw new Error(`process ${dead.pid} exited during the ramp:\n${dead.output()}`);
        checkDeadline('waiting for a ramp step');
        if (!stopReason) {
          // Interrupted during the ramp: stop opening sockets, then measure and report what is held.
          if (options.signal?.aborted) stopAll('interrupted');
          else if ((await machineMemory()).available < params.minAvailableBytes) stopAll('memory');
          else if (Date.now() > rampDeadline) stopAll('time');
          else if (handled() !== progress.handled) progress = { handled: handled(), at: Date.now() };
          else if (Date.now() - progress.at > STALL_MS) stopAll('stalled');
        }
        await sleep(POLL_MS);
      }
      const stepMs = Date.now() - stepStart;
      rampCpu = addCpuUse(rampCpu, cpuUsedSince(await cpuUse(pids), cpuBefore));
      const stepConnects = handshakes() - handshakesBefore;
      const rate = (stepConnects * 1000) / Math.max(stepMs, 1);
      connectMs += stepMs;
      connects += stepConnects;
      await sleep(params.settleMs);
      const sample = await takeSample(sources);
      curve.push(curvePoint(sample, rate));
      log(
        `step ${step}/${params.steps}: ${formatCount(sample.held)} held, ${formatCount(rate)} connects/s, ` +
          `gateways ${formatBytes(curve.at(-1)!.gateway_rss_bytes)}, machine ${formatBytes(sample.memory.used)} used, ` +
          `${formatBytes(sample.memory.available)} available`,
      );
    }

    if (stopReason !== 'interrupted') await sleep(params.holdS * 1000);
    const full = await takeSample(sources);
    curve.push(curvePoint(full, 0));
    log(`after holding ${params.holdS} s: ${formatCount(full.held)} connections`);

    const result = buildResult({
      params: {
        connections: params.connections,
        gateways: params.gateways,
        load_clients: params.clients,
        steps: params.steps,
        in_flight_per_client: params.inFlightPerClient,
        sockets_per_source_address: params.socketsPerAddress,
        hold_s: params.holdS,
        min_available_mb: Math.round(params.minAvailableBytes / 1024 / 1024),
        run_from: params.runFrom,
        database: gatewayDb.via,
        gateway_commit: gatewayCommit(),
      },
      requested: params.connections,
      minAvailableBytes: params.minAvailableBytes,
      loadAverage,
      idle,
      full,
      curve,
      statuses,
      gatewayPids: sources.gatewayPids,
      connectsPerSecond: connectMs > 0 ? connects / (connectMs / 1000) : 0,
      rampCpu: cpuShares(rampCpu),
      stopReason,
      natsRttMs: await nc.rtt(),
    });
    await mkdir(dirname(params.output), { recursive: true });
    await writeFile(params.output, `${JSON.stringify(result, null, 2)}\n`);
    return result;
  } finally {
    await cleanup.run();
  }
}

/** Straight to PostgreSQL when the gateways' pools fit under max_connections, otherwise through PgBouncer. */
async function gatewayDatabaseUrl(
  params: ConnectionsParams,
  database: string,
  directUrl: string,
  server: { max: number; open: number },
  cleanup: CleanupStack,
  log: (line: string) => void,
): Promise<{ url: string; via: string }> {
  const wanted = params.gateways * GATEWAY_DB_POOL;
  const room = server.max - server.open - PG_HEADROOM;
  const use = params.pgBouncer === 'never' ? false : params.pgBouncer === 'auto' ? wanted > room : true;
  if (!use) {
    if (wanted > room) log(`warning: the gateways may open ${wanted} PostgreSQL connections and ${room} are free`);
    return { url: directUrl, via: 'direct' };
  }
  const path = ['auto', 'always'].includes(params.pgBouncer) ? DEFAULT_PGBOUNCER : params.pgBouncer;
  if (!pgBouncerAvailable(path)) {
    throw new Error(
      `${params.gateways} gateways may open ${wanted} PostgreSQL connections and max_connections leaves ${room}: ` +
        `install PgBouncer (apt-get install pgbouncer) or set BENCH_PGBOUNCER to its path`,
    );
  }
  const bouncer = await startPgBouncer({
    path,
    serverUrl: params.databaseUrl,
    database,
    port: await freePort(),
    serverConnections: params.pgServerConnections,
    maxClients: wanted + 50,
  });
  cleanup.push('stop PgBouncer', () => bouncer.stop());
  const via = `PgBouncer, transaction pooling, ${params.pgServerConnections} server connections for ${wanted} gateway pool slots`;
  log(via);
  return { url: bouncer.url, via };
}

/** The commit the measured code comes from, and whether gateway/ or shared/ differ from it. */
function gatewayCommit(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'gateway', 'shared') === '' ? commit : `${commit} with uncommitted changes in gateway/ or shared/`;
  } catch (error) {
    return `unknown (${(error as Error).message.split('\n')[0]})`;
  }
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

export async function main(): Promise<void> {
  const params = paramsFromEnv();
  const controller = new AbortController();
  // The first Ctrl-C ends the ramp (what is held is still measured and written); the second ends the run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (!controller.signal.aborted) return controller.abort();
      process.stderr.write('connections bench: interrupted twice, exiting\n');
      process.exit(130);
    });
  }
  // The last resort should clean-up itself hang: the gateways and load clients end with this process.
  setTimeout(() => {
    process.stderr.write('connections bench: past BENCH_TIMEOUT_S and clean-up has not finished; exiting\n');
    process.exit(2);
  }, (params.timeoutS + 120) * 1000).unref();
  const result = await runConnectionsBench(params, { log: (line) => console.log(line), signal: controller.signal });
  console.log(`\nwritten to ${params.output}\n\n${summary(result)}`);
}
