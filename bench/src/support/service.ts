/**
 * The service under test for the fan-out and latency benches: a database of the run's own with N bench
 * devices, G gateway processes sharing one port, optionally a control-plane process with an HMAC key
 * for signed API calls, and a NATS connection on the run's own prefix. Everything is undone through
 * the caller's CleanupStack.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request, Agent } from 'node:http';
import { createServer } from 'node:net';
import {
  connectNats,
  createSubjects,
  encodeBroadcast,
  hmacSignature,
  jetstreamManagerFor,
  MasterKey,
  newId,
  newPublicId,
  newSecret,
  SignatureHeader,
  type NatsConnection,
  type Subjects,
} from '@mps/shared';
import { createBenchDatabase, seedDevices, type BenchDatabase } from './database.js';
import { ROOT, startGateways, type Child, type RunFrom } from './processes.js';
import { CleanupStack, sleep } from './util.js';

export interface ServiceOptions {
  devices: number;
  gateways: number;
  runFrom: RunFrom;
  databaseUrl: string;
  natsUrl: string;
  controlPlane: boolean;
  /** Keep-alive connections of the signed API client (default 64). */
  apiConnections?: number;
  log: (line: string) => void;
  check: () => void;
}

export interface SignedApi {
  url: string;
  /** POSTs a signed JSON body; resolves with the status and the body text. */
  post(path: string, body: unknown): Promise<{ status: number; body: string }>;
}

export interface Service {
  app: string;
  seed: string;
  subjects: Subjects;
  nc: NatsConnection;
  port: number;
  gateways: Child[];
  database: BenchDatabase;
  controlPlane: (Child & { api: SignedApi }) | undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function capture(child: ReturnType<typeof spawn>): () => string {
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

export async function startService(options: ServiceOptions, cleanup: CleanupStack): Promise<Service> {
  const { log } = options;
  const seed = randomBytes(8).toString('hex');
  const app = newPublicId('app');
  const database = await createBenchDatabase(options.databaseUrl);
  cleanup.push('drop the database', () => database.drop());
  log(`database ${database.name}: seeding ${options.devices} devices`);
  await seedDevices(database.db, app, seed, options.devices);
  options.check();

  const subjects = createSubjects(`bench${seed.slice(0, 10)}`);
  const nc = await connectNats(options.natsUrl, `bench-${subjects.prefix}`);
  cleanup.push('delete the NATS streams', async () => {
    const jsm = await jetstreamManagerFor(nc);
    for (const stream of [subjects.eventStream, subjects.vendorStream, `KV_${subjects.nonceBucket}`]) {
      await jsm.streams.delete(stream).catch((error: unknown) => {
        if (!/not found/i.test(String(error))) throw error;
      });
    }
    await nc.close();
  });

  const masterKey = MasterKey.generate();
  const port = await freePort();
  const common = {
    DATABASE_URL: database.url,
    NATS_URL: options.natsUrl,
    NATS_PREFIX: subjects.prefix,
    MASTER_KEY: masterKey,
    DATA_DIR: `/tmp/mps-bench-${seed}`,
    LOG_LEVEL: 'warn',
  };
  const gateways: Child[] = [];
  cleanup.push('stop the gateways', async () => {
    for (const g of gateways) g.process.kill('SIGKILL');
    await sleep(100);
  });
  log(`starting ${options.gateways} gateway process(es) (${options.runFrom}) on 127.0.0.1:${port}`);
  await startGateways(
    options.gateways,
    options.runFrom,
    {
      ...common,
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_IDLE_TIMEOUT_S: '960',
      GATEWAY_AUTH_TIMEOUT_MS: '120000',
    },
    (g) => gateways.push(g),
    options.check,
  );

  let controlPlane: Service['controlPlane'];
  if (options.controlPlane) {
    const keyId = newPublicId('key');
    const secret = newSecret();
    await database.db.query(`INSERT INTO app_keys (id, app_id, kind, secret_sealed) VALUES ($1, $2, 'hmac', $3)`, [
      keyId,
      app,
      MasterKey.fromBase64(masterKey).seal(secret),
    ]);
    const apiPort = await freePort();
    const args =
      options.runFrom === 'source' ? ['--conditions=source', '--import', 'tsx', 'control-plane/src/main.ts'] : ['control-plane/dist/main.js'];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...common, API_PORT: String(apiPort), API_HOST: '127.0.0.1', RATE_LIMIT_PER_S: '10000000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new Error('the control plane did not start');
    const output = capture(child);
    let stopping = false;
    child.once('exit', (code, signal) => {
      if (!stopping) log(`the control plane exited (${code ?? signal}) during the run:\n${output()}`);
    });
    cleanup.push('stop the control plane', async () => {
      stopping = true;
      child.kill('SIGKILL');
      await sleep(100);
    });
    const url = `http://127.0.0.1:${apiPort}`;
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`the control plane exited:\n${output()}`);
      if (await fetch(`${url}/healthz`).then((r) => r.ok, () => false)) break;
      if (i > 600) throw new Error(`the control plane did not come up:\n${output()}`);
      options.check();
      await sleep(100);
    }
    controlPlane = { process: child, pid: child.pid, output, api: signedApi(url, keyId, secret, options.apiConnections) };
  }
  return { app, seed, subjects, nc, port, gateways, database, controlPlane };
}

/** Signed requests over a pool of keep-alive connections, each signed anew as a business server would. */
export function signedApi(url: string, keyId: string, secret: string, maxSockets = 64): SignedApi {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const { hostname, port } = new URL(url);
  return {
    url,
    post: (path, payload) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify(payload);
        const timestamp = String(Date.now());
        const nonce = randomBytes(12).toString('base64url');
        const req = request(
          {
            agent,
            host: hostname,
            port,
            method: 'POST',
            path,
            headers: {
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
              [SignatureHeader.KEY]: keyId,
              [SignatureHeader.TIMESTAMP]: timestamp,
              [SignatureHeader.NONCE]: nonce,
              [SignatureHeader.SIGNATURE]: hmacSignature(secret, { method: 'POST', path, query: '', timestamp, nonce, body }),
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (text += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(body);
      }),
  };
}

/**
 * Publishes broadcasts to every device of the service's app exactly as the control plane does after
 * storing one: an envelope (audience all, no condition) on the app's broadcast subject.
 */
export function broadcastPublisher(service: Service): (frames: readonly Uint8Array[]) => void {
  const subject = service.subjects.broadcast(service.app);
  return (frames) => {
    for (const frame of frames) service.nc.publish(subject, encodeBroadcast({ frame, audience: 'all', condition: null, id: newId() }));
  };
}
