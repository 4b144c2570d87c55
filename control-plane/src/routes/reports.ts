/**
 * Reports, answered by analytics over NATS request/reply:
 * - GET /v1/reports/messages/{id}: a message's funnel (targeted from the inbox, then distinct
 *   devices per event kind from analytics) and its rates;
 * - GET /v1/reports/tasks/{id}: the same for the messages of a multiple push, added up;
 * - GET /v1/reports/series: event counts per minute, hour or day (UTC), split by platform, app
 *   version, channel and push type.
 */
import Type, { type Static } from 'typebox';
import { EventKind, type Db, type NatsConnection, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

// The next two mirror analytics/src/reports/protocol.ts until shared/ holds the report protocol.
const GRANULARITIES = ['minute', 'hour', 'day'] as const;
const DIMENSIONS = ['platform', 'appVersion', 'channel', 'pushType'] as const;

const REPORT_TIMEOUT_MS = 15_000;

const Counts = Type.Object({
  sent: Type.Integer(),
  delivered: Type.Integer(),
  arrived: Type.Integer(),
  opened: Type.Integer(),
  ignored: Type.Integer(),
  expired: Type.Integer(),
  revoked: Type.Integer(),
  failed: Type.Integer(),
  dropped: Type.Integer(),
});
const Rate = Type.Union([Type.Number(), Type.Null()]);

const FunnelReport = Type.Object({
  id: Type.String(),
  targeted: Type.Integer({ description: 'devices the message (or the messages of the task) was addressed to' }),
  counts: Type.Object(Counts.properties, { description: 'distinct devices per event kind (for a task: distinct message and device pairs)' }),
  rates: Type.Object({
    delivery: Rate,
    display: Rate,
    open: Rate,
  }, { description: 'delivery = delivered / targeted, display = arrived / delivered, open = opened / arrived; null when the divisor is 0' }),
  channels: Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer()), { description: 'distinct devices per event kind, per channel' }),
});

const list = (values: readonly string[]) => `^(${values.join('|')})(,(${values.join('|')}))*$`;

const SeriesQuery = Type.Object(
  {
    granularity: Type.Union(GRANULARITIES.map((g) => Type.Literal(g))),
    from: Type.String({ format: 'date-time' }),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'default: now' })),
    by: Type.Optional(Type.String({ pattern: list(DIMENSIONS), description: 'comma-separated dimensions to split by' })),
    kinds: Type.Optional(Type.String({ pattern: list(EventKind), description: 'comma-separated event kinds (default: all)' })),
    platform: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    appVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    channel: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    pushType: Type.Optional(Type.String({ minLength: 1, maxLength: 2000 })),
    message: Type.Optional(Type.String({ format: 'uuid', description: "only this message's events" })),
  },
  { additionalProperties: false },
);

const SeriesReport = Type.Object({
  granularity: Type.String(),
  from: Type.String(),
  to: Type.String(),
  times: Type.Array(Type.String()),
  series: Type.Array(
    Type.Object({
      key: Type.Record(Type.String(), Type.String()),
      counts: Type.Record(Type.String(), Type.Array(Type.Integer())),
    }),
  ),
});

type Reply = Record<string, unknown> & { error?: unknown; code?: unknown };

async function ask(nc: NatsConnection, subject: string, request: object): Promise<Reply> {
  let reply: unknown;
  try {
    reply = (await nc.request(subject, JSON.stringify(request), { timeout: REPORT_TIMEOUT_MS })).json();
  } catch (cause) {
    throw new ApiError('UNAVAILABLE', 'analytics is not answering', { cause });
  }
  if (typeof reply !== 'object' || reply === null) throw new ApiError('INTERNAL', 'analytics answered something else than a report');
  const body = reply as Reply;
  if (typeof body.error === 'string') {
    if (body.code === 'BAD_REQUEST') throw new ApiError('VALIDATION_FAILED', body.error);
    throw new ApiError('UNAVAILABLE', 'analytics could not run the report', { cause: new Error(body.error) });
  }
  return body;
}

