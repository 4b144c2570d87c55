/**
 * The service as separate processes for fault scenarios: a control plane, gateways that may share
 * one port (SO_REUSEPORT, so the kernel sends a killed gateway's devices to the survivors), and
 * optionally analytics, on a database and NATS of the scenario's choosing. Any process can be
 * killed and started again; exits the scenario did not cause are counted as crashes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterKey } from '@mps/shared';
import { KeyStore, type CreatedApp } from '@mps/control-plane';
import { DeviceClient, MemoryCredentialStore, PushClient, type MessageFrame } from '@mps/sdk';
import pg from 'pg';
import { createDb, migrate } from '@mps/shared';
import {
  createTestDatabase,
  createTestNats,
  eventually,
  freePort,
  NATS_URL,
  startService,
  waitForPort,
  type ServiceProcess,
  type TestDatabase,
  type TestNats,
} from '../../support/services.js';

type Kind = 'control-plane' | 'gateway' | 'analytics' | 'sender';

export interface FleetProcess {
  name: string;
  kind: Kind;
  env: Record<string, string>;
  port?: number;
  service: ServiceProcess;
  /** Set by kill(): this exit was the scenario's doing. */
  expectedExit: boolean;
}

export interface FleetOptions {
  gateways?: number;
  /** All gateways on one port (the kernel spreads connections, and a dead one's devices go to the others). */
  sharedPort?: boolean;
  analytics?: boolean;
  /** Defaults to the machine's NATS. */
  natsUrl?: string;
  /** An already created database (e.g. on a PostgreSQL of the scenario's own); defaults to a fresh one on the machine's. */
  database?: TestDatabase;
  env?: Record<string, string>;
  gatewayEnv?: Record<string, string>;
  analyticsEnv?: Record<string, string>;
  /** A vendor sender process too, with this environment (its endpoints). */
  senderEnv?: Record<string, string>;
}

