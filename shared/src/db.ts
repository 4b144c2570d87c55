/**
 * PostgreSQL access: a pool, and the migrations in shared/migrations applied in order,
 * each once, under an advisory lock so that several processes can start together.
 */
import { readdir, readFile } from 'node:fs/promises';
import pg from 'pg';
import type { Logger } from './log.js';

export type Db = pg.Pool;
export type DbClient = pg.PoolClient;

const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);
const MIGRATION_LOCK = 7_242_001;

/**
 * A pool of `max` connections. A connection that breaks while idle (the server restarted, or an
 * administrator ended it) is dropped from the pool and said once in the log; the next query opens
 * a new one. Without this listener the pool's 'error' event would end the process.
 *
 * A connection that breaks while checked out (inside `inTransaction`, between two of its queries)
 * has no pool listener: pg-pool takes it off while the client is lent, and pg then emits 'error' on
 * the client itself, which would end the process too. Each client gets a listener of its own that
 * does nothing: pg has already failed the client's query under way, its next query fails as not
 * queryable, and the pool drops it when it comes back; the caller sees the error either way.
 */
export function createDb(url: string, max = 10, log?: Pick<Logger, 'warn'>): Db {
  const pool = new pg.Pool({ connectionString: url, max });
  // Only the message: pg hangs its client (connection parameters included) on the error.
  pool.on('error', (error) => log?.warn({ reason: error.message }, 'an idle database connection broke; the pool opens a new one when needed'));
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export async function inTransaction<T>(db: Db, work: (client: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Applies pending migrations; returns the names applied now. */
export async function migrate(db: Db): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.sql')).sort();
  const client = await db.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    const applied: string[] = [];
    for (const file of files.filter((f) => !done.has(f))) {
      const sql = await readFile(new URL(file, MIGRATIONS_DIR), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed`, { cause: error });
      }
      applied.push(file);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    client.release();
  }
}
