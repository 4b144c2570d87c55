/** isOutage against the errors the real clients raise when PostgreSQL or NATS is away, and others. */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { connect } from '@nats-io/transport-node';
import { isOutage } from './outages.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A loopback port nothing listens on (the discard port). */
const CLOSED = 9;

const caught = async (work: () => Promise<unknown>): Promise<unknown> => {
  try {
    await work();
  } catch (error) {
    return error;
  }
  throw new Error('expected it to fail');
};

describe('isOutage', () => {
  it('is true for PostgreSQL out of reach, and for the server terminating the connection', async () => {
    const refused = await caught(() => new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${CLOSED}/x` }).connect());
    expect(isOutage(refused)).toBe(true);

    const victim = new pg.Client({ connectionString: DATABASE_URL });
    await victim.connect();
    victim.on('error', () => undefined);
    const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
    const admin = new pg.Client({ connectionString: DATABASE_URL });
    await admin.connect();
    await admin.query('SELECT pg_terminate_backend($1)', [pid]);
    await admin.end();
    const terminated = await caught(() => victim.query('SELECT 1'));
    expect(isOutage(terminated)).toBe(true);
  });

  it('is true for NATS closed, not answering, or with no one listening; also wrapped as a cause', async () => {
    const nc = await connect({ servers: NATS_URL });
    const silent = nc.subscribe(`outage.${process.pid}.silent`);
    const timeout = await caught(() => nc.request(`outage.${process.pid}.silent`, 'x', { timeout: 100 }));
    const noResponders = await caught(() => nc.request(`outage.${process.pid}.nobody`, 'x', { timeout: 1000 }));
    silent.unsubscribe();
    await nc.close();
    const closed = await caught(async () => nc.publish('outage.x', 'x'));
    const unreachable = await caught(() => connect({ servers: `127.0.0.1:${CLOSED}`, reconnect: false }));
    for (const error of [timeout, noResponders, closed, unreachable]) expect(isOutage(error)).toBe(true);
    expect(isOutage(new Error('could not store the push', { cause: closed }))).toBe(true);
  });

  it('is false for a wrong query, a division by zero, and a bug', async () => {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const syntax = await caught(() => client.query('SELEC 1'));
    const division = await caught(() => client.query(`SELECT 1/0`));
    await client.end();
    expect([isOutage(syntax), isOutage(division), isOutage(new TypeError('x is undefined')), isOutage('text')]).toEqual([false, false, false, false]);
  });
});
