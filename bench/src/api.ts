/**
 * api: signed simple pushes per second through one control-plane process, end to end (verified,
 * stored in PostgreSQL, published to NATS), beside a Fastify hello-world measured in the same run.
 * Writes bench/results/api.json (signed_pushes_per_second, p99_ms, ratio_to_hello_world).
 * Sized by BENCH_API_SECONDS (default 15) and BENCH_API_CONNECTIONS (default 50); loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { createServer } from 'node:net';
import autocannon from 'autocannon';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createSubjects, hmacSignature, MasterKey, newId, newPublicId, newSecret, SignatureHeader } from '@mps/shared';
import { createBenchDatabase } from './support/database.js';
import { busyShare, cpuByCommand, cpuSeconds, machineCpu } from './support/procfs.js';
import { ROOT } from './support/processes.js';
import { writeResult } from './support/results.js';
import { sleep } from './support/util.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/mps';
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 15);
const CONNECTIONS = Number(process.env.BENCH_API_CONNECTIONS ?? 50);
const DEVICES = 1000;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

async function waitFor(url: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`process exited:\n${output()}`);
    if (await fetch(url).then((r) => r.ok, () => false)) return;
    await sleep(100);
  }
  throw new Error(`${url} did not come up:\n${output()}`);
}

function start(args: string[], env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4096));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

interface CpuSnapshot {
  parts: Record<string, number>;
  machine: { busy: number; total: number };
}

/** CPU seconds so far of the parts of a push: control plane, PostgreSQL, NATS, and this process (the load generator). */
async function cpuNow(controlPlanePid: number): Promise<CpuSnapshot> {
  const byCommand = await cpuByCommand(['postgres', 'nats-server']);
  return {
    parts: {
      control_plane: await cpuSeconds(controlPlanePid),
      postgres: byCommand.get('postgres') ?? 0,
      nats_server: byCommand.get('nats-server') ?? 0,
      load_generator: await cpuSeconds(process.pid),
    },
    machine: await machineCpu(),
  };
}

function cpuPerPush(before: CpuSnapshot, after: CpuSnapshot, pushes: number): Record<string, number> {
  const perPush: Record<string, number> = {};
  for (const [part, seconds] of Object.entries(after.parts)) {
    perPush[part] = Number((((seconds - (before.parts[part] ?? 0)) * 1000) / Math.max(1, pushes)).toFixed(3));
  }
  return perPush;
}

