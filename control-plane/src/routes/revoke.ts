/**
 * POST /v1/messages/{id}/revoke and /v1/tasks/{id}/revoke: stop further delivery and withdraw the
 * message(s) from connected devices that have them.
 */
import Type from 'typebox';
import { encodeBroadcast, encodeFrame, FrameType, inTransaction, type Db, type DbClient, type Logger, type NatsConnection, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { emitTargetEvents, TARGET_ROW_SQL, type TargetRow } from '../target-events.js';
import type { JetStreamClient } from '@nats-io/jetstream';

/** Messages older than this can no longer be revoked. */
export const REVOKE_HORIZON_DAYS = 7;

const Revoked = Type.Object({
  id: Type.String(),
  revokedAt: Type.String(),
  /** Targets whose pending delivery was stopped by this call. */
  stopped: Type.Integer(),
});

interface Target {
  device?: string;
  user?: string;
  audience?: string;
}

interface Revocation {
  id: string;
  target: Target;
  revokedAt: Date;
  stopped: number;
  /** The targets whose pending delivery stopped, for their 'revoked' events. */
  targets: TargetRow[];
  /** False when it was revoked before: nothing to tell the devices again. */
  now: boolean;
}

async function revokeOne(client: DbClient, app: string, id: string): Promise<Revocation> {
  const found = await client.query<{ target: Target; revoked_at: Date | null; too_old: boolean }>(
    `SELECT target, revoked_at, created_at < now() - make_interval(days => $3) AS too_old
     FROM messages WHERE id = $1 AND app_id = $2 FOR UPDATE`,
    [id, app, REVOKE_HORIZON_DAYS],
  );
  const message = found.rows[0];
  if (!message) throw new ApiError('MESSAGE_NOT_FOUND', `no message ${id} in this app`);
  if (message.revoked_at) return { id, target: message.target, revokedAt: message.revoked_at, stopped: 0, targets: [], now: false };
  if (message.too_old) throw new ApiError('TOO_OLD_TO_REVOKE', `messages older than ${REVOKE_HORIZON_DAYS} days cannot be revoked`);
  const revoked = await client.query<{ revoked_at: Date }>('UPDATE messages SET revoked_at = now() WHERE id = $1 RETURNING revoked_at', [id]);
  const stopped = await client.query<TargetRow>(
    `WITH r AS (UPDATE inbox SET status = 'revoked' WHERE message_id = $1 AND status = 'pending' RETURNING device_id, message_id)
     ${TARGET_ROW_SQL}`,
    [id],
  );
  await client.query('DELETE FROM user_inbox WHERE message_id = $1', [id]);
  const revokedAt = (revoked.rows[0] as { revoked_at: Date }).revoked_at;
  return { id, target: message.target, revokedAt, stopped: stopped.rowCount ?? 0, targets: stopped.rows, now: true };
}

export function revokeRoutes(app: Api, deps: { db: Db; nc: NatsConnection; js: JetStreamClient; subjects: Subjects; log: Logger }): void {
  function tellDevices(appId: string, revocation: Revocation): void {
    if (!revocation.now) return;
    emitTargetEvents(deps.js, deps.subjects, 'revoked', revocation.targets).catch((error: unknown) =>
      deps.log.error({ err: error, message: revocation.id }, 'revoked events not published'),
    );
    const frame = encodeFrame({ t: FrameType.REVOKE, id: revocation.id });
    const { device, user, audience } = revocation.target;
    if (device !== undefined) deps.nc.publish(deps.subjects.device(appId, device), frame);
    if (user !== undefined) deps.nc.publish(deps.subjects.user(appId, user), frame);
    if (audience !== undefined) {
      // Every connected device of the app hears it; those that never had the message ignore it.
      deps.nc.publish(deps.subjects.broadcast(appId), encodeBroadcast({ frame, audience: 'all', condition: null, id: revocation.id }));
    }
  }
  const answer = (r: Revocation) => ({ id: r.id, revokedAt: r.revokedAt.toISOString(), stopped: r.stopped });
  const Id = Type.Object({ id: Type.String({ format: 'uuid' }) });

  app.post('/v1/messages/:id/revoke', { schema: { params: Id, response: { 200: Revoked } } }, async (request) => {
    const appId = appOf(request);
    const revocation = await inTransaction(deps.db, (client) => revokeOne(client, appId, request.params.id));
    tellDevices(appId, revocation);
    return answer(revocation);
  });

  app.post(
    '/v1/tasks/:id/revoke',
    { schema: { params: Id, response: { 200: Type.Object({ taskId: Type.String(), messages: Type.Array(Revoked) }) } } },
    async (request) => {
      const appId = appOf(request);
      const revocations = await inTransaction(deps.db, async (client) => {
        const ids = await client.query<{ id: string }>('SELECT id FROM messages WHERE task_id = $1 AND app_id = $2 ORDER BY id', [
          request.params.id,
          appId,
        ]);
        if (ids.rowCount === 0) throw new ApiError('TASK_NOT_FOUND', `no task ${request.params.id} in this app`);
        const done = [];
        for (const { id } of ids.rows) done.push(await revokeOne(client, appId, id));
        return done;
      });
      for (const r of revocations) tellDevices(appId, r);
      return { taskId: request.params.id, messages: revocations.map(answer) };
    },
  );
}
