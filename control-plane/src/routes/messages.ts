/**
 * GET /v1/messages/{id}: a message's status, counts and per-device results.
 * GET /v1/messages: the app's messages, newest first, with paging.
 * GET /v1/tasks/{id}: a multiple push's messages and their counts added up.
 */
import Type from 'typebox';
import { oneOf, type Db } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

const TARGETS_SHOWN = 100;

const InboxStatus = ['pending', 'delivered', 'expired', 'revoked', 'failed', 'dropped'] as const;
type InboxStatus = (typeof InboxStatus)[number];

const VendorSendStatus = ['sending', 'retry', 'sent', 'failed', 'skipped'] as const;
type VendorSendStatus = (typeof VendorSendStatus)[number];

const Counts = Type.Object({
  targeted: Type.Integer(),
  pending: Type.Integer(),
  delivered: Type.Integer(),
  expired: Type.Integer(),
  revoked: Type.Integer(),
  failed: Type.Integer(),
  dropped: Type.Integer(),
});
type Counts = Record<'targeted' | InboxStatus, number>;

const Summary = {
  id: Type.String(),
  mode: Type.String(),
  pushType: Type.String(),
  taskId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  counts: Counts,
};

const MessageStatus = Type.Object({
  ...Summary,
  targets: Type.Array(
    Type.Object({
      device: Type.String(),
      status: oneOf(InboxStatus),
      channel: Type.Union([Type.String(), Type.Null()]),
      deliveredAt: Type.Union([Type.String(), Type.Null()]),
    }),
    { description: `the first ${TARGETS_SHOWN} targets in send order` },
  ),
  vendor: Type.Object(
    {
      counts: Type.Object({ sending: Type.Integer(), retry: Type.Integer(), sent: Type.Integer(), failed: Type.Integer(), skipped: Type.Integer() }),
      sends: Type.Array(
        Type.Object({
          device: Type.String(),
          vendor: Type.String(),
          status: oneOf(VendorSendStatus),
          reason: Type.Union([Type.String(), Type.Null()]),
          attempts: Type.Integer(),
          updatedAt: Type.String(),
        }),
        { description: `the first ${TARGETS_SHOWN} vendor sends by device` },
      ),
    },
    { description: 'what the vendor senders did per device (skipped: the socket had it, or had acked it)' },
  ),
});

/** The vendor ledger of one message: counts, and the first sends. */
async function vendorSendsOf(db: Db, message: string) {
  const [counts, sends] = await Promise.all([
    db.query<{ status: VendorSendStatus; n: number }>('SELECT status, count(*)::int AS n FROM vendor_sends WHERE message_id = $1 GROUP BY 1', [message]),
    db.query<{ device_id: string; vendor: string; status: VendorSendStatus; reason: string | null; attempts: number; updated_at: Date }>(
      'SELECT device_id, vendor, status, reason, attempts, updated_at FROM vendor_sends WHERE message_id = $1 ORDER BY device_id LIMIT $2',
      [message, TARGETS_SHOWN],
    ),
  ]);
  const total = { sending: 0, retry: 0, sent: 0, failed: 0, skipped: 0 };
  for (const r of counts.rows) total[r.status] = r.n;
  return {
    counts: total,
    sends: sends.rows.map((r) => ({
      device: r.device_id,
      vendor: r.vendor,
      status: r.status,
      reason: r.reason,
      attempts: r.attempts,
      updatedAt: r.updated_at.toISOString(),
    })),
  };
}

/** A pending row past its expiry is reported as expired even before the purge marks it. */
const EFFECTIVE_STATUS = `CASE WHEN i.status = 'pending' AND i.expires_at <= now() THEN 'expired' ELSE i.status END`;

interface MessageRow {
  id: string;
  mode: string;
  push_type: string;
  task_id: string | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  targeted: number | null;
}

const MESSAGE_COLUMNS = 'm.id, m.mode, m.push_type, m.task_id, m.created_at, m.expires_at, m.revoked_at, m.targeted';

/** Per-status counts of these messages' inbox rows. */
async function countsOf(db: Db, messages: MessageRow[]): Promise<Map<string, Counts>> {
  const rows = await db.query<{ message_id: string; status: InboxStatus; n: number }>(
    `SELECT i.message_id, ${EFFECTIVE_STATUS} AS status, count(*)::int AS n FROM inbox i
     WHERE i.message_id = ANY($1::uuid[]) GROUP BY 1, 2`,
    [messages.map((m) => m.id)],
  );
  const counts = new Map<string, Counts>();
  const countedFromInbox = new Set(messages.filter((m) => m.targeted === null).map((m) => m.id));
  for (const m of messages) {
    // A broadcast has no inbox rows: its reach was counted when it was sent.
    counts.set(m.id, { targeted: m.targeted ?? 0, pending: 0, delivered: 0, expired: 0, revoked: 0, failed: 0, dropped: 0 });
  }
  for (const r of rows.rows) {
    const c = counts.get(r.message_id) as Counts;
    c[r.status] += r.n;
    if (countedFromInbox.has(r.message_id)) c.targeted += r.n;
  }
  return counts;
}

