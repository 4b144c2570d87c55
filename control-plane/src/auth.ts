/**
 * Authentication for /v1, one of two ways:
 * - a signature (business servers): header checks before the body is read, the signature over the
 *   raw body once it is, then the nonce claim (only for correctly signed requests);
 * - an operator session (the web console): the session cookie, a CSRF token on every request that
 *   is not a GET, and the `Mps-App` header naming an app the operator is a member of.
 * A request with any signature header takes the signature path, whatever cookie it carries.
 */
import type { FastifyRequest } from 'fastify';
import type { Api } from './api.js';
import { CLOCK_SKEW_MS, NONCE_PATTERN, SignatureHeader, verifyRequest } from '@mps/shared';
import { ApiError } from './errors.js';
import type { ApiKey, KeyStore } from './keys.js';
import type { NonceGuard } from './nonces.js';
import { APP_HEADER, csrfMatches, CSRF_HEADER, hasSessionCookie, sessionTokenOf, type CookiePolicy, type SessionStore } from './sessions.js';

/** An operator acting on one of their apps through the console. */
export interface OperatorActor {
  id: string;
  email: string;
  app: string;
  /** The app's own request rate limit, if it has one (as an API key carries it). */
  rateLimitPerS: number | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody: Buffer | undefined;
    apiKey: ApiKey | undefined;
    operator: OperatorActor | undefined;
  }
}

/** The authenticated app of a request: the app of its signing key, or the one its operator named. */
export function appOf(request: FastifyRequest): string {
  const app = request.apiKey?.app ?? request.operator?.app;
  if (app === undefined) throw new ApiError('INTERNAL', 'route registered without authentication');
  return app;
}

const SIGNATURE_HEADERS = Object.values(SignatureHeader);
const APP_ID = /^app_[A-Za-z0-9_-]{1,64}$/;

/** The methods that change nothing, and so need no CSRF token. */
export const isSafeMethod = (method: string): boolean => method === 'GET' || method === 'HEAD';

/** A browser names the origin of the page a request comes from; one of another site is refused. */
export function fromOtherOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    const from = new URL(origin);
    // Parsed the same way, so that a default port written out on one side only still matches.
    return from.host !== new URL(`${from.protocol}//${request.host}`).host;
  } catch {
    return true; // "null" (a sandboxed or local page), or not a URL at all
  }
}

/** The CSRF check of a state-changing console request: its own origin, and the session's token. */
export const csrfPasses = (request: FastifyRequest, token: string): boolean =>
  isSafeMethod(request.method) || (!fromOtherOrigin(request) && csrfMatches(token, request.headers[CSRF_HEADER] as string | undefined));

export function registerAuthentication(app: Api, deps: { keys: KeyStore; nonces: NonceGuard; sessions: SessionStore; cookie: CookiePolicy }): void {
  registerSessionCheck(app, deps.sessions, deps.cookie);
  registerSignatureCheck(app, deps.keys, deps.nonces);
}

/** Authenticates console requests (a session cookie and no signature header); leaves the rest to the signature check. */
function registerSessionCheck(app: Api, sessions: SessionStore, cookie: CookiePolicy): void {
  app.addHook('onRequest', async (request) => {
    if (SIGNATURE_HEADERS.some((name) => request.headers[name] !== undefined)) return;
    if (!hasSessionCookie(cookie, request.headers.cookie)) return;
    const token = sessionTokenOf(cookie, request.headers.cookie);
    const named = request.headers[APP_HEADER];
    const appId = typeof named === 'string' ? named : '';
    if (token === undefined) throw new ApiError('AUTH_NO_SESSION', 'no live session: sign in again');
    const session = await sessions.findForApp(token, APP_ID.test(appId) ? appId : '');
    if (!session) throw new ApiError('AUTH_NO_SESSION', 'no live session: sign in again');
    if (!csrfPasses(request, token)) {
      throw new ApiError('CSRF_FAILED', `a ${request.method} request needs the session's ${CSRF_HEADER} header`);
    }
    if (!session.member) throw new ApiError('APP_NOT_ALLOWED', `the ${APP_HEADER} header must name an app you are a member of`);
    request.operator = { id: session.operator.id, email: session.operator.email, app: appId, rateLimitPerS: session.rateLimitPerS };
  });
  // What an operator reads is theirs: no copy stays in the browser's cache.
  app.addHook('onSend', async (request, reply) => {
    if (request.operator) reply.header('cache-control', 'no-store');
  });
}

function header(request: FastifyRequest, name: string): string {
  const value = request.headers[name];
  if (typeof value !== 'string' || value === '') throw new ApiError('AUTH_MISSING_HEADER', `missing header ${name}`);
  return value;
}

function registerSignatureCheck(app: Api, keys: KeyStore, nonces: NonceGuard): void {
  app.addHook('onRequest', async (request) => {
    if (request.operator) return;
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
    if (request.operator) return;
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
