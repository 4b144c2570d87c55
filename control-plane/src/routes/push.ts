/** POST /v1/push/simple: one device or one user, content given directly. */
import Type from 'typebox';
import type { Api } from '../api.js';
import {
  encodeMessage,
  inTransaction,
  newId,
  oneOf,
  PushType,
  type Db,
  type DbClient,
  type MessageContent,
  type NatsConnection,
  type Subjects,
} from '@mps/shared';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';

/** APNs' own limit; a frame above it would be refused by the vendor channels anyway. */
export const MAX_MESSAGE_BYTES = 4096;

const SimplePush = Type.Object(
  {
    target: Type.Object(
      {
        device: Type.Optional(Type.String({ format: 'uuid' })),
        user: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
      },
      { additionalProperties: false, description: 'exactly one of device or user' },
    ),
    pushType: Type.Optional(oneOf(PushType)),
    title: Type.Optional(Type.String({ maxLength: 256 })),
    body: Type.Optional(Type.String({ maxLength: 4096 })),
    payload: Type.Optional(Type.Unknown()),
    extras: Type.Optional(Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 1024 }))),
    ttl: Type.Optional(Type.Integer({ minimum: 1, description: 'validity period in seconds' })),
    businessId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
const Accepted = Type.Object({ messageId: Type.String(), targeted: Type.Integer(), duplicate: Type.Boolean() });

export interface PushDeps {
  db: Db;
  nc: NatsConnection;
  subjects: Subjects;
  defaultTtlS: number;
  maxTtlS: number;
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
      const pushType = push.pushType ?? 'notification';
      if (pushType === 'notification' && !push.title && !push.body) {
        throw new ApiError('EMPTY_NOTIFICATION', 'a notification needs a title or a body');
      }
      const ttl = push.ttl ?? deps.defaultTtlS;
      if (ttl > deps.maxTtlS) throw new ApiError('TTL_TOO_LONG', `ttl may be at most ${deps.maxTtlS} seconds`);

      const content: MessageContent = {
        ...(push.title !== undefined && { title: push.title }),
        ...(push.body !== undefined && { body: push.body }),
        ...(push.payload !== undefined && { payload: push.payload }),
        ...(push.extras !== undefined && { extras: push.extras }),
      };
      const message = { id: newId(), pushType, content, expiresAt: new Date(Date.now() + ttl * 1000) };
      const frame = encodeMessage(message);
      if (frame.byteLength > MAX_MESSAGE_BYTES) {
        throw new ApiError('MESSAGE_TOO_LARGE', `the message encodes to ${frame.byteLength} bytes; the limit is ${MAX_MESSAGE_BYTES}`);
      }

      const stored = await inTransaction(deps.db, async (client) => {
        const inserted = await client.query<{ id: string }>(
          `INSERT INTO messages (id, app_id, mode, push_type, target, content, business_id, expires_at)
           VALUES ($1, $2, 'simple', $3, $4, $5, $6, $7)
           ON CONFLICT (app_id, business_id) WHERE business_id IS NOT NULL DO NOTHING
           RETURNING id`,
          [message.id, appId, pushType, push.target, content, push.businessId ?? null, message.expiresAt],
        );
        if (inserted.rowCount === 0) {
          const first = await client.query<{ id: string; targeted: number }>(
            `SELECT m.id, (SELECT count(*)::int FROM inbox i WHERE i.message_id = m.id) AS targeted
             FROM messages m WHERE m.app_id = $1 AND m.business_id = $2`,
            [appId, push.businessId],
          );
          const row = first.rows[0];
          if (!row) throw new ApiError('INTERNAL', 'business id conflict without a message');
          return { messageId: row.id, targeted: row.targeted, duplicate: true };
        }
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

      if (!stored.duplicate) {
        // Stored first: if this publish is lost the device still gets the message from its inbox.
        const subject = device !== undefined ? deps.subjects.device(appId, device) : deps.subjects.user(appId, user as string);
        deps.nc.publish(subject, frame);
      }
      return reply.code(stored.duplicate ? 200 : 202).send(stored);
    },
  );
}