const rate = (part: number, whole: number): number | null => (whole === 0 ? null : Math.round((part / whole) * 10_000) / 10_000);

const split = (value: string | undefined): string[] | undefined => (value === undefined ? undefined : [...new Set(value.split(','))]);

export function reportRoutes(app: Api, deps: { nc: NatsConnection; subjects: Subjects; db: Db }): void {
  /** Messages of this app matching `condition` ($1 is the id, $2 the app), each with its targeted devices. */
  const messagesOf = (condition: string, id: string, appId: string) =>
    deps.db.query<{ id: string; targeted: number }>(
      // A broadcast records how many devices it aimed at; other messages have one inbox row per device.
      `SELECT m.id, coalesce(m.targeted, (SELECT count(*)::int FROM inbox i WHERE i.message_id = m.id)) AS targeted
       FROM messages m WHERE ${condition} AND m.app_id = $2`,
      [id, appId],
    );

  const funnelOf = async (appId: string, id: string, messages: { id: string; targeted: number }[]): Promise<Static<typeof FunnelReport>> => {
    const ids = messages.map((m) => m.id);
    const reply = await ask(deps.nc, deps.subjects.reportFunnel, ids.length === 1 ? { app: appId, message: ids[0] } : { app: appId, messages: ids });
    const funnel = (reply.funnel ?? {}) as Record<string, number>;
    const counts = Object.fromEntries(EventKind.map((k) => [k, funnel[k] ?? 0])) as Record<EventKind, number>;
    const targeted = messages.reduce((sum, m) => sum + m.targeted, 0);
    return {
      id,
      targeted,
      counts,
      rates: {
        delivery: rate(counts.delivered, targeted),
        display: rate(counts.arrived, counts.delivered),
        open: rate(counts.opened, counts.arrived),
      },
      channels: (reply.channels ?? {}) as Record<string, Record<string, number>>,
    };
  };

  const Id = Type.Object({ id: Type.String({ format: 'uuid' }) });

  app.get('/v1/reports/messages/:id', { schema: { params: Id, response: { 200: FunnelReport } } }, async (request) => {
    const appId = appOf(request);
    const { id } = request.params;
    const found = await messagesOf('m.id = $1', id, appId);
    if (found.rowCount === 0) throw new ApiError('MESSAGE_NOT_FOUND', `no message ${id} in this app`);
    return funnelOf(appId, id, found.rows);
  });

  app.get('/v1/reports/tasks/:id', { schema: { params: Id, response: { 200: FunnelReport } } }, async (request) => {
    const appId = appOf(request);
    const { id } = request.params;
    const found = await messagesOf('m.task_id = $1', id, appId);
    if (found.rowCount === 0) throw new ApiError('TASK_NOT_FOUND', `no task ${id} in this app`);
    return funnelOf(appId, id, found.rows);
  });

  app.get('/v1/reports/series', { schema: { querystring: SeriesQuery, response: { 200: SeriesReport } } }, async (request) => {
    const query = request.query;
    const to = query.to === undefined ? Date.now() : Date.parse(query.to);
    const from = Date.parse(query.from);
    if (!(from < to)) throw new ApiError('VALIDATION_FAILED', 'from must be before to');
    const where: Record<string, string[]> = {};
    for (const dimension of DIMENSIONS) {
      const values = split(query[dimension]);
      if (values !== undefined) where[dimension] = values;
    }
    const reply = await ask(deps.nc, deps.subjects.reportSeries, {
      app: appOf(request),
      granularity: query.granularity,
      from,
      to,
      by: split(query.by) ?? [],
      kinds: split(query.kinds) ?? [],
      where,
      ...(query.message === undefined ? {} : { message: query.message }),
    });
    return reply.series as Static<typeof SeriesReport>;
  });
}
