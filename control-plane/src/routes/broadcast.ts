/**
 * POST /v1/push/broadcast: every device of the app, or those whose tags, attributes and facts match
 * a condition (optionally only bound or unbound devices). Stored once; connected devices get it at
 * once, others when they reconnect (their broadcast cursor), until it expires.
 * POST /v1/push/dry-run: how many devices a condition reaches, sending nothing.
 */
import Type, { type Static } from 'typebox';
import { ScheduledOr, ScheduledResponses, type Scheduler } from '../scheduler.js';
import {
  Audience,
  ConditionError,
  conditionSql,
  encodeBroadcast,
  inTransaction,
  oneOf,
  parseCondition,
  type Condition,
  type Db,
  type DbClient,
  type NatsConnection,
  type Subjects,
} from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import type { VendorJobs } from '../vendor-jobs.js';
import { Accepted, ContentFields, DeliveryFields, insertMessage, prepareMessage } from './message-input.js';
import type { Ttl } from './message-input.js';

const Selection = {
  audience: Type.Optional(oneOf(Audience)),
  condition: Type.Optional(
    Type.Unknown({ description: 'tags, attributes and device facts combined with and / or / not; see docs/api.md' }),
  ),
};

const BroadcastPush = Type.Object({ ...Selection, ...ContentFields, ...DeliveryFields }, { additionalProperties: false });
const DryRun = Type.Object(Selection, { additionalProperties: false });

function parseSelection(input: { audience?: Audience; condition?: unknown }): { audience: Audience; condition: Condition | null } {
  try {
    return { audience: input.audience ?? 'all', condition: input.condition === undefined ? null : parseCondition(input.condition) };
  } catch (error) {
    if (error instanceof ConditionError) throw new ApiError('INVALID_CONDITION', error.message, { cause: error });
    throw error;
  }
}

/** Devices of the app the selection reaches now. */
async function countReached(db: Db | DbClient, app: string, audience: Audience, condition: Condition | null): Promise<number> {
  const params: unknown[] = [app];
  const where = ['d.app_id = $1'];
  if (audience === 'bound') where.push('d.user_id IS NOT NULL');
  if (audience === 'unbound') where.push('d.user_id IS NULL');
  if (condition) where.push(conditionSql(condition, params));
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
  async function broadcast(appId: string, push: BroadcastPush): Promise<Accepted> {
    const { audience, condition } = parseSelection(push);
    const { message, frame } = prepareMessage(push, deps);
    const delivery = { channel: push.channel, vendor: push.vendor };
    const accepted = await inTransaction(deps.db, async (client) => {
      const first = await insertMessage(client, appId, 'broadcast', message, { audience, condition }, { businessId: push.businessId, delivery });
      if (first) return first;
      const targeted = await countReached(client, appId, audience, condition);
      await client.query('UPDATE messages SET targeted = $2 WHERE id = $1', [message.id, targeted]);
      // The senders walk the matching devices page by page, starting from the first.
      await deps.vendorJobs.enqueue(client, delivery.channel ?? 'auto', { app: appId, message: message.id, broadcast: { after: null } });
      return { messageId: message.id, targeted, duplicate: false };
    });
    if (!accepted.duplicate && delivery.channel !== 'vendor') {
      deps.nc.publish(deps.subjects.broadcast(appId), encodeBroadcast({ frame, audience, condition, id: message.id }));
    }
    return accepted;
  }

  function check(push: BroadcastPush): void {
    parseSelection(push);
    prepareMessage(push, deps);
  }

  const dryRun = async (appId: string, selection: { audience?: Audience; condition?: unknown }) => {
    const { audience, condition } = parseSelection(selection);
    return { devices: await countReached(deps.db, appId, audience, condition) };
  };

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
