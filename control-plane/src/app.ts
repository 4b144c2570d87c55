/** The control plane's HTTP app, built from its dependencies and tested through inject(). */
import Fastify, { type FastifyBaseLogger, type FastifyError } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { JetStreamClient } from '@nats-io/jetstream';
import rateLimit from '@fastify/rate-limit';
import { ChannelStore, ensureVendorStream, isOutage, jetstreamManagerFor, type Db, type Logger, type NatsConnection, type Subjects } from '@mps/shared';
import type { Api } from './api.js';
import { appOf, registerAuthentication } from './auth.js';
import { DEFAULT_CONSOLE_DIR, loadConsoleAssets, serveConsole } from './console-assets.js';
import { consoleApiRoutes } from './console.js';
import { ApiError, errorBody, validationField } from './errors.js';
import type { KeyStore } from './keys.js';
import type { NonceGuard } from './nonces.js';
import { OperatorStore } from './operators.js';
import { SessionStore } from './sessions.js';
import { broadcastRoutes, createBroadcastService } from './routes/broadcast.js';
import { channelRoutes } from './routes/channels.js';
import { deviceCredentialRoutes } from './routes/device-credentials.js';
import { keyRoutes } from './routes/keys.js';
import { messageRoutes } from './routes/messages.js';
import { registerOpenApi, serveOpenApi } from './openapi.js';
import { profileRoutes } from './routes/profiles.js';
import { createPushService, pushRoutes } from './routes/push.js';
import { scheduleRoutes } from './routes/schedules.js';
import { createScheduler, type PushKind } from './scheduler.js';
import { receiptRoutes } from './routes/receipts.js';
import { reportRoutes } from './routes/reports.js';
import { revokeRoutes } from './routes/revoke.js';
import { templateRoutes } from './routes/templates.js';
import { TemplateStore } from './templates.js';
import { VendorJobs } from './vendor-jobs.js';

export interface AppDeps {
  db: Db;
  js: JetStreamClient;
  nc: NatsConnection;
  subjects: Subjects;
  keys: KeyStore;
  nonces: NonceGuard;
  log: Logger;
  defaultTtlS: number;
  maxTtlS: number;
  rateLimitPerS: number;
  /** How often scheduled pushes are looked for (default 1000 ms). */
  schedulerIntervalMs?: number;
  /** The web console; every field has a default (docs/console.md). */
  console?: Partial<ConsoleOptions>;
}

export interface ConsoleOptions {
  /** The built console (index.html and assets/). */
  dir: string;
  sessionTtlS: number;
  secureCookie: boolean;
  signInsPerMinute: number;
}

const CONSOLE_DEFAULTS: ConsoleOptions = { dir: DEFAULT_CONSOLE_DIR, sessionTtlS: 12 * 3600, secureCookie: true, signInsPerMinute: 20 };

const BODY_LIMIT = 1024 * 1024;
/** The dotted path of the first string (value or key) holding U+0000, '' for the value itself. */
function nulField(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, item] of Object.entries(value)) {
    const at = path === '' ? key : `${path}.${key}`;
    if (key.includes('\u0000')) return at;
    const found = nulField(item, at);
    if (found !== undefined) return found;
  }
  return undefined;
}

const nulError = (field: string) => new ApiError('VALIDATION_FAILED', 'text may not contain U+0000 (NUL)', { field });

/** Retry-After of a request refused while PostgreSQL or NATS is away (clients back off from there). */
const OUTAGE_RETRY_AFTER_S = 1;

