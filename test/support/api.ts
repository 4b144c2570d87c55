/** Signed requests against a control-plane app built in the test process (Fastify inject). */
import { randomBytes } from 'node:crypto';
import { hmacSignature, SignatureHeader } from '@mps/shared';
import type { buildApp } from '@mps/control-plane';

type App = Awaited<ReturnType<typeof buildApp>>;

export interface SignOptions {
  keyId: string;
  secret: string;
  timestamp?: number;
  nonce?: string;
  /** Replaces headers after signing (to test what a tampered request gets). */
  override?: Record<string, string | undefined>;
}

export function signedHeaders(method: string, url: string, body: string, options: SignOptions): Record<string, string> {
  const q = url.indexOf('?');
  const timestamp = String(options.timestamp ?? Date.now());
  const nonce = options.nonce ?? randomBytes(16).toString('base64url');
  const headers: Record<string, string> = {
    [SignatureHeader.KEY]: options.keyId,
    [SignatureHeader.TIMESTAMP]: timestamp,
    [SignatureHeader.NONCE]: nonce,
    [SignatureHeader.SIGNATURE]: hmacSignature(options.secret, {
      method,
      path: q === -1 ? url : url.slice(0, q),
      query: q === -1 ? '' : url.slice(q + 1),
      timestamp,
      nonce,
      body,
    }),
  };
  if (body !== '') headers['content-type'] = 'application/json';
  for (const [name, value] of Object.entries(options.override ?? {})) {
    if (value === undefined) delete headers[name];
    else headers[name] = value;
  }
  return headers;
}

export async function signedInject(app: App, method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, body: unknown, options: SignOptions) {
  const raw = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
  const response = await app.inject({ method, url, headers: signedHeaders(method, url, raw, options), payload: raw === '' ? undefined : raw });
  return { status: response.statusCode, body: response.body === '' ? undefined : (response.json() as Record<string, unknown>) };
}
