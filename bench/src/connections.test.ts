import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramsFromEnv, runConnectionsBench } from './connections.js';

// Enough sockets that their memory (about 2 MB) stands above what a garbage collection gives back.
const CONNECTIONS = 1500;
const STEPS = 3;

describe('connections bench at smoke size', () => {
  it('holds every connection it asked for and writes the result file', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mps-bench-smoke-'));
    const output = join(dir, 'connections.json');
    try {
      const params = paramsFromEnv({
        BENCH_CONNECTIONS: String(CONNECTIONS),
        BENCH_GATEWAYS: '1',
        BENCH_CLIENTS: '1',
        BENCH_STEPS: String(STEPS),
        BENCH_SETTLE_MS: '200',
        BENCH_HOLD_S: '1',
        BENCH_TIMEOUT_S: '80',
        BENCH_MIN_AVAILABLE_MB: '256',
        BENCH_IN_FLIGHT: '500',
        BENCH_RUN_FROM: 'source',
        BENCH_OUTPUT: output,
        ...(process.env.DATABASE_URL && { DATABASE_URL: process.env.DATABASE_URL }),
        ...(process.env.NATS_URL && { NATS_URL: process.env.NATS_URL }),
      });
      const result = await runConnectionsBench(params);

      expect(JSON.parse(await readFile(output, 'utf8'))).toEqual(result);
      expect(result.name).toBe('connections');
      expect(new Date(result.date).toISOString()).toBe(result.date);
      expect(result.machine.cores).toBeGreaterThan(0);
      expect(result.machine.memory).toBeGreaterThan(0);
      expect(result.params).toMatchObject({ connections: CONNECTIONS, gateways: 1, load_clients: 1, steps: STEPS, database: 'direct' });

      expect(result.metrics.connections_held).toBe(CONNECTIONS);
      expect(result.metrics.gateway_rss_bytes_per_connection).toBeGreaterThan(0);
      expect(result.metrics.connects_per_second).toBeGreaterThan(0);
      expect(Number.isInteger(result.metrics.machine_bytes_per_connection)).toBe(true);

      // idle, one point per step, then the hold
      expect(result.curve).toHaveLength(STEPS + 2);
      expect(result.curve[0]!.connections).toBe(0);
      expect(result.curve.map((p) => p.connections).slice(1)).toEqual([500, 1000, 1500, 1500]);
      for (const point of result.curve) {
        for (const key of ['gateway_rss_bytes', 'machine_used_bytes', 'gateway_cpu_s'] as const) {
          expect(point[key]).toBeGreaterThan(0);
        }
      }
      // The gateway's open files grew by its sockets (and at most its pg pool).
      expect(result.gateways).toHaveLength(1);
      expect(result.gateways[0]!.connections).toBeGreaterThanOrEqual(CONNECTIONS);
      expect(result.gateways[0]!.connections).toBeLessThanOrEqual(CONNECTIONS + 12);
      expect(result.failures).toMatchObject({ failed: 0, dropped: 0 });
      expect(result.notes).toMatch(/^Held all 1,500 requested connections/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses more sockets per process than the open-files cap allows', () => {
    expect(() => paramsFromEnv({ BENCH_CONNECTIONS: '40000', BENCH_GATEWAYS: '2' })).toThrow(/BENCH_GATEWAYS must be at least 3/);
    expect(() => paramsFromEnv({ BENCH_CONNECTIONS: '40000', BENCH_CLIENTS: '2' })).toThrow(/BENCH_CLIENTS must be at least 3/);
    expect(paramsFromEnv({ BENCH_CONNECTIONS: '1000000' })).toMatchObject({ gateways: 55, clients: 53 });
  });
});
