/**
 * The tables, one definition for both engines:
 *
 * - `events`: every tracking event, ReplacingMergeTree keyed by event id (a replayed event is
 *   merged away). Sorted by (app, message, kind, device) so that a message's funnel reads only that
 *   message. Reports on it count distinct ids or devices, so they are right before merges too.
 *   `batch` and `counted` say which ingest write stored the row and which aggregates already
 *   counted the event before it (aggregates.ts; 0 for rows inserted by other means).
 * - `events_minute`, `events_hour`: event counts per minute / hour and per app, kind, platform,
 *   app version, channel and push type (SummingMergeTree; reports always sum, so unmerged parts
 *   count right). The ingest writes the counts of its batches itself, each table's in one insert
 *   with the batch's marker (aggregates.ts); materialized views count the rows inserted into
 *   `events` by other means (`batch` = 0: bulk loads, the bench's generator, tests).
 * - `events_minute_by`, `events_hour_by`: the same counts per one dimension at a time (dimension,
 *   value), and in total (dimension ''). A report split or filtered by at most one dimension reads
 *   these: a day of minutes is about 1440 x kinds x values rows instead of 1440 x every
 *   combination (3 million rows for a day of 100 million events).
 * - Retention drops whole partitions (retention.ts), by day for `events` and the minute tables, by
 *   month for the hour tables: the same statements on every version, and cheaper than TTL deletes.
 *
 * ClickHouse 18.16 (Debian's clickhouse-server) has no LowCardinality; from 19.1 on, the
 * low-cardinality columns use it. Queries are the same either way.
 */
import type { EventStore } from './store.js';

export const Table = {
  EVENTS: 'events',
  MINUTE: 'events_minute',
  HOUR: 'events_hour',
  MINUTE_BY: 'events_minute_by',
  HOUR_BY: 'events_hour_by',
} as const;

export interface EngineFeatures {
  version: string;
  lowCardinality: boolean;
}

/** What the engine at `version` supports among the features the schema would use. */
export function engineFeatures(version: string): EngineFeatures {
  const [major = 0] = version.split('.').map(Number);
  return { version, lowCardinality: major >= 19 };
}

/** The columns aggregated per minute and per hour, besides app and kind. */
export const DIMENSION_COLUMNS = ['platform', 'app_version', 'channel', 'push_type'] as const;

type Bucket = 'minute' | 'hour';

const partitionOf = (bucket: Bucket) => (bucket === 'minute' ? 'toYYYYMMDD(minute)' : 'toYYYYMM(hour)');
const startOf = (bucket: Bucket) => (bucket === 'minute' ? 'toStartOfMinute(at)' : 'toStartOfHour(at)');

