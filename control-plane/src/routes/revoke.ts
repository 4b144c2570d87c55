/** POST /v1/messages/{id}/revoke: stops further delivery and withdraws the message from connected devices. */
import Type from 'typebox';
import { encodeBroadcast, encodeFrame, FrameType, inTransaction, type Db, type NatsConnection, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

/** Messages older than this can no longer be revoked. */
export const REVOKE_HORIZON_DAYS = 7;

const Revoked = Type.Object({
  id: Type.String(),
  revokedAt: Type.String(),
  /** Targets whose pending delivery was stopped by this call. */
  stopped: Type.Integer(),
});

export function revokeRoutes(app: Api, deps: { db: Db; nc: NatsConnection; subjects: Subjects }): void {
  app.post(
    '/v1/messages/:id/revoke',
    { schema: { params: Type.Object({ id: Type.String({ format: 'uuid' }) }), response: { 200: Revoked } } },
    async (request) => {
      const appId = appOf(request);
      const { id } = request.params;
      const result = await inTransaction(deps.db, async (client) => {
        const found = await client.query<{ target: { device?: string; user?: string; audience?: string }; revoked_at: Date | null; too_old: boolean }>(
          `SELECT target, revoked_at, created_at < now() - make_interval(days => $3) AS too_old
           FROM messages WHERE id = $1 AND app_id = $2 FOR UPDATE`,
          [id, appId, REVOKE_HORIZON_DAYS],
        );
        const message = found.rows[0];
        if (!message) throw new ApiError('MESSAGE_NOT_FOUND', `no message ${id} in this app`);
        if (message.revoked_at) return { target: message.target, revokedAt: message.revoked_at, stopped: 0, again: true };
        if (message.too_old) throw new ApiError('TOO_OLD_TO_REVOKE', `messages older than ${REVOKE_HORIZON_DAYS} days cannot be revoked`);
        const revoked = await client.query<{ revoked_at: Date }>('UPDATE messages SET revoked_at = now() WHERE id = $1 RETURNING revoked_at', [id]);
        const stopped = await client.query(`UPDATE inbox SET status = 'revoked' WHERE message_id = $1 AND status = 'pending'`, [id]);
        await client.query('DELETE FROM user_inbox WHERE message_id = $1', [id]);
        return { target: message.target, revokedAt: (revoked.rows[0] as { revoked_at: Date }).revoked_at, stopped: stopped.rowCount ?? 0, again: false };
      });
      if (!result.again) {
        const frame = encodeFrame({ t: FrameType.REVOKE, id });
        const { device, user } = result.target;
        if (device !== undefined) deps.nc.publish(deps.subjects.device(appId, device), frame);
        if (user !== undefined) deps.nc.publish(deps.subjects.user(appId, user), frame);
        if (result.target.audience !== undefined) {
          // Every connected device of the app hears it; those that never had the message ignore it.
          deps.nc.publish(deps.subjects.broadcast(appId), encodeBroadcast({ frame, audience: 'all', condition: null, id }));
        }
      }
      return { id, revokedAt: result.revokedAt.toISOString(), stopped: result.stopped };
    },
  );
}
