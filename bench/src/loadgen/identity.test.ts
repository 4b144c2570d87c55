import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb, isUuid } from '@mps/shared';
import { sourceAddress } from './device-sockets.js';
import { DEVICE_ROWS, deviceId, deviceSecret } from './identity.js';

const server = new URL(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/mps');
server.pathname = '/postgres';
const db = createDb(server.toString(), 1);
afterAll(() => db.end());

describe('bench device identities', () => {
  it('are valid device ids and distinct secrets', () => {
    expect(isUuid(deviceId('s', 0))).toBe(true);
    expect(deviceId('s', 0)).not.toBe(deviceId('s', 1));
    expect(deviceSecret('s', 0)).not.toBe(deviceSecret('s', 1));
    expect(deviceSecret('s', 0)).not.toBe(deviceSecret('t', 0));
  });

  it('agree with the SQL that seeds them', async () => {
    const { rows } = await db.query<{ id: string; secret_hash: Buffer }>(
      `SELECT id::text, secret_hash FROM (${DEVICE_ROWS}) d`,
      ['seed1', 'app_x', 5, 8],
    );
    expect(rows.map((r) => r.id)).toEqual([5, 6, 7].map((i) => deviceId('seed1', i)));
    expect(rows.map((r) => r.secret_hash)).toEqual([5, 6, 7].map((i) => createHash('sha256').update(deviceSecret('seed1', i)).digest()));
  });
});

describe('sourceAddress', () => {
  it('changes every `perAddress` devices and never uses 127.0.x.x, .0 or .255', () => {
    expect(sourceAddress(0, 500)).toBe(sourceAddress(499, 500));
    expect(sourceAddress(500, 500)).not.toBe(sourceAddress(499, 500));
    const addresses = new Set(Array.from({ length: 70_000 }, (_, i) => sourceAddress(i * 500, 500)));
    expect(addresses.size).toBe(70_000);
    for (const address of addresses) expect(address).toMatch(/^127\.([1-9]\d*)\.([1-9]\d?|1\d\d|2[0-4]\d|25[0-4])\.([1-9]\d?|1\d\d|2[0-4]\d|25[0-4])$/);
  });
});
