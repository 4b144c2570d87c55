import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { paramsFromEnv, runAnalyticsBench } from './analytics.js';

describe('analytics bench at smoke size', () => {
  it('ingests every event through JetStream, times the reports and writes the result file', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mps-bench-analytics-'));
    const output = join(dir, 'analytics.json');
    try {
      const params = paramsFromEnv({
        BENCH_EVENTS: '3000',
        BENCH_BATCH_SIZE: '1000',
        BENCH_REPORT_EVENTS: '100000',
        BENCH_REPORT_RUNS: '2',
        BENCH_TIMEOUT_S: '110',
        BENCH_OUTPUT: output,
        ...(process.env.BENCH_NATS_URL && { BENCH_NATS_URL: process.env.BENCH_NATS_URL }),
      });
      const result = await runAnalyticsBench(params);

      expect(JSON.parse(await readFile(output, 'utf8'))).toEqual(result);
      expect(result).toMatchObject({ name: 'analytics', params: { events: 3000, report_events: 100_000, engine: 'chdb', nats: process.env.BENCH_NATS_URL ? 'given' : 'own' } });
      expect(result.metrics.events_per_second).toBeGreaterThan(0);
      expect(result.metrics.report_ms).toBeGreaterThan(0);
      expect(result.ingest.batches).toBeGreaterThanOrEqual(3);
      // A day of minutes, each with every platform, kind, channel, version and push type the generator makes.
      expect(result.reports.minute_rows).toBeGreaterThan(1440);
      expect(result.reports.message_funnel.median_ms).toBeGreaterThan(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
