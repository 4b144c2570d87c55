/**
 * What integration tests share: a fresh PostgreSQL database and a NATS prefix per test file, so two
 * runs (or two files) never see each other's data, and processes started from the sources.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import { connectNats, createDb, createSubjects, migrate, type Db, type NatsConnection, type Subjects } from '@mps/shared';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/mps';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

const suffix = () => randomBytes(5).toString('hex');

export interface TestDatabase {
  url: string;
  db: Db;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `mps_test_${suffix()}`;
  const admin = new pg.Client({ connectionString: withDatabase(BASE_URL, 'postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(BASE_URL, name);
  const db = createDb(url);
  await migrate(db);
  return {
    url,
    db,
    drop: async () => {
      await db.end();
      const c = new pg.Client({ connectionString: withDatabase(BASE_URL, 'postgres') });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestNats {
  nc: NatsConnection;
  prefix: string;
  subjects: Subjects;
  /** Deletes this prefix's streams and buckets, then closes the connection. */
  cleanup(): Promise<void>;
}

/** A NATS prefix of the test's own, on the machine's server or on `url`. */
export async function createTestNats(url = NATS_URL): Promise<TestNats> {
  const prefix = `t${suffix()}`;
  const nc = await connectNats(url, `test-${prefix}`);
  const subjects = createSubjects(prefix);
  return {
    nc,
    prefix,
    subjects,
    cleanup: async () => {
      const jsm = await jetstreamManager(nc);
      for (const stream of [subjects.eventStream, subjects.vendorStream, `KV_${subjects.nonceBucket}`]) {
        await jsm.streams.delete(stream).catch(() => undefined);
      }
      await nc.close();
    },
  };
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

export interface ServiceProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a service's main.ts from the sources, as its own process. */
export function startService(pkg: 'gateway' | 'control-plane' | 'analytics' | 'sender', env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', `${pkg}/src/main.ts`], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return {
    child,
    output: () => output,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export async function waitForPort(port: number, service: ServiceProcess, ms = 30_000): Promise<void> {
  const { connect } = await import('node:net');
  await eventually(
    () =>
      new Promise<true | undefined>((resolve) => {
        if (service.child.exitCode !== null) throw new Error(`exited early:\n${service.output()}`);
        const socket = connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(undefined));
      }),
    ms,
    `port ${port}`,
  );
}

/** A device row as the gateway would register it (for API tests that need a target). */
export async function insertDevice(db: Db, app: string, userId: string | null = null): Promise<string> {
  const { newId } = await import('@mps/shared');
  const id = newId();
  await db.query(
    `INSERT INTO devices (id, app_id, secret_hash, platform, user_id) VALUES ($1, $2, $3, 'android', $4)`,
    [id, app, Buffer.alloc(32), userId],
  );
  return id;
}
