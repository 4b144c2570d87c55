/** GET /v1/messages/{id}: a message's status, counts and per-device results. */
import Type from 'typebox';
import type { Api } from '../api.js';
import { oneOf, type Db } from '@mps/shared';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

const TARGETS_SHOWN = 100;

const InboxStatus = ['pending', 'delivered', 'expired', 'revoked', 'failed'] as const;
const Status = oneOf(InboxStatus);

const MessageStatus = Type.Object({
  id: Type.String(),
  mode: Type.String(),
  pushType: Type.String(),
  createdAt: Type.String(),
  expiresAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
  counts: Type.Object({
    targeted: Type.Integer(),
    pending: Type.Integer(),
    delivered: Type.Integer(),
    expired: Type.Integer(),
    revoked: Type.Integer(),
    failed: Type.Integer(),
  }),
  targets: Type.Array(
    Type.Object({
      device: Type.String(),
      status: Status,
      channel: Type.Union([Type.String(), Type.Null()]),
      deliveredAt: Type.Union([Type.String(), Type.Null()]),
    }),
    { description: `the first ${TARGETS_SHOWN} targets in send order` },
  ),
});

export function messageRoutes(app: Api, db: Db): void {
  app.get(
    '/v1/messages/:id',
    {
      schema: {
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: MessageStatus },
      },
    },
    async (request) => {
      const appId = appOf(request);
      const found = await db.query<{
        id: string;
        mode: string;
        push_type: string;
        created_at: Date;
        expires_at: Date;
        revoked_at: Date | null;
        targeted: number | null;
      }>(
        'SELECT id, mode, push_type, created_at, expires_at, revoked_at, targeted FROM messages WHERE id = $1 AND app_id = $2',
        [request.params.id, appId],
      );
      const message = found.rows[0];
      if (!message) throw new ApiError('MESSAGE_NOT_FOUND', `no message ${request.params.id} in this app`);

      // A pending row past its expiry is reported as expired even before the purge marks it.
      const effective = `CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END`;
      const counts = await db.query<{ status: string; n: number }>(
        `SELECT ${effective} AS status, count(*)::int AS n FROM inbox WHERE message_id = $1 GROUP BY 1`,
        [message.id],
      );
      const targets = await db.query<{ device_id: string; status: (typeof InboxStatus)[number]; channel: string | null; delivered_at: Date | null }>(
        `SELECT device_id, ${effective} AS status, channel, delivered_at FROM inbox WHERE message_id = $1 ORDER BY seq LIMIT $2`,
        [message.id, TARGETS_SHOWN],
      );
      const byStatus = Object.fromEntries(counts.rows.map((r) => [r.status, r.n]));
      const count = (status: string): number => byStatus[status] ?? 0;
      return {
        id: message.id,
        mode: message.mode,
        pushType: message.push_type,
        createdAt: message.created_at.toISOString(),
        expiresAt: message.expires_at.toISOString(),
        revokedAt: message.revoked_at?.toISOString() ?? null,
        counts: {
          // A broadcast has no inbox rows: its reach was counted when it was sent.
          targeted: message.targeted ?? counts.rows.reduce((sum, r) => sum + r.n, 0),
          pending: count('pending'),
          delivered: count('delivered'),
          expired: count('expired'),
          revoked: count('revoked'),
          failed: count('failed'),
        },
        targets: targets.rows.map((t) => ({
          device: t.device_id,
          status: t.status,
          channel: t.channel,
          deliveredAt: t.delivered_at?.toISOString() ?? null,
        })),
      };
    },
  );
}