export interface Fleet {
  database: TestDatabase;
  nats: TestNats;
  app: CreatedApp;
  masterKey: string;
  apiUrl: string;
  gatewayUrl(i?: number): string;
  processes: FleetProcess[];
  gateways(): FleetProcess[];
  api(app?: CreatedApp): PushClient;
  createApp(name: string): Promise<CreatedApp>;
  /** SIGKILL (or another signal), waiting for the exit. */
  kill(p: FleetProcess, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a killed process again with the same environment and port. */
  restart(p: FleetProcess): Promise<void>;
  /** Processes that exited without the scenario killing them. */
  crashes(): number;
  /** Everything the processes printed, including earlier incarnations. */
  output(): string;
  stop(): Promise<void>;
}

export async function startFleet(options: FleetOptions = {}): Promise<Fleet> {
  const natsUrl = options.natsUrl ?? NATS_URL;
  const database = options.database ?? (await createTestDatabase());
  const nats = await createTestNats(natsUrl);
  const dataDir = await mkdtemp(join(tmpdir(), 'mps-reliability-'));
  const masterKey = MasterKey.generate();
  const keys = new KeyStore(database.db, MasterKey.fromBase64(masterKey), 0);
  const app = await keys.createApp('reliability');
  const apiPort = await freePort();
  const env = {
    DATABASE_URL: database.url,
    NATS_URL: natsUrl,
    NATS_PREFIX: nats.prefix,
    DATA_DIR: dataDir,
    MASTER_KEY: masterKey,
    API_PORT: String(apiPort),
    ...options.env,
  };
  const processes: FleetProcess[] = [];
  let pastOutput = '';

  const launch = async (p: FleetProcess): Promise<void> => {
    p.expectedExit = false;
    p.service = startService(p.kind, p.env);
    if (p.port !== undefined) await waitForPort(p.port, p.service, 60_000);
  };
  const add = async (name: string, kind: Kind, processEnv: Record<string, string>, port?: number) => {
    const p: FleetProcess = { name, kind, env: processEnv, port, service: undefined as unknown as ServiceProcess, expectedExit: false };
    processes.push(p);
    await launch(p);
    return p;
  };

  const stop = async () => {
    for (const p of processes) p.expectedExit = true;
    await Promise.all(processes.map((p) => p.service?.stop()));
    await nats.cleanup().catch(() => undefined);
    await database.drop();
    await rm(dataDir, { recursive: true, force: true });
  };

  const gatewayPorts: number[] = [];
  try {
    // The control plane migrates the database and creates the streams the others use.
    await add('control-plane', 'control-plane', env, apiPort);
    const shared = options.sharedPort ? await freePort() : undefined;
    for (let i = 0; i < (options.gateways ?? 1); i++) {
      const port = shared ?? (await freePort());
      gatewayPorts.push(port);
      const gatewayEnv = { ...env, GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_ADMIN_PORT: String(await freePort()), ...options.gatewayEnv };
      // On a shared port, another process may already answer: a gateway is up when its admin port does.
      await add(`gateway-${i + 1}`, 'gateway', gatewayEnv, shared !== undefined ? Number(gatewayEnv.GATEWAY_ADMIN_PORT) : port);
    }
    if (options.analytics) {
      // Up once it says so (it has no port): its store is ready and it consumes events.
      const p = await add('analytics', 'analytics', { ...env, LOG_LEVEL: 'info', ...options.analyticsEnv });
      await eventually(async () => {
        if (p.service.child.exitCode !== null) throw new Error(`analytics exited:\n${p.service.output()}`);
        return p.service.output().includes('analytics running') ? true : undefined;
      }, 60_000, 'analytics to start');
    }
    if (options.senderEnv) await add('sender', 'sender', { ...env, ...options.senderEnv });
  } catch (error) {
    console.error(processes.map((p) => p.service?.output()).join('\n'));
    await stop();
    throw error;
  }
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const client = (created: CreatedApp) => new PushClient({ baseUrl: apiUrl, keyId: created.keyId, secret: created.secret });

  return {
    database,
    nats,
    app,
    masterKey,
    apiUrl,
    gatewayUrl: (i = 0) => `ws://127.0.0.1:${gatewayPorts[i % gatewayPorts.length]}/v1/device`,
    processes,
    gateways: () => processes.filter((p) => p.kind === 'gateway'),
    api: (created = app) => client(created),
    createApp: (name) => keys.createApp(name),
    kill: async (p, signal = 'SIGKILL') => {
      p.expectedExit = true;
      const child = p.service.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
    restart: async (p) => {
      pastOutput += `--- ${p.name} (before restart) ---\n${p.service.output()}\n`;
      await launch(p);
    },
    crashes: () =>
      processes.filter((p) => !p.expectedExit && (p.service.child.exitCode !== null || p.service.child.signalCode !== null)).length,
    output: () => pastOutput + processes.map((p) => `--- ${p.name} ---\n${p.service.output()}`).join('\n'),
    stop,
  };
}

/** A fresh, migrated database on any PostgreSQL (test/support's createTestDatabase uses the machine's). */
export async function createDatabaseOn(adminUrl: string): Promise<TestDatabase> {
  const name = `mps_rel_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const db = createDb(url);
  await migrate(db);
  return {
    url,
    db,
    drop: async () => {
      await db.end().catch(() => undefined);
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** SDK devices that count what each of them was shown, by message id. */
export class Devices {
  readonly clients: DeviceClient[] = [];
  readonly ids: string[] = [];
  readonly shown: Map<string, number>[] = [];
  expiredShown = 0;
  /** Times a device lost its connection and set out to reconnect. */
  reconnects = 0;
  /** Errors the SDK reported (close codes), by reason. */
  readonly closes = new Map<string, number>();

  constructor(
    private readonly url: (i: number) => string,
    private readonly app: string,
  ) {}

  async connect(n: number, options: { reconnect?: { initialMs: number; maxMs: number } } = {}): Promise<void> {
    const start = this.clients.length;
    const connecting: Promise<string>[] = [];
    for (let i = start; i < start + n; i++) {
      const seen = new Map<string, number>();
      this.shown.push(seen);
      const client = new DeviceClient({
        url: this.url(i),
        app: this.app,
        platform: i % 2 === 0 ? 'android' : 'ios',
        credentials: new MemoryCredentialStore(),
        reconnect: options.reconnect ?? { initialMs: 100, maxMs: 1000 },
        onMessage: (m: MessageFrame) => {
          seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
          if (m.exp <= Date.now()) this.expiredShown += 1;
        },
      });
      client.on('state', (state) => {
        if (state === 'reconnecting') this.reconnects += 1;
      });
      client.on('error', (e) => {
        const reason = e.close?.reason ?? e.code;
        this.closes.set(reason, (this.closes.get(reason) ?? 0) + 1);
      });
      this.clients.push(client);
      connecting.push(client.connect());
      // A few at a time: registration writes to PostgreSQL.
      if (connecting.length % 50 === 0) await Promise.all(connecting.slice(-50));
    }
    this.ids.push(...(await Promise.all(connecting)));
  }

  /** Starts counting anew: what the devices were shown so far no longer counts (one scenario after another). */
  forget(): void {
    for (const seen of this.shown) seen.clear();
    this.expiredShown = 0;
  }

  /** Per device, how many of `expected` were shown once, never, or more than once. */
  tally(expected: Set<string>[]): { expected: number; once: number; lost: number; duplicates: number; unexpected: number } {
    let total = 0;
    let once = 0;
    let lost = 0;
    let duplicates = 0;
    let unexpected = 0;
    expected.forEach((ids, i) => {
      const seen = this.shown[i] as Map<string, number>;
      total += ids.size;
      for (const id of ids) {
        const n = seen.get(id) ?? 0;
        if (n === 0) lost += 1;
        else if (n === 1) once += 1;
      }
      for (const [id, n] of seen) {
        if (n > 1) duplicates += 1;
        if (!ids.has(id)) unexpected += 1;
      }
    });
    return { expected: total, once, lost, duplicates, unexpected };
  }

  /** Waits until every expected id was shown (or `ms` passed), nudging closed clients to reconnect. */
  async settle(expected: Set<string>[], ms: number): Promise<void> {
    await eventually(
      async () => {
        for (const c of this.clients) if (c.state === 'closed') void c.connect().catch(() => undefined);
        return this.tally(expected).lost === 0 ? true : undefined;
      },
      ms,
      'every message to be shown',
    ).catch(() => undefined);
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
