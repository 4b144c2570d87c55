/**
 * What one database costs its PostgreSQL server while something happens: the server's cumulative
 * counters for the database (pg_stat_database: transactions, rows read and written, blocks) and
 * its backends as pg_stat_activity shows them (how many run a statement, how many wait on a lock,
 * their CPU time from /proc). Read over a connection to the `postgres` database, so that the
 * sampling itself adds nothing to the database's counters.
 *
 * PostgreSQL 15 backends publish their counters at most once a second while busy and 10 s after
 * they go idle (PGSTAT_MIN_INTERVAL, PGSTAT_IDLE_INTERVAL): totals are exact only between two
 * snapshots each taken after 10 s of quiet (`settled()`); the per-second timeline is approximate.
 * Per-table counters (`tables()`) say where the rows read and written went; they are read in the
 * database itself, at the cost of one statement each.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';

export const COUNTERS = ['xact_commit', 'xact_rollback', 'tup_returned', 'tup_fetched', 'tup_inserted', 'tup_updated', 'tup_deleted', 'blks_read', 'blks_hit'] as const;
export type Counters = Record<(typeof COUNTERS)[number], number> & { at: number };

/** How long a backend may keep its counters to itself once idle, plus a margin. */
export const STATS_SETTLE_MS = 11_000;
const TIMELINE_MS = 1000;
const ACTIVITY_MS = 100;
const CLOCK_TICKS_PER_S = 100;

export interface Activity {
  samples: number;
  peakActive: number;
  meanActive: number;
  peakBackends: number;
  peakLockWaits: number;
  /** CPU seconds the database's backends used while sampled (backends seen at least twice). */
  backendCpuS: number;
}

export interface Sampling {
  /** Per-second differences of the counters (approximate, see above). */
  timeline: (Counters & { s: number })[];
  activity: Activity;
}

/** Rows read and written in one table (user or catalog), cumulative. */
export interface TableCounters {
  table: string;
  seq_read: number;
  idx_fetch: number;
  written: number;
}

export const difference = (after: Counters, before: Counters): Counters =>
  Object.fromEntries([['at', after.at - before.at], ...COUNTERS.map((c) => [c, after[c] - before[c]])]) as Counters;

async function cpuTicks(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // The command may hold spaces and parentheses: the fields start after the last ')'.
  const fields = stat?.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields ? Number(fields[11]) + Number(fields[12]) : undefined;
}

export class PgLoad {
  private sampling: { stop: () => Promise<Sampling> } | undefined;

  private constructor(
    private readonly client: pg.Client,
    private readonly inside: pg.Client,
    private readonly database: string,
  ) {}

  /** `databaseUrl`: the database to watch; the sampler connects to `postgres` on the same server. */
  static async watch(databaseUrl: string): Promise<PgLoad> {
    const url = new URL(databaseUrl);
    const database = url.pathname.slice(1);
    url.pathname = '/postgres';
    const client = new pg.Client({ connectionString: url.toString() });
    const inside = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await inside.connect();
    return new PgLoad(client, inside, database);
  }

  /** Every table's rows read by sequential scans, fetched by index scans, and written, so far (the database's own tables and catalogs). */
  async tables(): Promise<Map<string, TableCounters>> {
    const { rows } = await this.inside.query<{ table: string; seq_read: string; idx_fetch: string; written: string }>(
      // Shared catalogs (pg_database...) count every database's reads: left out.
      `SELECT s.relname AS table, s.seq_tup_read AS seq_read, coalesce(s.idx_tup_fetch, 0) AS idx_fetch,
              s.n_tup_ins + s.n_tup_upd + s.n_tup_del AS written
       FROM pg_stat_all_tables s JOIN pg_class c ON c.oid = s.relid
       WHERE NOT c.relisshared`,
    );
    return new Map(rows.map((r) => [r.table, { table: r.table, seq_read: Number(r.seq_read), idx_fetch: Number(r.idx_fetch), written: Number(r.written) }]));
  }

  async counters(): Promise<Counters> {
    const { rows } = await this.client.query<Record<string, string>>(
      `SELECT ${COUNTERS.join(', ')} FROM pg_stat_database WHERE datname = $1`,
      [this.database],
    );
    const row = rows[0] ?? {};
    return Object.fromEntries([['at', Date.now()], ...COUNTERS.map((c) => [c, Number(row[c] ?? 0)])]) as Counters;
  }

  /** The counters once every backend has published what it did up to now (waits STATS_SETTLE_MS). */
  async settled(): Promise<Counters> {
    await new Promise((r) => setTimeout(r, STATS_SETTLE_MS));
    return this.counters();
  }

