/**
 * Template placeholders, by the API's rules (docs/api.md section 8), for the previews: the
 * server renders what is sent, and refuses a push that leaves one without a value.
 */
export interface Content {
  title?: string;
  body?: string;
  extras?: Record<string, string>;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z0-9_.-]{1,64})\s*\}\}/g;

/** The names used, in order of first appearance: title, body, then the values of extras. */
export function placeholders(content: Content): string[] {
  const texts = [content.title ?? '', content.body ?? '', ...Object.values(content.extras ?? {})];
  return [...new Set(texts.flatMap((text) => [...text.matchAll(PLACEHOLDER)].map((m) => m[1] as string)))];
}

/** Fills the placeholders that have a value; the others stay as written, for the preview to mark. */
export function fill(text: string, values: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => values[name] ?? whole);
}

export function render(content: Content, values: Record<string, string>): Content {
  return {
    ...(content.title !== undefined && { title: fill(content.title, values) }),
    ...(content.body !== undefined && { body: fill(content.body, values) }),
    ...(content.extras !== undefined && {
      extras: Object.fromEntries(Object.entries(content.extras).map(([k, v]) => [k, fill(v, values)])),
    }),
  };
}

export const missingValues = (content: Content, values: Record<string, string>): string[] =>
  placeholders(content).filter((name) => values[name] === undefined);
