/**
 * Servers of a scenario's own, on loopback ports and temporary folders, that it may kill and start
 * again: a nats-server with JetStream, a PostgreSQL cluster, a clickhouse-server. Each is tied to
 * the test process (killed when it exits) and removed by stop().
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeClickHouseConfig } from '../../support/clickhouse.js';
import { freePort } from '../../support/services.js';

/** Children still running when the test process exits are killed with it. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A program started again and again with the same arguments. */
class Restartable {
  private child: ChildProcess | undefined;
  private log = '';
  constructor(
    private readonly command: string,
    private readonly args: string[],
    private readonly ready: () => Promise<boolean>,
    private readonly options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {},
  ) {}

  async start(ms = 30_000): Promise<void> {
    const child = spawn(this.command, this.args, { stdio: ['ignore', 'pipe', 'pipe'], uid: this.options.uid, gid: this.options.gid, env: this.options.env ?? process.env });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    child.stdout?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    child.stderr?.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-20_000)));
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`${this.command} exited (${child.exitCode}):\n${this.log}`);
      if (await this.ready().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.command} did not start within ${ms} ms:\n${this.log}`);
  }

  /** SIGKILL, as a crash or a power cut of the process would. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.log;
  }
}

const portOpen = async (port: number): Promise<boolean> => {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
};

export interface OwnNats {
  url: string;
  version: string;
  /** Whether the server fsyncs every JetStream write (`sync_interval: always`, nats-server 2.10+). */
  syncAlways: boolean;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  output(): string;
}

/**
 * A nats-server with JetStream in a folder of its own. RELIABILITY_NATS_SERVER names a binary
 * (e.g. nats-server 2.10 from Debian 13, docs/decisions.md 21); else the system's. With 2.10 or later
 * the store fsyncs every write (`sync_interval: always`).
 */
export async function startOwnNats(): Promise<OwnNats> {
  const bin = process.env.RELIABILITY_NATS_SERVER || (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server');
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim().replace(/^nats-server:\s*v?/, '');
  const [major, minor] = version.split('.').map(Number) as [number, number];
  const syncAlways = major > 2 || (major === 2 && minor >= 10);
  const dir = await mkdtemp(join(tmpdir(), 'mps-own-nats-'));
  const port = await freePort();
  const config = join(dir, 'nats.conf');
  await writeFile(
    config,
    `listen: 127.0.0.1:${port}\njetstream { store_dir: "${join(dir, 'store')}"${syncAlways ? ', sync_interval: always' : ''} }\n`,
  );
  const server = new Restartable(bin, ['-c', config], () => portOpen(port));
  await server.start();
  return {
    url: `nats://127.0.0.1:${port}`,
    version,
    syncAlways,
    kill: () => server.kill(),
    start: () => server.start(),
    stop: async () => {
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
    output: () => server.output(),
  };
}

export interface OwnPostgres {
  /** postgres://…/postgres: the admin URL of this cluster. */
  url: string;
  /** SIGQUIT by default: an immediate shutdown, recovered on start as after a crash. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** A PostgreSQL 15 cluster of its own (initdb as the postgres user, trust auth on loopback). */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const binDir = '/usr/lib/postgresql/15/bin';
  const dir = await mkdtemp(join(tmpdir(), 'mps-own-pg-'));
  await chmod(dir, 0o777);
  const data = join(dir, 'data');
  const ids = { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) };
  execFileSync(join(binDir, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'], { ...ids, stdio: 'ignore', cwd: dir });
  const port = await freePort();
  const server = new Restartable(
    join(binDir, 'postgres'),
    ['-D', data, '-p', String(port), '-k', dir, '-h', '127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'],
    () => portOpen(port),
    { ...ids, env: { ...process.env, LC_ALL: 'C' } },
  );
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    kill: (signal = 'SIGQUIT') => server.kill(signal),
    start: () => server.start(),
    stop: async () => {
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface OwnClickHouse {
  url: string;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Debian's clickhouse-server (18.16) with a config, data folder and ports of its own; undefined when not installed. */
export async function startOwnClickHouse(): Promise<OwnClickHouse | undefined> {
  const bin = ['/usr/bin/clickhouse-server', '/usr/sbin/clickhouse-server'].find((p) => existsSync(p));
  if (!bin) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'mps-own-clickhouse-'));
  const [httpPort, tcpPort] = [await freePort(), await freePort()];
  await writeClickHouseConfig(dir, httpPort, tcpPort);
  const url = `http://127.0.0.1:${httpPort}`;
  // Up when it runs a query (it answers /ping a moment before).
  const server = new Restartable(bin, [`--config-file=${join(dir, 'config.xml')}`], async () => (await fetch(`${url}/?query=SELECT%201`)).ok);
  await server.start(60_000);
  return {
    url,
    kill: () => server.kill(),
    start: () => server.start(60_000),
    stop: async () => {
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
