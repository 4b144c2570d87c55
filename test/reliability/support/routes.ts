/**
 * Every signed API route, read from the OpenAPI document the control plane serves (so a route
 * added later is covered without touching the scenarios), and a snapshot of everything an app owns
 * in PostgreSQL, to prove that a refused request changed nothing.
 */
import type { Db } from '@mps/shared';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  additionalProperties?: boolean | JsonSchema;
}

export interface Operation {
  method: Method;
  /** As OpenAPI writes it: /v1/devices/{id} */
  path: string;
  pathParams: string[];
  queryParams: string[];
  body: JsonSchema | undefined;
}

export async function apiOperations(apiUrl: string): Promise<Operation[]> {
  const doc = (await (await fetch(`${apiUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { parameters?: { in: string; name: string }[]; requestBody?: { content: Record<string, { schema: JsonSchema }> } }>>;
  };
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      operations.push({
        method: method.toUpperCase() as Method,
        path,
        pathParams: (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
        queryParams: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        body: op.requestBody?.content['application/json']?.schema,
      });
    }
  }
  return operations;
}

export const fillPath = (path: string, values: Record<string, string>): string =>
  path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? ''));

/**
 * Every row of every table that belongs to the app (an `app_id` column), and the rows of its
 * devices' and messages' tables, as one comparable value. Times the service updates by itself
 * (last_seen_at) are left out.
 */
export async function snapshot(db: Db, app: string): Promise<Record<string, unknown[]>> {
  const tables = await db.query<{ table_name: string }>(
    `SELECT DISTINCT table_name FROM information_schema.columns
     WHERE table_schema = 'public' AND column_name = 'app_id' ORDER BY table_name`,
  );
  const out: Record<string, unknown[]> = { apps: (await db.query('SELECT * FROM apps WHERE id = $1', [app])).rows };
  for (const { table_name } of tables.rows) {
    const rows = await db.query(`SELECT * FROM ${table_name} WHERE app_id = $1`, [app]);
    out[table_name] = rows.rows.map(stable).sort(byJson);
  }
  const byDevice = await db.query<{ table_name: string }>(
    `SELECT DISTINCT table_name FROM information_schema.columns
     WHERE table_schema = 'public' AND column_name = 'device_id'
       AND table_name NOT IN (SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'app_id')`,
  );
  for (const { table_name } of byDevice.rows) {
    const rows = await db.query(`SELECT t.* FROM ${table_name} t JOIN devices d ON d.id = t.device_id WHERE d.app_id = $1`, [app]);
    out[table_name] = rows.rows.map(stable).sort(byJson);
  }
  return out;
}

function stable(row: Record<string, unknown>): Record<string, unknown> {
  const { last_seen_at: _seen, ...rest } = row;
  return rest;
}

const byJson = (a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);