const summaryOf = (m: MessageRow, counts: Counts) => ({
  id: m.id,
  mode: m.mode,
  pushType: m.push_type,
  taskId: m.task_id,
  createdAt: m.created_at.toISOString(),
  expiresAt: m.expires_at.toISOString(),
  revokedAt: m.revoked_at?.toISOString() ?? null,
  counts,
});

export function messageRoutes(app: Api, db: Db): void {
  app.get(
    '/v1/messages/:id',
    { schema: { params: Type.Object({ id: Type.String({ format: 'uuid' }) }), response: { 200: MessageStatus } } },
    async (request) => {
      const found = await db.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = $1 AND m.app_id = $2`, [
        request.params.id,
        appOf(request),
      ]);
      const message = found.rows[0];
      if (!message) throw new ApiError('MESSAGE_NOT_FOUND', `no message ${request.params.id} in this app`);
      const targets = await db.query<{ device_id: string; status: InboxStatus; channel: string | null; delivered_at: Date | null }>(
        `SELECT i.device_id, ${EFFECTIVE_STATUS} AS status, i.channel, i.delivered_at FROM inbox i WHERE i.message_id = $1 ORDER BY i.seq LIMIT $2`,
        [message.id, TARGETS_SHOWN],
      );
      return {
        ...summaryOf(message, (await countsOf(db, [message])).get(message.id) as Counts),
        targets: targets.rows.map((t) => ({
          device: t.device_id,
          status: t.status,
          channel: t.channel,
          deliveredAt: t.delivered_at?.toISOString() ?? null,
        })),
        vendor: await vendorSendsOf(db, message.id),
      };
    },
  );

  app.get(
    '/v1/messages',
    {
      schema: {
        querystring: Type.Object(
          {
            // Query strings are not coerced (bodies stay strictly typed), so numbers arrive as digits.
            limit: Type.Optional(Type.String({ pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', description: '1-200, default 50' })),
            before: Type.Optional(Type.String({ format: 'uuid', description: 'the last id of the previous page' })),
            since: Type.Optional(Type.String({ format: 'date-time' })),
            until: Type.Optional(Type.String({ format: 'date-time' })),
            mode: Type.Optional(oneOf(['simple', 'template', 'multiple', 'broadcast'] as const)),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ messages: Type.Array(Type.Object(Summary)), next: Type.Union([Type.String(), Type.Null()]) }) },
      },
    },
    async (request) => {
      const q = request.query;
      const limit = q.limit === undefined ? 50 : Number(q.limit);
      const found = await db.query<MessageRow>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages m
         WHERE m.app_id = $1 AND ($2::uuid IS NULL OR m.id < $2) AND ($3::timestamptz IS NULL OR m.created_at >= $3)
           AND ($4::timestamptz IS NULL OR m.created_at < $4) AND ($5::text IS NULL OR m.mode = $5)
         ORDER BY m.id DESC LIMIT $6`,
        [appOf(request), q.before ?? null, q.since ?? null, q.until ?? null, q.mode ?? null, limit],
      );
      const counts = await countsOf(db, found.rows);
      const messages = found.rows.map((m) => summaryOf(m, counts.get(m.id) as Counts));
      return { messages, next: found.rows.length === limit ? (found.rows.at(-1)?.id ?? null) : null };
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: Type.Object({ taskId: Type.String(), counts: Counts, messages: Type.Array(Type.Object(Summary)) }) },
      },
    },
    async (request) => {
      const found = await db.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.task_id = $1 AND m.app_id = $2 ORDER BY m.id`, [
        request.params.id,
        appOf(request),
      ]);
      if (found.rowCount === 0) throw new ApiError('TASK_NOT_FOUND', `no task ${request.params.id} in this app`);
      const counts = await countsOf(db, found.rows);
      const total: Counts = { targeted: 0, pending: 0, delivered: 0, expired: 0, revoked: 0, failed: 0, dropped: 0 };
      for (const c of counts.values()) for (const k of Object.keys(total) as (keyof Counts)[]) total[k] += c[k];
      return { taskId: request.params.id, counts: total, messages: found.rows.map((m) => summaryOf(m, counts.get(m.id) as Counts)) };
    },
  );
}
