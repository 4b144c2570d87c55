/** Analytics as a library: main.ts wires it to real dependencies. */
export { startIngest } from './ingest.js';
export { messageFunnel, serveReports, type Funnel } from './reports.js';
export { ChdbStore } from './store/chdb.js';
export { ClickHouseStore } from './store/clickhouse.js';
export type { EventStore, EventRow } from './store/store.js';
export { loadAnalyticsConfig, analyticsSpec } from './config.js';
