/** Signed requests over real HTTP, exactly as sent (no SDK retries), for the hostile-input scenarios. */
import { signedHeaders, type SignOptions } from '../../support/api.js';

export interface Answer {
  status: number;
  body: { error?: { code?: string; message?: string; field?: string } } & Record<string, unknown>;
  headers: Headers;
  ms: number;
}

export async function send(
  baseUrl: string,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  body: unknown,
  sign: SignOptions,
  /** Bytes sent instead of the signed body (a tampered request). */
  sentBody?: string,
): Promise<Answer> {
  const raw = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const started = performance.now();
  const response = await fetch(baseUrl + url, {
    method,
    headers: signedHeaders(method, url, raw, sign),
    body: sentBody ?? (raw === '' ? undefined : raw),
  });
  const text = await response.text();
  let parsed: Answer['body'] = {};
  try {
    parsed = text === '' ? {} : (JSON.parse(text) as Answer['body']);
  } catch {
    parsed = { unparsed: text.slice(0, 200) };
  }
  return { status: response.status, body: parsed, headers: response.headers, ms: performance.now() - started };
}
