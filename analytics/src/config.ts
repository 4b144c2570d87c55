import { commonSpec, int, loadConfig, str } from '@mps/shared';

export const analyticsSpec = {
  ...commonSpec,
  CLICKHOUSE_URL: str({ default: '', desc: 'a ClickHouse HTTP URL, e.g. http://default@127.0.0.1:8123/mps (empty: embedded chDB)' }),
  CHDB_PATH: str({ default: '', desc: 'the folder of the embedded chDB database (empty: DATA_DIR/chdb)' }),
  // ClickHouse wants few large inserts: each batch makes a part in each of the five tables, which
  // costs 15-20 ms of CPU per part on this machine's disk whatever its size (a third of the ingest's
  // CPU at 20,000 events a batch); the flush time bounds latency when traffic is low. At most
  // 200,000: a batch's per-dimension counts (5 rows per event at most) must stay one insert block
  // (1,048,576 rows), which is what makes them land whole or not at all (store/aggregates.ts); a
  // batch is cut after the message that fills it, which adds at most a message's events (a few
  // thousand in JetStream's 1 MiB).
  ANALYTICS_BATCH_SIZE: int({ min: 1, max: 200_000, default: 50_000, desc: 'events inserted per batch at most' }),
  ANALYTICS_FLUSH_MS: int({ min: 1000, default: 1000, desc: 'the longest an event waits before its batch is inserted, in ms' }),
  ANALYTICS_RAW_DAYS: int({ min: 1, default: 35, desc: 'days raw events are kept (per-message funnels and series)' }),
  ANALYTICS_MINUTE_DAYS: int({ min: 1, default: 35, desc: 'days per-minute counts are kept' }),
  ANALYTICS_HOUR_DAYS: int({ min: 1, default: 800, desc: 'days per-hour counts are kept (hour and day reports)' }),
};

export type AnalyticsConfig = ReturnType<typeof loadAnalyticsConfig>;

export function loadAnalyticsConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(analyticsSpec, env);
}
