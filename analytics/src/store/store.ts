/**
 * Where tracking events are kept: a ClickHouse server or embedded chDB, behind one small interface
 * and with the same SQL (schema.ts says where the engine's version changes a column type).
 */
import type { EventBatch } from './batch.js';

/** How `insert` tags the rows it writes. */
export interface InsertOptions {
  /** Earlier failed tries of the same batch (0 on the first). */
  attempt?: number;
  /**
   * The ingest's write that stores them (`events.batch`); the ingest then counts them in the
   * aggregates itself. 0 (the default): the views count them.
   */
  batch?: bigint;
  /** The aggregates that already count these events (`events.counted`, bits of aggregates.ts). */
  counted?: number;
}

export interface EventStore {
  /** Creates the tables and views when they are missing (schema.ts). */
  init(): Promise<void>;
  /** The engine's version, e.g. "18.16.1". */
  version(): Promise<string>;
  /** Inserts events into `events`. */
  insert(batch: EventBatch, options?: InsertOptions): Promise<void>;
  /**
   * Inserts TabSeparated rows in one statement: one block, so at most one new part per partition,
   * which lands whole or not at all.
   */
  insertRows(table: string, columns: readonly string[], tsv: Buffer): Promise<void>;
  /** Runs a statement that returns no rows (DDL, ALTER, INSERT ... SELECT). */
  command(sql: string): Promise<void>;
  /** Runs a SELECT and returns its rows. 64-bit integers may come back as strings: use Number(). */
  select<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

/** A store that failed to do what it was asked: the batch is kept and retried. */
export class StoreError extends Error {
  override name = 'StoreError';
  constructor(
    readonly code: 'STORE_UNAVAILABLE' | 'STORE_QUERY_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** SQL string literal. Report SQL splices only values the request parser already checked. */
export const quote = (value: string): string =>
  `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\0/g, '\\0')}'`;

/**
 * Rows of a JSONCompact answer as objects. One JSON.parse of the whole answer is several times
 * cheaper than one per JSONEachRow line, which shows on a report of tens of thousands of rows.
 */
export function compactRows<T>(answer: { meta: { name: string }[]; data: unknown[][] }): T[] {
  const names = answer.meta.map((m) => m.name);
  return answer.data.map((values) => {
    const row: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) row[names[i] as string] = values[i];
    return row as T;
  });
}
