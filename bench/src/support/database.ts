/** The bench's own PostgreSQL database on the server of DATABASE_URL: created, migrated, seeded, dropped. */
import { randomBytes } from 'node:crypto';
import { createDb, migrate, type Db } from '@mps/shared';
import { INSERT_DEVICES } from '../loadgen/identity.js';

export interface BenchDatabase {
  name: string;
  url: string;
  db: Db;
  /** Connections the server allows, and how many are open now (all databases). */
  connections(): Promise<{ max: number; open: number }>;
  drop(): Promise<void>;
}

export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export async function createBenchDatabase(serverUrl: string): Promise<BenchDatabase> {
  const name = `mps_bench_${randomBytes(5).toString('hex')}`;
  const admin = createDb(withDatabase(serverUrl, 'postgres'), 1);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = withDatabase(serverUrl, name);
  const db = createDb(url, 4);
  let dropped = false;
  // pool.end() resolves before its connections are gone, so DROP ... WITH (FORCE) may terminate one
  // of them: expected then, and a real failure (reported by the next query) before.
  db.on('error', (error) => {
    if (!dropped) process.stderr.write(`bench database connection failed: ${error.message}\n`);
  });
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await db.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
  try {
    await migrate(db);
  } catch (error) {
    await drop();
    throw error;
  }
  return {
    name,
    url,
    db,
    connections: async () => {
      const { rows } = await admin.query<{ max: number; open: number }>(
        `SELECT current_setting('max_connections')::int AS max, (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'client backend') AS open`,
      );
      return rows[0] ?? { max: 0, open: 0 };
    },
    drop,
  };
}

const SEED_CHUNK = 100_000;

/** Inserts `count` devices of `app` whose credentials identity.ts derives from `seed`. */
export async function seedDevices(db: Db, app: string, seed: string, count: number): Promise<void> {
  await db.query(`INSERT INTO apps (id, name) VALUES ($1, 'connections bench')`, [app]);
  const chunks: Promise<unknown>[] = [];
  for (let from = 0; from < count; from += SEED_CHUNK) {
    chunks.push(db.query(INSERT_DEVICES, [seed, app, from, Math.min(from + SEED_CHUNK, count)]));
  }
  await Promise.all(chunks);
  await db.query('ANALYZE devices');
}
