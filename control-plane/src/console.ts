/**
 * The console's own routes, under /console/api: sign in and out, the session (who am I, my apps,
 * the CSRF token) and creating an app. Everything else the console does goes through /v1 with
 * the session, like any other client (auth.ts).
 */
import type { FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import Type from 'typebox';
import type { Api } from './api.js';
import { csrfPasses, fromOtherOrigin } from './auth.js';
import { ApiError } from './errors.js';
import type { KeyStore } from './keys.js';
import { EMAIL_PATTERN, type OperatorStore } from './operators.js';
import { MAX_PASSWORD_LENGTH } from './passwords.js';
import {
  clearedCookie,
  CSRF_HEADER,
  csrfTokenOf,
  sessionCookie,
  sessionTokenOf,
  type CookiePolicy,
  type Session,
  type SessionStore,
} from './sessions.js';

type ConsoleSession = Session & { token: string };

declare module 'fastify' {
  interface FastifyRequest {
    consoleSession: ConsoleSession | undefined;
  }
}

export interface ConsoleApiDeps {
  operators: OperatorStore;
  sessions: SessionStore;
  keys: KeyStore;
  cookie: CookiePolicy;
  /** Sign-in attempts one address may make a minute on one process. */
  signInsPerMinute: number;
}

const AppOut = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.String() });
const SessionOut = Type.Object({
  operator: Type.Object({ id: Type.String(), email: Type.String() }),
  csrfToken: Type.String({ description: `send it as ${CSRF_HEADER} on every request that is not a GET` }),
  expiresAt: Type.String(),
  apps: Type.Array(AppOut),
});
const SignInBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254, pattern: EMAIL_PATTERN }),
    password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH }),
  },
  { additionalProperties: false },
);
const CreateAppBody = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64, pattern: '\\S' }) }, { additionalProperties: false });
const CreatedAppOut = Type.Object({
  app: AppOut,
  key: Type.Object({ id: Type.String(), secret: Type.String({ description: 'shown this once' }) }),
});

export async function consoleApiRoutes(app: Api, deps: ConsoleApiDeps): Promise<void> {
  app.addHook('onSend', async (_, reply) => {
    reply.header('cache-control', 'no-store');
  });

  /** The request's live session; a state-changing request also needs its CSRF token. */
  async function sessionOf(request: FastifyRequest): Promise<ConsoleSession> {
    const token = sessionTokenOf(deps.cookie, request.headers.cookie);
    if (token === undefined) throw new ApiError('AUTH_NO_SESSION', 'no live session: sign in');
    const session = await deps.sessions.find(token);
    if (!session) throw new ApiError('AUTH_NO_SESSION', 'no live session: sign in');
    if (!csrfPasses(request, token)) {
      throw new ApiError('CSRF_FAILED', `a ${request.method} request needs the session's ${CSRF_HEADER} header`);
    }
    return { token, ...session };
  }

  const sessionOut = async (token: string, session: Session) => ({
    operator: session.operator,
    csrfToken: csrfTokenOf(token),
    expiresAt: session.expiresAt.toISOString(),
    apps: await deps.operators.appsOf(session.operator.id),
  });

  await app.register(async (signIn: Api) => {
    await signIn.register(rateLimit, {
      max: deps.signInsPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => request.ip,
      errorResponseBuilder: (_, context) => new ApiError('RATE_LIMITED', `too many sign-in attempts from this address; retry after ${context.after}`),
    });
    signIn.post('/console/api/sign-in', { schema: { hide: true, body: SignInBody, response: { 200: SessionOut } } }, async (request, reply) => {
      // No session yet, so no CSRF token: a page of another site is told apart by its Origin, and
      // cannot send a JSON body without a CORS preflight, which is never granted.
      if (fromOtherOrigin(request)) throw new ApiError('CSRF_FAILED', 'signing in from another site is refused');
      const result = await deps.operators.signIn(request.body.email, request.body.password);
      if (!result.ok) {
        if (result.retryAfterS !== undefined) {
          reply.header('retry-after', String(result.retryAfterS));
          throw new ApiError('RATE_LIMITED', `too many failed sign-ins for this account; retry after ${result.retryAfterS} seconds`);
        }
        throw new ApiError('SIGN_IN_FAILED', 'wrong email or password');
      }
      const { token, expiresAt } = await deps.sessions.open(result.operator.id);
      reply.header('set-cookie', sessionCookie(deps.cookie, token));
      return sessionOut(token, { operator: result.operator, expiresAt });
    });
  });

  app.post('/console/api/sign-out', { schema: { hide: true } }, async (request, reply) => {
    const token = sessionTokenOf(deps.cookie, request.headers.cookie);
    if (token !== undefined && (await deps.sessions.find(token))) {
      await sessionOf(request); // the CSRF check
      await deps.sessions.close(token);
    }
    return reply.header('set-cookie', clearedCookie(deps.cookie)).code(204).send();
  });

  // The routes below need a live session, checked before the body is: no session, no validation errors.
  await app.register(async (signedIn: Api) => {
    signedIn.decorateRequest('consoleSession', undefined);
    signedIn.addHook('onRequest', async (request) => {
      request.consoleSession = await sessionOf(request);
    });
    const sessionIn = (request: FastifyRequest) => request.consoleSession as ConsoleSession;

    signedIn.get('/console/api/session', { schema: { hide: true, response: { 200: SessionOut } } }, async (request) => {
      const { token, ...session } = sessionIn(request);
      return sessionOut(token, session);
    });

    signedIn.get('/console/api/apps', { schema: { hide: true, response: { 200: Type.Object({ apps: Type.Array(AppOut) }) } } }, async (request) => ({
      apps: await deps.operators.appsOf(sessionIn(request).operator.id),
    }));

    signedIn.post('/console/api/apps', { schema: { hide: true, body: CreateAppBody, response: { 201: CreatedAppOut } } }, async (request, reply) => {
      const { operator } = sessionIn(request);
      const created = await deps.operators.createApp(operator.id, request.body.name.trim(), deps.keys);
      const app = (await deps.operators.appsOf(operator.id)).find((a) => a.id === created.app);
      if (!app) throw new ApiError('INTERNAL', "the new app is not among the operator's apps");
      return reply.code(201).send({ app, key: { id: created.keyId, secret: created.secret } });
    });
  });
}