  /** Samples until the returned function is called. */
  start(): void {
    let running = true;
    const timeline: Sampling['timeline'] = [];
    const activity = { samples: 0, peakActive: 0, sumActive: 0, peakBackends: 0, peakLockWaits: 0 };
    const cpu = new Map<number, { first: number; last: number }>();
    const started = Date.now();
    const counters = (async () => {
      let previous = await this.counters();
      while (running) {
        await new Promise((r) => setTimeout(r, TIMELINE_MS));
        const now = await this.counters();
        timeline.push({ ...difference(now, previous), s: Math.round((now.at - started) / 1000) });
        previous = now;
      }
    })();
    const backends = (async () => {
      while (running) {
        const { rows } = await this.client.query<{ pid: number; state: string | null; wait_event_type: string | null }>(
          `SELECT pid, state, wait_event_type FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'`,
          [this.database],
        );
        const active = rows.filter((r) => r.state === 'active').length;
        activity.samples += 1;
        activity.sumActive += active;
        activity.peakActive = Math.max(activity.peakActive, active);
        activity.peakBackends = Math.max(activity.peakBackends, rows.length);
        activity.peakLockWaits = Math.max(activity.peakLockWaits, rows.filter((r) => r.wait_event_type === 'Lock').length);
        for (const { pid } of rows) {
          const ticks = await cpuTicks(pid);
          if (ticks === undefined) continue;
          const seen = cpu.get(pid);
          if (seen) seen.last = ticks;
          else cpu.set(pid, { first: ticks, last: ticks });
        }
        await new Promise((r) => setTimeout(r, ACTIVITY_MS));
      }
    })();
    this.sampling = {
      stop: async () => {
        running = false;
        await Promise.all([counters, backends]);
        const ticks = [...cpu.values()].reduce((sum, c) => sum + c.last - c.first, 0);
        return {
          timeline,
          activity: {
            samples: activity.samples,
            peakActive: activity.peakActive,
            meanActive: activity.samples === 0 ? 0 : activity.sumActive / activity.samples,
            peakBackends: activity.peakBackends,
            peakLockWaits: activity.peakLockWaits,
            backendCpuS: ticks / CLOCK_TICKS_PER_S,
          },
        };
      },
    };
  }

  async stop(): Promise<Sampling> {
    const sampling = this.sampling;
    this.sampling = undefined;
    if (!sampling) throw new Error('PgLoad.stop() without start()');
    return sampling.stop();
  }

  async close(): Promise<void> {
    await this.sampling?.stop();
    await this.client.end();
    await this.inside.end();
  }
}

/** The tables that read or wrote most between two `tables()` snapshots. */
export function busiestTables(after: Map<string, TableCounters>, before: Map<string, TableCounters>, top = 8): TableCounters[] {
  return [...after.values()]
    .map((t) => {
      const b = before.get(t.table);
      return { table: t.table, seq_read: t.seq_read - (b?.seq_read ?? 0), idx_fetch: t.idx_fetch - (b?.idx_fetch ?? 0), written: t.written - (b?.written ?? 0) };
    })
    .filter((t) => t.seq_read + t.idx_fetch + t.written > 0)
    .sort((x, y) => y.seq_read + y.idx_fetch + y.written - (x.seq_read + x.idx_fetch + x.written))
    .slice(0, top);
}

const per = (n: number, of: number) => Math.round((n / Math.max(1, of)) * 1000) / 1000;
const written = (c: Counters) => c.tup_inserted + c.tup_updated + c.tup_deleted;

/** What `units` of work (reconnects, say) cost the database: totals, per unit, peaks, backends, busiest tables. */
export function describeLoad(used: Counters, sampling: Sampling, units: number, tables: TableCounters[]) {
  const peak = (of: (t: Counters) => number) => sampling.timeline.reduce((max, t) => Math.max(max, of(t)), 0);
  return {
    units,
    seconds: Math.round(used.at / 100) / 10,
    transactions: used.xact_commit,
    rollbacks: used.xact_rollback,
    rows_fetched: used.tup_fetched,
    rows_returned: used.tup_returned,
    rows_written: written(used),
    blocks_read: used.blks_read,
    per_unit: {
      transactions: per(used.xact_commit, units),
      rows_written: per(written(used), units),
      rows_fetched: per(used.tup_fetched, units),
      rows_returned: per(used.tup_returned, units),
      backend_cpu_ms: per(sampling.activity.backendCpuS * 1000, units),
    },
    peak_per_second: { transactions: peak((t) => t.xact_commit), rows_fetched: peak((t) => t.tup_fetched), rows_written: peak(written) },
    backends: {
      peak_active: sampling.activity.peakActive,
      mean_active: Math.round(sampling.activity.meanActive * 100) / 100,
      peak_connections: sampling.activity.peakBackends,
      peak_lock_waits: sampling.activity.peakLockWaits,
      cpu_seconds: Math.round(sampling.activity.backendCpuS * 100) / 100,
    },
    busiest_tables: tables,
    timeline_per_second: sampling.timeline.map((t) => ({ s: t.s, transactions: t.xact_commit, fetched: t.tup_fetched, written: written(t) })),
  };
}