export async function buildApp(deps: AppDeps): Promise<Api> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // JSON only: the signature covers the raw body, which is kept for JSON alone (others get 415).
  app.removeAllContentTypeParsers();
  app.decorateRequest('rawBody', undefined);
  app.decorateRequest('apiKey', undefined);
  app.decorateRequest('operator', undefined);
  // The signature covers the exact bytes sent, so keep them beside the parsed body.
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    if ((body as Buffer).length === 0) return done(null, undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse((body as Buffer).toString('utf8'));
    } catch (cause) {
      return done(new ApiError('BAD_JSON', 'the body is not valid JSON', { cause }), undefined);
    }
    // JSON can only carry a NUL escaped: look for one in the values only when the bytes have one.
    const field = (body as Buffer).includes('\\u0000') ? nulField(parsed) : undefined;
    if (field !== undefined) return done(nulError(field), undefined);
    done(null, parsed);
  });
  // PostgreSQL stores no U+0000 in text: refused here, with the field, rather than failing there.
  app.addHook('preValidation', async (request) => {
    const field = nulField(request.params) ?? nulField(request.query);
    if (field !== undefined) throw nulError(field);
  });

  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) {
      if (error.statusCode >= 500) {
        request.log.error({ err: error }, 'request failed');
        return reply.code(error.statusCode).send(errorBody(error.code, 'internal error'));
      }
      return reply.code(error.statusCode).send(errorBody(error.code, error.message, error.field));
    }
    if (error.validation) return reply.code(400).send(errorBody('VALIDATION_FAILED', error.message, validationField(error.validation)));
    if (error.statusCode === 413) return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE', error.message));
    if (error.statusCode === 415) return reply.code(415).send(errorBody('UNSUPPORTED_MEDIA_TYPE', 'send application/json'));
    if (error.statusCode !== undefined && error.statusCode < 500) {
      return reply.code(error.statusCode).send(errorBody('VALIDATION_FAILED', error.message));
    }
    if (isOutage(error)) {
      // PostgreSQL or NATS is away: nothing was accepted, and the same request will do once it is back.
      request.log.warn({ err: error }, 'request refused during an outage');
      return reply.code(503).header('retry-after', String(OUTAGE_RETRY_AFTER_S)).send(errorBody('UNAVAILABLE', 'the service is briefly unavailable: retry'));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send(errorBody('INTERNAL', 'internal error'));
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(errorBody('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });

  await registerOpenApi(app);
  app.get('/healthz', { schema: { hide: true } }, async () => ({ ok: true }));
  serveOpenApi(app);

  const templates = new TemplateStore(deps.db);
  await ensureVendorStream(await jetstreamManagerFor(deps.nc), deps.subjects);
  const vendorJobs = new VendorJobs(deps.js, deps.subjects);
  const pushes = createPushService({ ...deps, templates, vendorJobs });
  const broadcasts = createBroadcastService({ ...deps, vendorJobs });
  const scheduler = createScheduler({ db: deps.db, log: deps.log, intervalMs: deps.schedulerIntervalMs ?? 1000 });
  scheduler.start({
    fire: (appId, kind: PushKind, body) =>
      kind === 'broadcast' ? broadcasts.broadcast(appId, body as never) : pushes[kind](appId, body as never),
    check: async (appId, kind: PushKind, body) => (kind === 'broadcast' ? broadcasts.check(body as never) : pushes.check(appId, kind, body)),
  });
  app.addHook('onClose', () => scheduler.stop());
  const consoleOptions = { ...CONSOLE_DEFAULTS, ...deps.console };
  const cookie = { secure: consoleOptions.secureCookie, ttlS: consoleOptions.sessionTtlS };
  const sessions = new SessionStore(deps.db, consoleOptions.sessionTtlS);
  const consoleAssets = await loadConsoleAssets(consoleOptions.dir);
  await app.register(async (web: Api) => serveConsole(web, consoleAssets));
  await app.register(async (web: Api) =>
    consoleApiRoutes(web, { operators: new OperatorStore(deps.db), sessions, keys: deps.keys, cookie, signInsPerMinute: consoleOptions.signInsPerMinute }),
  );
  await app.register(async (v1: Api) => {
    registerAuthentication(v1, { keys: deps.keys, nonces: deps.nonces, sessions, cookie });
    // Counted per app once the request is authenticated, on this process (see docs/api.md).
    await v1.register(rateLimit, {
      hook: 'preHandler',
      timeWindow: 1000,
      keyGenerator: (request) => appOf(request),
      max: (request) => request.apiKey?.rateLimitPerS ?? request.operator?.rateLimitPerS ?? deps.rateLimitPerS,
      errorResponseBuilder: (_, context) =>
        new ApiError('RATE_LIMITED', `more than ${context.max} requests per second; retry after ${context.after}`),
    });
    pushRoutes(v1, pushes, scheduler);
    broadcastRoutes(v1, broadcasts, scheduler);
    scheduleRoutes(v1, scheduler);
    templateRoutes(v1, templates);
    profileRoutes(v1, deps);
    deviceCredentialRoutes(v1, deps);
    receiptRoutes(v1, deps.db);
    reportRoutes(v1, deps);
    messageRoutes(v1, deps.db);
    revokeRoutes(v1, deps);
    keyRoutes(v1, deps.keys);
    channelRoutes(v1, new ChannelStore(deps.db, deps.keys.sealer), vendorJobs);
  });

  await app.ready();
  return app;
}
