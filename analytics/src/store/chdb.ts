import { mkdirSync } from 'node:fs';
import { Session } from 'chdb';
import { SCHEMA, type EventRow, type EventStore } from './store.js';

/** Embedded ClickHouse, in-process, with its files under `path`. */
export class ChdbStore implements EventStore {
  private readonly session: Session;

  constructor(path: string) {
    mkdirSync(path, { recursive: true });
    this.session = new Session(path);
  }

  async init(): Promise<void> {
    for (const sql of SCHEMA) await this.session.queryAsync(sql);
  }

  async insert(rows: EventRow[]): Promise<void> {
    if (rows.length === 0) return;
    const values = Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n'));
    await this.session.insert({ table: 'events', values, format: 'JSONEachRow' });
  }

  async select<T>(sql: string): Promise<T[]> {
    const text = (await this.session.queryAsync(sql, { format: 'JSONEachRow' })).text();
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as T);
  }

  async close(): Promise<void> {
    this.session.close();
  }
}