function combinationsTable(name: string, bucket: Bucket, dim: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
    app ${dim},
    ${bucket} DateTime('UTC'),
    kind ${dim},
    platform ${dim},
    app_version ${dim},
    channel ${dim},
    push_type ${dim},
    events UInt64
  ) ENGINE = SummingMergeTree(events)
  PARTITION BY ${partitionOf(bucket)}
  ORDER BY (app, ${bucket}, kind, ${DIMENSION_COLUMNS.join(', ')})`;
}

function perDimensionTable(name: string, bucket: Bucket, dim: string): string {
  return `CREATE TABLE IF NOT EXISTS ${name} (
    app ${dim},
    ${bucket} DateTime('UTC'),
    kind ${dim},
    dimension ${dim},
    value ${dim},
    events UInt64
  ) ENGINE = SummingMergeTree(events)
  PARTITION BY ${partitionOf(bucket)}
  ORDER BY (app, dimension, ${bucket}, kind, value)`;
}

/**
 * The SELECT a view runs on each inserted block, and a backfill runs on existing rows. The ingest
 * computes the same counts for its own rows (aggregates.ts; a test compares the two).
 */
function combinationsSelect(bucket: Bucket, from: string, where: string): string {
  const columns = ['app', bucket, 'kind', ...DIMENSION_COLUMNS].join(', ');
  return `SELECT app, ${startOf(bucket)} AS ${bucket}, kind, ${DIMENSION_COLUMNS.join(', ')}, count() AS events
    FROM ${from} WHERE ${where} GROUP BY ${columns}`;
}

function perDimensionSelect(bucket: Bucket, from: string, where: string): string {
  // CAST: the total's ('', '') and LowCardinality values must make one array type.
  const pairs = ["('', '')", ...DIMENSION_COLUMNS.map((c) => `('${c}', CAST(${c} AS String))`)].join(', ');
  return `SELECT app, ${startOf(bucket)} AS ${bucket}, kind, d.1 AS dimension, d.2 AS value, count() AS events
    FROM ${from} ARRAY JOIN [${pairs}] AS d WHERE ${where}
    GROUP BY app, ${bucket}, kind, dimension, value`;
}

interface View {
  name: string;
  target: string;
  /** The view's SELECT over the rows of `from` that match `where`. */
  select(from: string, where: string): string;
}

/**
 * The views count only the rows the ingest did not write (`batch` = 0): the ingest counts its own,
 * so that a crash between its inserts can be completed later without counting twice (aggregates.ts).
 */
const DIRECT = 'batch = 0';

const VIEWS: View[] = [
  { name: 'events_minute_direct_mv', target: Table.MINUTE, select: (from, where) => combinationsSelect('minute', from, where) },
  { name: 'events_hour_direct_mv', target: Table.HOUR, select: (from, where) => combinationsSelect('hour', from, where) },
  { name: 'events_minute_by_direct_mv', target: Table.MINUTE_BY, select: (from, where) => perDimensionSelect('minute', from, where) },
  { name: 'events_hour_by_direct_mv', target: Table.HOUR_BY, select: (from, where) => perDimensionSelect('hour', from, where) },
];

/** Views of earlier versions, which counted every row of `events`: replaced by the ones above. */
const RETIRED_VIEWS = ['events_minute_mv', 'events_hour_mv', 'events_minute_by_mv', 'events_hour_by_mv'];

/** Columns added to `events` after its first version, created on stores that lack them. */
const ADDED_EVENT_COLUMNS = [
  ['batch', 'UInt64 DEFAULT 0'],
  ['counted', 'UInt8 DEFAULT 0'],
] as const;

export function schemaStatements(features: EngineFeatures): {
  tables: string[];
  views: { name: string; target: string; sql: string; backfill: string }[];
} {
  const dim = features.lowCardinality ? 'LowCardinality(String)' : 'String';
  return {
    tables: [
      `CREATE TABLE IF NOT EXISTS ${Table.EVENTS} (
        id String,
        kind ${dim},
        app ${dim},
        message String,
        device String,
        channel ${dim},
        platform ${dim},
        os_version ${dim},
        app_version ${dim},
        sdk_version ${dim},
        push_type ${dim},
        at DateTime('UTC'),
        ${ADDED_EVENT_COLUMNS.map(([name, type]) => `${name} ${type}`).join(',\n        ')}
      ) ENGINE = ReplacingMergeTree()
      PARTITION BY toYYYYMMDD(at)
      PRIMARY KEY (app, message, kind)
      ORDER BY (app, message, kind, device, id)`,
      combinationsTable(Table.MINUTE, 'minute', dim),
      combinationsTable(Table.HOUR, 'hour', dim),
      perDimensionTable(Table.MINUTE_BY, 'minute', dim),
      perDimensionTable(Table.HOUR_BY, 'hour', dim),
    ],
    views: VIEWS.map((v) => ({
      name: v.name,
      target: v.target,
      sql: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${v.name} TO ${v.target} AS ${v.select(Table.EVENTS, DIRECT)}`,
      // Every row: the table is new, so nothing has counted any of them yet.
      backfill: `INSERT INTO ${v.target} ${v.select(`${Table.EVENTS} FINAL`, '1')}`,
    })),
  };
}

/**
 * Creates what is missing, and brings a store of an earlier version up to date: the columns that
 * `events` lacks, and views that count only the rows the ingest did not write in place of the ones
 * that counted them all. An aggregate table created over an `events` table that already holds rows
 * (a store from before the aggregates existed) is backfilled from the deduplicated raw rows. Do
 * either with every ingest stopped, or events inserted meanwhile may be counted twice or not at all.
 */
export async function createSchema(store: EventStore): Promise<EngineFeatures> {
  const features = engineFeatures(await store.version());
  const { tables, views } = schemaStatements(features);
  const tablesNow = async () =>
    new Set((await store.select<{ name: string }>(`SELECT name FROM system.tables WHERE database = currentDatabase()`)).map((t) => t.name));
  const before = await tablesNow();
  for (const sql of tables) await store.command(sql);

  // ADD COLUMN IF NOT EXISTS is not in 18.16; another process starting too may add it first.
  const eventColumns = async () =>
    new Set(
      (await store.select<{ name: string }>(`SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '${Table.EVENTS}'`)).map(
        (c) => c.name,
      ),
    );
  for (const [name, type] of ADDED_EVENT_COLUMNS) {
    if ((await eventColumns()).has(name)) continue;
    await store.command(`ALTER TABLE ${Table.EVENTS} ADD COLUMN ${name} ${type}`).catch(async (error: unknown) => {
      if (!(await eventColumns()).has(name)) throw error;
    });
  }
  for (const name of RETIRED_VIEWS) {
    if (before.has(name)) await store.command(`DROP TABLE IF EXISTS ${name}`);
  }

  const [raw] = await store.select<{ n: string | number }>(`SELECT count() AS n FROM ${Table.EVENTS}`);
  const hasRows = Number(raw?.n ?? 0) > 0;
  for (const view of views) {
    if (before.has(view.name)) continue;
    await store.command(view.sql);
    if (!before.has(view.target) && hasRows) await store.command(view.backfill);
  }
  return features;
}
