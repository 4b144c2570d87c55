import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { EVENT_COLUMNS, TAG_COLUMNS, type EventBatch } from './batch.js';
import { createSchema, Table } from './schema.js';
import { compactRows, StoreError, type EventStore, type InsertOptions } from './store.js';

/** Errors that mean the server could not be reached, not that it refused the statement. */
const UNREACHABLE = /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|Timeout error/i;

/** A ClickHouse server over HTTP (18.16 and later). */
export class ClickHouseStore implements EventStore {
  private readonly client: ClickHouseClient;

  constructor(url: string, options: { requestTimeoutMs?: number } = {}) {
    this.client = createClient({
      url,
      request_timeout: options.requestTimeoutMs ?? 30_000,
      // Failures are thrown to the caller, which logs them once with context.
      log: { level: ClickHouseLogLevel.OFF },
    });
  }

  async init(): Promise<void> {
    await createSchema(this);
  }

  async version(): Promise<string> {
    const [row] = await this.select<{ v: string }>('SELECT version() AS v');
    return row?.v ?? '';
  }

  /** TabSeparated: the server parses it in its own process, and 18.16 has no input() for JSON with conversions. */
  async insert(batch: EventBatch, { batch: id = 0n, counted = 0 }: InsertOptions = {}): Promise<void> {
    if (batch.size === 0) return;
    await this.insertRows(Table.EVENTS, [...EVENT_COLUMNS, ...TAG_COLUMNS], batch.tsv(`\t${id}\t${counted}`), `${batch.size} events`);
  }

  async insertRows(table: string, columns: readonly string[], tsv: Buffer, what = `rows into ${table}`): Promise<void> {
    const [first, ...rest] = columns;
    if (first === undefined) throw new StoreError('STORE_QUERY_FAILED', `an insert into ${table} names no column`);
    await this.guard(`insert of ${what}`, () =>
      this.client.insert({ table, columns: [first, ...rest], values: Readable.from([tsv], { objectMode: false }), format: 'TabSeparated' }),
    );
  }

  async command(sql: string): Promise<void> {
    await this.guard('statement', () => this.client.command({ query: sql }));
  }

  async select<T>(sql: string): Promise<T[]> {
    return this.guard('query', async () => {
      const result = await this.client.query({ query: sql, format: 'JSONCompact' });
      return compactRows<T>((await result.json()) as Parameters<typeof compactRows>[0]);
    });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async guard<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (cause) {
      const message = (cause as Error).message ?? String(cause);
      const code = UNREACHABLE.test(message) || UNREACHABLE.test(String((cause as { code?: string }).code)) ? 'STORE_UNAVAILABLE' : 'STORE_QUERY_FAILED';
      throw new StoreError(code, `ClickHouse ${what} failed: ${message}`, { cause });
    }
  }
}
