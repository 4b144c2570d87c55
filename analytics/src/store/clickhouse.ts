import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { SCHEMA, type EventRow, type EventStore } from './store.js';

/** A ClickHouse server over HTTP. */
export class ClickHouseStore implements EventStore {
  private readonly client: ClickHouseClient;

  constructor(url: string) {
    this.client = createClient({ url });
  }

  async init(): Promise<void> {
    for (const sql of SCHEMA) await this.client.command({ query: sql });
  }

  async insert(rows: EventRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.client.insert({ table: 'events', values: rows, format: 'JSONEachRow' });
  }

  async select<T>(sql: string): Promise<T[]> {
    const result = await this.client.query({ query: sql, format: 'JSONEachRow' });
    return result.json<T>();
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
