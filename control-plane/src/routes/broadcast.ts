/**
 * POST /v1/push/broadcast: every device of the app, or those whose tags, attributes and facts match
 * a condition (optionally only bound or unbound devices, or only devices seen within a period).
 * Stored once; connected devices get it at once (or spread over a window), others when they
 * reconnect (their broadcast cursor), until it expires.
 * POST /v1/push/dry-run: how many devices a condition reaches, sending nothing.
 */
import Type, { type Static } from 'typebox';
import { ScheduledOr, ScheduledResponses, type Scheduler } from '../scheduler.js';
import {
  Audience,
  ConditionError,
  encodeBroadcast,
  inTransaction,
  oneOf,
  parseCondition,
  selectionSql,
  type Db,
  type DbClient,
  type NatsConnection,
  type Selection as StoredSelection,
  type Subjects,
} from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { VendorJobs } from '../vendor-jobs.js';
import { Accepted, ContentFields, DeliveryFields, insertMessage, prepareMessage } from './message-input.js';
import type { Ttl } from './message-input.js';

const MAX_SEEN_WITHIN_S = 366 * 86_400;
const MAX_SPREAD_S = 86_400;

const Selection = {
  audience: Type.Optional(oneOf(Audience)),
  condition: Type.Optional(
    Type.Unknown({ description: 'tags, attributes and device facts combined with and / or / not; see docs/api.md' }),
  ),
  seenWithinS: Type.Optional(
    Type.Integer({ minimum: 1, maximum: MAX_SEEN_WITHIN_S, description: 'only devices seen (connected or registered) within this many seconds before the push' }),
  ),
};

const BroadcastPush = Type.Object(
  {
    ...Selection,
    spreadS: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_SPREAD_S,
        description: 'connected devices get it spread evenly over this many seconds (throttled fan-out); at most the validity period',
      }),
    ),
    ...ContentFields,
    ...DeliveryFields,
  },
  { additionalProperties: false },
);
const DryRun = Type.Object(Selection, { additionalProperties: false });

type SelectionInput = { audience?: Audience; condition?: unknown; seenWithinS?: number };

function parseSelection(input: SelectionInput): StoredSelection {
  try {
    return {
      audience: input.audience ?? 'all',
      condition: input.condition === undefined ? null : parseCondition(input.condition),
      ...(input.seenWithinS !== undefined && { seenAfter: Date.now() - input.seenWithinS * 1000 }),
    };
  } catch (error) {
    if (error instanceof ConditionError) throw new ApiError('INVALID_CONDITION', error.message, { cause: error });
    throw error;
  }
}

/** Devices of the app the selection reaches now. */
async function countReached(db: Db | DbClient, app: string, selection: StoredSelection): Promise<number> {
  const params: unknown[] = [app];
  const where = ['d.app_id = $1', ...selectionSql(selection, params)];
  const result = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM devices d
     LEFT JOIN user_profiles up ON up.app_id = d.app_id AND up.user_id = d.user_id
     WHERE ${where.join(' AND ')}`,
    params,
  );
  return result.rows[0]?.n ?? 0;
}

export type BroadcastPush = Static<typeof BroadcastPush>;

export function createBroadcastService(deps: Ttl & { db: Db; nc: NatsConnection; subjects: Subjects; vendorJobs: VendorJobs }) {
  /** The message and the selection to store, checked: all or nothing. */
  function prepare(push: BroadcastPush) {
    const selection = parseSelection(push);
    const { message, frame } = prepareMessage(push, deps);
    const spreadMs = push.spreadS === undefined ? undefined : push.spreadS * 1000;
    if (spreadMs !== undefined && spreadMs > message.expiresAt.getTime() - Date.now()) {
      throw new ApiError('SPREAD_TOO_LONG', 'spreadS may be at most the validity period (ttl)');
    }
    return { selection, message, frame, spreadMs };
  }

  async function broadcast(appId: string, push: BroadcastPush): Promise<Accepted> {
    const { selection, message, frame, spreadMs } = prepare(push);
    const target = { ...selection, ...(spreadMs !== undefined && { spreadMs }) };
    const delivery = { channel: push.channel, vendor: push.vendor };
    const accepted = await inTransaction(deps.db, async (client) => {
      const first = await insertMessage(client, appId, 'broadcast', message, target, { businessId: push.businessId, delivery });
      if (first) return first;
      const targeted = await countReached(client, appId, selection);
      await client.query('UPDATE messages SET targeted = $2 WHERE id = $1', [message.id, targeted]);
      // The senders walk the matching devices page by page, starting from the first.
      await deps.vendorJobs.enqueue(client, delivery.channel ?? 'auto', { app: appId, message: message.id, broadcast: { after: null } });
      return { messageId: message.id, targeted, duplicate: false };
    });
    if (!accepted.duplicate && delivery.channel !== 'vendor') {
      deps.nc.publish(deps.subjects.broadcast(appId), encodeBroadcast({ ...target, frame, id: message.id }));
    }
    return accepted;
  }

  function check(push: BroadcastPush): void {
    prepare(push);
  }

  const dryRun = async (appId: string, selection: SelectionInput) => ({ devices: await countReached(deps.db, appId, parseSelection(selection)) });

  return { broadcast, check, dryRun };
}

export type BroadcastService = ReturnType<typeof createBroadcastService>;

export function broadcastRoutes(app: Api, service: BroadcastService, scheduler: Scheduler): void {
  app.post(
    '/v1/push/broadcast',
    { schema: { body: ScheduledOr(BroadcastPush), response: ScheduledResponses(Accepted) } },
    async (request, reply) => {
      const appId = appOf(request);
      if (request.body.schedule) return reply.code(202).send(await scheduler.schedule(appId, 'broadcast', request.body));
      const accepted = await service.broadcast(appId, request.body);
      return reply.code(accepted.duplicate ? 200 : 202).send(accepted);
    },
  );

  app.post(
    '/v1/push/dry-run',
    { schema: { body: DryRun, response: { 200: Type.Object({ devices: Type.Integer() }) } } },
    async (request) => service.dryRun(appOf(request), request.body),
  );
}
