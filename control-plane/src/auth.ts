/**
 * Signature verification for /v1: header checks before the body is read, the signature over the
 * raw body once it is, then the nonce claim (only for correctly signed requests).
 */
import type { FastifyRequest } from 'fastify';
import type { Api } from './api.js';
import { CLOCK_SKEW_MS, NONCE_PATTERN, SignatureHeader, verifyRequest } from '@mps/shared';
import { ApiError } from './errors.js';
import type { ApiKey, KeyStore } from './keys.js';
import type { NonceGuard } from './nonces.js';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody: Buffer | undefined;
    apiKey: ApiKey | undefined;
  }
}

/** The authenticated app of a request that passed the signature check. */
export function appOf(request: FastifyRequest): string {
  if (!request.apiKey) throw new ApiError('INTERNAL', 'route registered without signature verification');
  return request.apiKey.app;
}

function header(request: FastifyRequest, name: string): string {
  const value = request.headers[name];
  if (typeof value !== 'string' || value === '') throw new ApiError('AUTH_MISSING_HEADER', `missing header ${name}`);
  return value;
}

export function registerSignatureCheck(app: Api, keys: KeyStore, nonces: NonceGuard): void {
  app.addHook('onRequest', async (request) => {
    const keyId = header(request, SignatureHeader.KEY);
    const timestamp = header(request, SignatureHeader.TIMESTAMP);
    const nonce = header(request, SignatureHeader.NONCE);
    header(request, SignatureHeader.SIGNATURE);
    if (!/^\d{1,16}$/.test(timestamp)) throw new ApiError('AUTH_INVALID_HEADER', `${SignatureHeader.TIMESTAMP} must be ms since the epoch`);
    if (Math.abs(Date.now() - Number(timestamp)) > CLOCK_SKEW_MS) {
      throw new ApiError('AUTH_EXPIRED_TIMESTAMP', 'the request timestamp is outside the allowed clock skew');
    }
    if (!NONCE_PATTERN.test(nonce)) {
      throw new ApiError('AUTH_INVALID_HEADER', `${SignatureHeader.NONCE} must be 16-64 characters of [A-Za-z0-9_-]`);
    }
    const key = await keys.find(keyId);
    if (!key) throw new ApiError('AUTH_UNKNOWN_KEY', 'unknown key');
    if (key.status !== 'active') throw new ApiError('AUTH_KEY_DISABLED', 'the key is disabled');
    request.apiKey = key;
  });

  app.addHook('preValidation', async (request) => {
    const key = request.apiKey;
    if (!key) throw new ApiError('INTERNAL', 'signature check ran without a key');
    const url = request.raw.url ?? '/';
    const q = url.indexOf('?');
    const signed = {
      method: request.method,
      path: q === -1 ? url : url.slice(0, q),
      query: q === -1 ? '' : url.slice(q + 1),
      timestamp: request.headers[SignatureHeader.TIMESTAMP] as string,
      nonce: request.headers[SignatureHeader.NONCE] as string,
      body: request.rawBody ?? '',
    };
    if (!verifyRequest(key, signed, request.headers[SignatureHeader.SIGNATURE] as string)) {
      request.apiKey = undefined;
      throw new ApiError('AUTH_BAD_SIGNATURE', 'the signature does not match the request');
    }
    if (!(await nonces.claim(key.id, signed.nonce))) {
      throw new ApiError('AUTH_REPLAYED_NONCE', 'the nonce was already used');
    }
  });
}
