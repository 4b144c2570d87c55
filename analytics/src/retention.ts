/**
 * Retention: whole partitions older than each table's limit are dropped, once at start and then
 * hourly. Dropping a partition is instant and works the same on ClickHouse 18.16 and on chDB
 * (table TTL came in 19.6 and deletes by rewriting parts). Partitions are days for `events` and the
 * minute tables and months for the hour tables; a partition goes when its last day is past the limit.
 */
import type { Logger } from '@mps/shared';
import { Table } from './store/schema.js';
import { quote, type EventStore } from './store/store.js';

export interface RetentionPolicy {
  /** Days of raw events (per-message funnels and per-message series). */
  rawDays: number;
  /** Days of per-minute aggregates. */
  minuteDays: number;
  /** Days of per-hour aggregates (hour and day reports). */
  hourDays: number;
}

const DAY_MS = 86_400_000;

/** The last day (UTC, ms) a partition id of a toYYYYMMDD or toYYYYMM partition covers. */
export function partitionLastDay(partitionId: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})?$/.exec(partitionId);
  if (!m) return undefined;
  const [, year, month, day] = m.map(Number) as [number, number, number, number | undefined];
  if (Number.isNaN(day)) return Date.UTC(year, month, 0); // day 0 of the next month: this month's last day
  return Date.UTC(year, month - 1, day as number);
}

/** Drops the partitions past the policy and returns what was dropped, as `table:partition`. */
export async function dropExpired(store: EventStore, policy: RetentionPolicy, now = Date.now()): Promise<string[]> {
  const limits: Record<string, number> = {
    [Table.EVENTS]: policy.rawDays,
    [Table.MINUTE]: policy.minuteDays,
    [Table.MINUTE_BY]: policy.minuteDays,
    [Table.HOUR]: policy.hourDays,
    [Table.HOUR_BY]: policy.hourDays,
  };
  const today = Math.floor(now / DAY_MS) * DAY_MS;
  const parts = await store.select<{ table: string; partition_id: string }>(
    `SELECT DISTINCT table, partition_id FROM system.parts
     WHERE database = currentDatabase() AND active AND table IN (${Object.keys(limits).map(quote).join(', ')})`,
  );
  const dropped: string[] = [];
  for (const { table, partition_id: id } of parts) {
    const lastDay = partitionLastDay(id);
    const days = limits[table];
    if (lastDay === undefined || days === undefined || lastDay > today - days * DAY_MS) continue;
    await store.command(`ALTER TABLE ${table} DROP PARTITION ID ${quote(id)}`);
    dropped.push(`${table}:${id}`);
  }
  return dropped;
}

export function startRetention(deps: { store: EventStore; policy: RetentionPolicy; log: Logger; everyMs?: number }): { stop(): void } {
  const run = () =>
    dropExpired(deps.store, deps.policy).then(
      (dropped) => {
        if (dropped.length > 0) deps.log.info({ dropped }, 'expired analytics partitions dropped');
      },
      (error: unknown) => deps.log.error({ err: error }, 'dropping expired analytics partitions failed; trying again later'),
    );
  void run();
  const timer = setInterval(() => void run(), deps.everyMs ?? 3_600_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
