/** The pool of createDb against a real PostgreSQL whose server ends connections under it. */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { createDb, inTransaction } from './db.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A logger that keeps the messages of what it is told. */
function recording(): { log: pino.Logger; messages: string[] } {
  const messages: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) });
  return { log, messages };
}

async function terminate(pid: number): Promise<void> {
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query('SELECT pg_terminate_backend($1)', [pid]);
  await admin.end();
}

describe('createDb', () => {
  it('survives a connection ended while a transaction holds it, and serves the next query', async () => {
    const { log, messages: warned } = recording();
    const db = createDb(DATABASE_URL, 2, log);
    try {
      const failed = await inTransaction(db, async (client) => {
        const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        const ended = new Promise((resolve) => client.once('end', resolve));
        await terminate(pid);
        // The server's goodbye reaches the client between two of the transaction's queries.
        await ended;
        return client.query('SELECT 1');
      }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failed).toBeInstanceOf(Error);
      expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // It was lent, not idle: the pool's own listener had nothing to say.
      expect(warned).toEqual([]);
    } finally {
      await db.end();
    }
  });

  it('drops a connection that broke while idle, says so once, and serves the next query', async () => {
    const { log, messages: warned } = recording();
    const db = createDb(DATABASE_URL, 1, log);
    try {
      const pid = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await terminate(pid);
      for (let i = 0; i < 100 && warned.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(warned).toEqual(['an idle database connection broke; the pool opens a new one when needed']);
      const again = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      expect(again).not.toBe(pid);
    } finally {
      await db.end();
    }
  });
});
