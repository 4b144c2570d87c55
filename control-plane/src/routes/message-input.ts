/**
 * What every push call has in common: the content fields, the validity period, the business id,
 * and storing the message exactly once per business id.
 */
import Type from 'typebox';
import {
  ChannelPolicy,
  encodeMessage,
  namedRecord,
  newId,
  oneOf,
  PushType,
  VendorOptions,
  type Db,
  type DbClient,
  type MessageContent,
  type StoredMessage,
} from '@mps/shared';
import { ApiError } from '../errors.js';

/** APNs' own limit; a frame above it would be refused by the vendor channels anyway. */
export const MAX_MESSAGE_BYTES = 4096;

export const ContentFields = {
  pushType: Type.Optional(oneOf(PushType)),
  title: Type.Optional(Type.String({ maxLength: 256 })),
  body: Type.Optional(Type.String({ maxLength: 4096 })),
  payload: Type.Optional(Type.Unknown()),
  extras: Type.Optional(namedRecord(Type.String({ maxLength: 1024 }), 64)),
  ttl: Type.Optional(Type.Integer({ minimum: 1, description: 'validity period in seconds' })),
  businessId: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, description: 'the same business id returns the first message id and sends nothing' }),
  ),
};

/** How a targeted push travels (broadcasts go over sockets only). */
export const DeliveryFields = {
  channel: Type.Optional(
    oneOf(ChannelPolicy),
  ),
  vendor: Type.Optional(VendorOptions),
};

export interface Delivery {
  channel?: ChannelPolicy;
  vendor?: VendorOptions;
}

export interface ContentInput {
  pushType?: PushType;
  title?: string;
  body?: string;
  payload?: unknown;
  extras?: Record<string, string>;
  ttl?: number;
}

export const Accepted = Type.Object({ messageId: Type.String(), targeted: Type.Integer(), duplicate: Type.Boolean() });
export interface Accepted {
  messageId: string;
  targeted: number;
  duplicate: boolean;
}

export interface Ttl {
  defaultTtlS: number;
  maxTtlS: number;
}

/** Validates the content and builds the message and its device frame (encoded once). */
export function prepareMessage(input: ContentInput, ttl: Ttl): { message: StoredMessage; frame: Uint8Array } {
  const pushType = input.pushType ?? 'notification';
  if (pushType === 'notification' && !input.title && !input.body) {
    throw new ApiError('EMPTY_NOTIFICATION', 'a notification needs a title or a body');
  }
  const seconds = input.ttl ?? ttl.defaultTtlS;
  if (seconds > ttl.maxTtlS) throw new ApiError('TTL_TOO_LONG', `ttl may be at most ${ttl.maxTtlS} seconds`);
  const content: MessageContent = {
    ...(input.title !== undefined && { title: input.title }),
    ...(input.body !== undefined && { body: input.body }),
    ...(input.payload !== undefined && { payload: input.payload }),
    ...(input.extras !== undefined && { extras: input.extras }),
  };
  const message = { id: newId(), pushType, content, expiresAt: new Date(Date.now() + seconds * 1000) };
  const frame = encodeMessage(message);
  if (frame.byteLength > MAX_MESSAGE_BYTES) {
    throw new ApiError('MESSAGE_TOO_LARGE', `the message encodes to ${frame.byteLength} bytes; the limit is ${MAX_MESSAGE_BYTES}`);
  }
  return { message, frame };
}

/**
 * Inserts the message; with a business id already used by this app, returns the first message
 * instead (and the caller sends nothing).
 */
export async function insertMessage(
  client: DbClient,
  app: string,
  mode: 'simple' | 'template' | 'multiple' | 'broadcast',
  message: StoredMessage,
  target: object,
  options: { businessId?: string | undefined; taskId?: string; delivery: Delivery },
): Promise<Accepted | undefined> {
  const { businessId, taskId, delivery } = options;
  const inserted = await client.query(
    `INSERT INTO messages (id, app_id, mode, push_type, target, content, business_id, expires_at, task_id, channel_policy, vendor_options)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (app_id, business_id) WHERE business_id IS NOT NULL DO NOTHING`,
    [
      message.id,
      app,
      mode,
      message.pushType,
      target,
      message.content,
      businessId ?? null,
      message.expiresAt,
      taskId ?? null,
      delivery.channel ?? 'auto',
      delivery.vendor ?? null,
    ],
  );
  if (inserted.rowCount === 1) return undefined;
  const first = businessId === undefined ? undefined : await findDuplicate(client, app, businessId);
  if (!first) throw new ApiError('INTERNAL', 'business id conflict without a message');
  return first;
}

/** The message an app already stored under this business id, if any. */
export async function findDuplicate(db: Db | DbClient, app: string, businessId: string): Promise<Accepted | undefined> {
  const first = await db.query<{ id: string; targeted: number }>(
    `SELECT m.id, coalesce(m.targeted, (SELECT count(*)::int FROM inbox i WHERE i.message_id = m.id)) AS targeted
     FROM messages m WHERE m.app_id = $1 AND m.business_id = $2`,
    [app, businessId],
  );
  const row = first.rows[0];
  return row && { messageId: row.id, targeted: row.targeted, duplicate: true };
}
