/** Templates: stored content with {{placeholders}}, rendered per push; a missing value is an error. */
import type { Db } from '@mps/shared';
import { ApiError } from './errors.js';

export interface Template {
  name: string;
  title?: string;
  body?: string;
  extras?: Record<string, string>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]{1,64})\s*\}\}/g;

/** The placeholder names a template uses, in order of first appearance. */
export function placeholders(template: Omit<Template, 'name'>): string[] {
  const texts = [template.title ?? '', template.body ?? '', ...Object.values(template.extras ?? {})];
  return [...new Set(texts.flatMap((text) => [...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string)))];
}

/** Fills every placeholder, or fails naming the ones without a value (never a half-rendered message). */
export function render(template: Template, values: Record<string, string>): Omit<Template, 'name'> {
  const missing = placeholders(template).filter((name) => values[name] === undefined);
  if (missing.length > 0) {
    throw new ApiError('MISSING_PLACEHOLDER', `template ${template.name} needs values for: ${missing.join(', ')}`);
  }
  const fill = (text: string) => text.replace(PLACEHOLDER, (_, name: string) => values[name] as string);
  return {
    ...(template.title !== undefined && { title: fill(template.title) }),
    ...(template.body !== undefined && { body: fill(template.body) }),
    ...(template.extras !== undefined && {
      extras: Object.fromEntries(Object.entries(template.extras).map(([k, v]) => [k, fill(v)])),
    }),
  };
}

interface TemplateRow {
  name: string;
  title: string | null;
  body: string | null;
  extras: Record<string, string> | null;
}

const fromRow = (row: TemplateRow): Template => ({
  name: row.name,
  ...(row.title !== null && { title: row.title }),
  ...(row.body !== null && { body: row.body }),
  ...(row.extras !== null && { extras: row.extras }),
});

export class TemplateStore {
  constructor(private readonly db: Db) {}

  async get(app: string, name: string): Promise<Template> {
    const r = await this.db.query<TemplateRow>('SELECT name, title, body, extras FROM templates WHERE app_id = $1 AND name = $2', [app, name]);
    const row = r.rows[0];
    if (!row) throw new ApiError('TEMPLATE_NOT_FOUND', `no template ${name} in this app`);
    return fromRow(row);
  }

  async list(app: string): Promise<Template[]> {
    const r = await this.db.query<TemplateRow>('SELECT name, title, body, extras FROM templates WHERE app_id = $1 ORDER BY name', [app]);
    return r.rows.map(fromRow);
  }

  /** Creates or replaces; answers whether it was created. */
  async put(app: string, template: Template): Promise<boolean> {
    const r = await this.db.query<{ created: boolean }>(
      `INSERT INTO templates (app_id, name, title, body, extras) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (app_id, name) DO UPDATE SET title = EXCLUDED.title, body = EXCLUDED.body, extras = EXCLUDED.extras, updated_at = now()
       RETURNING (xmax = 0) AS created`,
      [app, template.name, template.title ?? null, template.body ?? null, template.extras ?? null],
    );
    return r.rows[0]?.created ?? false;
  }

  async delete(app: string, name: string): Promise<void> {
    const r = await this.db.query('DELETE FROM templates WHERE app_id = $1 AND name = $2', [app, name]);
    if (r.rowCount === 0) throw new ApiError('TEMPLATE_NOT_FOUND', `no template ${name} in this app`);
  }
}
