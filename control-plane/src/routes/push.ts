/** POST /v1/push/simple: one device or one user, content given directly. */
import Type from 'typebox';
import { inTransaction, type Db, type DbClient, type NatsConnection, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { Accepted, ContentFields, insertMessage, prepareMessage, type Ttl } from './message-input.js';

const SimplePush = Type.Object(
  {
    target: Type.Object(
      {
        device: Type.Optional(Type.String({ format: 'uuid' })),
        user: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      },
      { additionalProperties: false, description: 'exactly one of device or user' },
    ),
    ...ContentFields,
  },
  { additionalProperties: false },
);

export interface PushDeps extends Ttl {
  db: Db;
  nc: NatsConnection;
  subjects: Subjects;
}

/**
 * A message to a user goes to the user's current devices now, and waits in the user's inbox for
 * devices bound later, until it expires.
 */
async function targetUser(client: DbClient, appId: string, user: string, message: { id: string; expiresAt: Date }) {
  await client.query('INSERT INTO user_inbox (app_id, user_id, message_id, expires_at) VALUES ($1, $2, $3, $4)', [
    appId,
    user,
    message.id,
    message.expiresAt,
  ]);
  return client.query(
    `INSERT INTO inbox (device_id, message_id, expires_at)
     SELECT id, $2, $3 FROM devices WHERE user_id = $1 AND app_id = $4 ORDER BY id`,
    [user, message.id, message.expiresAt, appId],
  );
}

export function pushRoutes(app: Api, deps: PushDeps): void {
  app.post(
    '/v1/push/simple',
    { schema: { body: SimplePush, response: { 202: Accepted, 200: Accepted } } },
    async (request, reply) => {
      const appId = appOf(request);
      const push = request.body;
      const { device, user } = push.target;
      if ((device === undefined) === (user === undefined)) {
        throw new ApiError('INVALID_TARGET', 'target must name exactly one of device or user');
      }
      const { message, frame } = prepareMessage(push, deps);

      const accepted = await inTransaction(deps.db, async (client) => {
        const first = await insertMessage(client, appId, 'simple', message, push.target, push.businessId);
        if (first) return first;
        const targets =
          device !== undefined
            ? await client.query(
                `INSERT INTO inbox (device_id, message_id, expires_at)
                 SELECT id, $2, $3 FROM devices WHERE id = $1 AND app_id = $4`,
                [device, message.id, message.expiresAt, appId],
              )
            : await targetUser(client, appId, user as string, message);
        if (device !== undefined && targets.rowCount === 0) {
          throw new ApiError('DEVICE_NOT_FOUND', `no device ${device} in this app`);
        }
        return { messageId: message.id, targeted: targets.rowCount ?? 0, duplicate: false };
      });

      if (!accepted.duplicate) {
        // Stored first: if this publish is lost the device still gets the message from its inbox.
        const subject = device !== undefined ? deps.subjects.device(appId, device) : deps.subjects.user(appId, user as string);
        deps.nc.publish(subject, frame);
      }
      return reply.code(accepted.duplicate ? 200 : 202).send(accepted);
    },
  );
}
