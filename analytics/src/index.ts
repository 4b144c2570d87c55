/** Analytics as a library: main.ts wires it to real dependencies. */
export { startIngest, type Ingest, type IngestOptions, type IngestStats } from './ingest.js';
export { dropExpired, startRetention, type RetentionPolicy } from './retention.js';
export { messageFunnel, messageFunnelByChannel } from './reports/funnel.js';
export { timeSeries } from './reports/series.js';
export { serveReports } from './reports/serve.js';
export {
  Dimension,
  Granularity,
  parseFunnelRequest,
  parseSeriesRequest,
  reportSubjects,
  ReportRequestError,
  type ErrorReply,
  type Funnel,
  type FunnelReply,
  type FunnelRequest,
  type Series,
  type SeriesReply,
  type SeriesRequest,
} from './reports/protocol.js';
export { ChdbStore } from './store/chdb.js';
export { ClickHouseStore } from './store/clickhouse.js';
export { createSchema, engineFeatures, Table } from './store/schema.js';
export { EventBatch, type EventRow } from './store/batch.js';
export { StoreError, type EventStore } from './store/store.js';
export { loadAnalyticsConfig, analyticsSpec, type AnalyticsConfig } from './config.js';