function load(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

const HELLO = `
import Fastify from 'fastify';
const app = Fastify();
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
`;

export async function main(): Promise<void> {
  const database = await createBenchDatabase(DATABASE_URL);
  const prefix = `bapi${randomBytes(3).toString('hex')}`;
  const masterKey = MasterKey.generate();
  const children: ChildProcess[] = [];
  try {
    const app = newPublicId('app');
    const keyId = newPublicId('key');
    const secret = newSecret();
    await database.db.query(`INSERT INTO apps (id, name) VALUES ($1, 'api bench')`, [app]);
    await database.db.query(`INSERT INTO app_keys (id, app_id, kind, secret_sealed) VALUES ($1, $2, 'hmac', $3)`, [
      keyId,
      app,
      MasterKey.fromBase64(masterKey).seal(secret),
    ]);
    const devices = Array.from({ length: DEVICES }, () => newId());
    await database.db.query(
      `INSERT INTO devices (id, app_id, secret_hash, platform) SELECT d, $2, '\\x00', 'android' FROM unnest($1::uuid[]) d`,
      [devices, app],
    );

    const apiPort = await freePort();
    const controlPlane = start(['--conditions=source', '--import', 'tsx', 'control-plane/src/main.ts'], {
      DATABASE_URL: database.url,
      NATS_URL,
      NATS_PREFIX: prefix,
      MASTER_KEY: masterKey,
      API_PORT: String(apiPort),
      API_HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_PER_S: '10000000',
    });
    children.push(controlPlane.child);
    await waitFor(`http://127.0.0.1:${apiPort}/healthz`, controlPlane.child, controlPlane.output);

    const helloPort = await freePort();
    const hello = start(['--input-type=module', '-e', HELLO], { PORT: String(helloPort) });
    children.push(hello.child);
    await waitFor(`http://127.0.0.1:${helloPort}/`, hello.child, hello.output);

    // Every request is signed anew (its own nonce and timestamp), as a business server would.
    const cpuBefore = await cpuNow(controlPlane.child.pid as number);
    let n = 0;
    const path = '/v1/push/simple';
    const signed = await load({
      url: `http://127.0.0.1:${apiPort}`,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          path,
          setupRequest: (request) => {
            n += 1;
            const body = JSON.stringify({ target: { device: devices[n % DEVICES] }, title: 'bench', body: `push ${n}` });
            const timestamp = String(Date.now());
            const nonce = randomBytes(12).toString('base64url');
            return {
              ...request,
              body,
              headers: {
                'content-type': 'application/json',
                [SignatureHeader.KEY]: keyId,
                [SignatureHeader.TIMESTAMP]: timestamp,
                [SignatureHeader.NONCE]: nonce,
                [SignatureHeader.SIGNATURE]: hmacSignature(secret, { method: 'POST', path, query: '', timestamp, nonce, body }),
              },
            };
          },
        },
      ],
    });
    const cpuAfter = await cpuNow(controlPlane.child.pid as number);
    const helloResult = await load({ url: `http://127.0.0.1:${helloPort}/`, connections: CONNECTIONS, duration: SECONDS });

    const accepted = signed['2xx'];
    const stored = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages');
    const pushesPerSecond = accepted / SECONDS;
    const helloPerSecond = helloResult['2xx'] / SECONDS;
    const result = {
      name: 'api',
      date: new Date().toISOString(),
      machine: { cores: cpus().length, memory_bytes: totalmem() },
      params: { seconds: SECONDS, connections: CONNECTIONS, devices: DEVICES, control_plane_processes: 1 },
      metrics: {
        signed_pushes_per_second: Math.round(pushesPerSecond),
        p99_ms: signed.latency.p99,
        ratio_to_hello_world: Number((pushesPerSecond / helloPerSecond).toFixed(4)),
      },
      detail: {
        accepted,
        stored_messages: stored.rows[0]?.n ?? 0,
        non_2xx: signed.non2xx,
        errors: signed.errors,
        p50_ms: signed.latency.p50,
        hello_world_per_second: Math.round(helloPerSecond),
        hello_world_p99_ms: helloResult.latency.p99,
        // CPU time per accepted push, by part: where the 2 cores went (other work on the machine
        // shows as the gap between machine_busy and the parts).
        cpu_ms_per_push: cpuPerPush(cpuBefore, cpuAfter, accepted),
        machine_busy: Number(busyShare(cpuBefore.machine, cpuAfter.machine).toFixed(3)),
      },
      notes:
        'One control-plane process (tsx from the sources) on a 2-core machine shared with PostgreSQL, NATS and the load generator (autocannon, signing every request). Each push: signature check, nonce claim in NATS KV, one transaction (message + inbox row), one NATS publish.',
    };
    await writeResult('api', result);
    console.log(`hello world: ${Math.round(helloPerSecond)} requests/s (p99 ${helloResult.latency.p99} ms)`);
    console.log(`stored ${result.detail.stored_messages} of ${accepted} accepted pushes; non-2xx ${signed.non2xx}`);
    console.log(`cpu ms per push: ${JSON.stringify(result.detail.cpu_ms_per_push)}; machine busy ${result.detail.machine_busy}`);
    console.log(`signed pushes: ${result.metrics.signed_pushes_per_second}/s, p99 ${result.metrics.p99_ms} ms, ${result.metrics.ratio_to_hello_world} of hello world`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await sleep(500);
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    const subjects = createSubjects(prefix);
    for (const stream of [subjects.eventStream, `KV_${subjects.nonceBucket}`]) await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
    await database.drop();
  }
}
