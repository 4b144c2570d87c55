import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connectNats, createLogger, createSubjects, ensureEventStream, jetstreamManagerFor, runMain } from '@mps/shared';
import { loadAnalyticsConfig } from './config.js';
import { startIngest } from './ingest.js';
import { serveReports } from './reports/serve.js';
import { startRetention } from './retention.js';
import { ChdbStore } from './store/chdb.js';
import { ClickHouseStore } from './store/clickhouse.js';
import type { EventStore } from './store/store.js';

await runMain(async () => {
  const config = loadAnalyticsConfig();
  const log = createLogger('analytics', config.LOG_LEVEL);
  const subjects = createSubjects(config.NATS_PREFIX);
  const store: EventStore =
    config.CLICKHOUSE_URL !== ''
      ? new ClickHouseStore(config.CLICKHOUSE_URL)
      : new ChdbStore(config.CHDB_PATH !== '' ? config.CHDB_PATH : join(config.DATA_DIR, 'chdb'));
  await store.init();
  const nc = await connectNats(config.NATS_URL, `analytics-${process.pid}`);
  await ensureEventStream(await jetstreamManagerFor(nc), subjects);
  const ingest = await startIngest({
    nc,
    js: jetstream(nc),
    store,
    subjects,
    log,
    batchSize: config.ANALYTICS_BATCH_SIZE,
    flushMs: config.ANALYTICS_FLUSH_MS,
  });
  const retention = startRetention({
    store,
    log,
    policy: { rawDays: config.ANALYTICS_RAW_DAYS, minuteDays: config.ANALYTICS_MINUTE_DAYS, hourDays: config.ANALYTICS_HOUR_DAYS },
  });
  const reports = serveReports({ nc, store, subjects, log });
  log.info({ store: config.CLICKHOUSE_URL !== '' ? 'clickhouse' : 'chdb', version: await store.version() }, 'analytics running');

  const stop = async (signal: string) => {
    log.info({ signal }, 'analytics stopping');
    reports.unsubscribe();
    retention.stop();
    await ingest.stop();
    await nc.drain();
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
});
