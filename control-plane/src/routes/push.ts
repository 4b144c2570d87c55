/**
 * Targeted pushes: POST /v1/push/simple (content given), /v1/push/template (a stored template and
 * its values), /v1/push/multiple (up to 1,000 targets, each with its own values, as one task).
 */
import Type, { type Static } from 'typebox';
import { ScheduledOr, ScheduledResponses, type Scheduler } from '../scheduler.js';
import { groupCommit, inTransaction, namedRecord, newId, type Db, type DbClient, type NatsConnection, type StoredMessage, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { render, type TemplateStore } from '../templates.js';
import type { VendorJobs } from '../vendor-jobs.js';
import { Accepted, ContentFields, DeliveryFields, findDuplicate, insertMessage, prepareMessage, type ContentInput, type Delivery, type Ttl } from './message-input.js';

export const MAX_TARGETS = 1000;

const Target = Type.Object(
  {
    device: Type.Optional(Type.String({ format: 'uuid' })),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false, description: 'exactly one of device or user' },
);
type Target = Static<typeof Target>;

const Values = namedRecord(Type.String({ maxLength: 1024 }), 64, { description: 'placeholder values' });

const SimplePush = Type.Object({ target: Target, ...ContentFields, ...DeliveryFields }, { additionalProperties: false });

const { title: _title, body: _body, extras: _extras, ...NonTemplateFields } = ContentFields;
const TemplatePush = Type.Object(
  { target: Target, template: Type.String({ minLength: 1, maxLength: 64 }), values: Type.Optional(Values), ...NonTemplateFields, ...DeliveryFields },
  { additionalProperties: false },
);

const MultiplePush = Type.Object(
  {
    targets: Type.Array(Type.Object({ ...Target.properties, values: Type.Optional(Values) }, { additionalProperties: false }), {
      minItems: 1,
      maxItems: MAX_TARGETS,
    }),
    template: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'a stored template; or give title/body with placeholders' })),
    ...ContentFields,
    ...DeliveryFields,
  },
  { additionalProperties: false },
);

const TaskAccepted = Type.Object({
  taskId: Type.String(),
  duplicate: Type.Boolean(),
  messages: Type.Array(Type.Object({ messageId: Type.String(), targeted: Type.Integer() })),
});

export interface PushDeps extends Ttl {
  db: Db;
  nc: NatsConnection;
  subjects: Subjects;
  templates: TemplateStore;
  vendorJobs: VendorJobs;
}

function checkTarget(target: Target): void {
  if ((target.device === undefined) === (target.user === undefined)) {
    throw new ApiError('INVALID_TARGET', 'a target names exactly one of device or user');
  }
}

/**
 * Inbox rows for the target: the device, or the user's current devices (and the user's inbox for
 * later ones). A vendor-only message has no inbox rows: it counts the devices it is aimed at.
 */
async function enqueue(client: DbClient, app: string, target: Target, message: StoredMessage, delivery: Delivery): Promise<number> {
  if (delivery.channel === 'vendor') {
    const r = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM devices WHERE app_id = $1 AND ' + (target.device !== undefined ? 'id = $2' : 'user_id = $2'),
      [app, target.device ?? target.user],
    );
    const n = r.rows[0]?.n ?? 0;
    if (n === 0 && target.device !== undefined) throw new ApiError('DEVICE_NOT_FOUND', `no device ${target.device} in this app`);
    await client.query('UPDATE messages SET targeted = $2 WHERE id = $1', [message.id, n]);
    return n;
  }
  if (target.device !== undefined) {
    const r = await client.query(
      `INSERT INTO inbox (device_id, message_id, expires_at) SELECT id, $2, $3 FROM devices WHERE id = $1 AND app_id = $4`,
      [target.device, message.id, message.expiresAt, app],
    );
    if (r.rowCount === 0) throw new ApiError('DEVICE_NOT_FOUND', `no device ${target.device} in this app`);
    return 1;
  }
  await client.query('INSERT INTO user_inbox (app_id, user_id, message_id, expires_at) VALUES ($1, $2, $3, $4)', [
    app,
    target.user,
    message.id,
    message.expiresAt,
  ]);
  const r = await client.query(
    `INSERT INTO inbox (device_id, message_id, expires_at) SELECT id, $2, $3 FROM devices WHERE user_id = $1 AND app_id = $4 ORDER BY id`,
    [target.user, message.id, message.expiresAt, app],
  );
  return r.rowCount ?? 0;
}

/** A single-target push that needs no vendor job: it may be stored together with others. */
interface GroupedPush {
  app: string;
  mode: 'simple' | 'template';
  message: StoredMessage;
  target: Target;
  businessId: string | undefined;
  delivery: Delivery;
}

/**
 * Stores a group of single-target pushes in one statement: the messages, the user inboxes and the
 * inbox rows, as enqueue does for one (a device target must be a device of the app). A business id
 * already used answers with the first message; a business id twice in one group stores the first.
 */
async function storeGroup(db: Db, pushes: GroupedPush[]): Promise<(Accepted | Error)[]> {
  const column = <T>(value: (p: GroupedPush) => T) => pushes.map(value);
  const r = await db.query<{ id: string; admitted: boolean; stored: boolean; targeted: number }>(
    `WITH input AS (
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
                            $9::text[], $10::text[], $11::uuid[], $12::text[])
         WITH ORDINALITY AS i(id, app_id, mode, push_type, target, content, business_id, expires_at, channel_policy, vendor_options, device_id, user_id, n)
     ),
     admitted AS (
       SELECT * FROM input i
        WHERE i.user_id IS NOT NULL OR EXISTS (SELECT 1 FROM devices d WHERE d.id = i.device_id AND d.app_id = i.app_id)
     ),
     stored AS (
       INSERT INTO messages (id, app_id, mode, push_type, target, content, business_id, expires_at, channel_policy, vendor_options)
       SELECT id, app_id, mode, push_type, target::jsonb, content::jsonb, business_id, expires_at, channel_policy, vendor_options::jsonb
         FROM admitted ORDER BY n
       ON CONFLICT (app_id, business_id) WHERE business_id IS NOT NULL DO NOTHING
       RETURNING id
     ),
     users AS (
       INSERT INTO user_inbox (app_id, user_id, message_id, expires_at)
       SELECT a.app_id, a.user_id, a.id, a.expires_at FROM admitted a JOIN stored USING (id) WHERE a.user_id IS NOT NULL
     ),
     rows AS (
       INSERT INTO inbox (device_id, message_id, expires_at)
       SELECT device, id, expires_at FROM (
         SELECT a.device_id AS device, a.id, a.expires_at, a.n FROM admitted a JOIN stored USING (id) WHERE a.device_id IS NOT NULL
         UNION ALL
         SELECT d.id, a.id, a.expires_at, a.n FROM admitted a JOIN stored USING (id) JOIN devices d ON d.app_id = a.app_id AND d.user_id = a.user_id
       ) t ORDER BY n, device
       RETURNING message_id
     )
     SELECT i.id, EXISTS (SELECT 1 FROM admitted a WHERE a.id = i.id) AS admitted, EXISTS (SELECT 1 FROM stored s WHERE s.id = i.id) AS stored,
            (SELECT count(*)::int FROM rows r WHERE r.message_id = i.id) AS targeted
       FROM input i ORDER BY i.n`,
    [
      column((p) => p.message.id),
      column((p) => p.app),
      column((p) => p.mode),
      column((p) => p.message.pushType),
      column((p) => JSON.stringify(p.target)),
      column((p) => JSON.stringify(p.message.content)),
      column((p) => p.businessId ?? null),
      column((p) => p.message.expiresAt),
      column((p) => p.delivery.channel ?? 'auto'),
      column((p) => (p.delivery.vendor === undefined ? null : JSON.stringify(p.delivery.vendor))),
      column((p) => p.target.device ?? null),
      column((p) => p.target.user ?? null),
    ],
  );
  return Promise.all(
    pushes.map(async (push, i): Promise<Accepted | Error> => {
      const row = r.rows[i];
      if (row?.stored) return { messageId: push.message.id, targeted: row.targeted, duplicate: false };
      const first = push.businessId === undefined ? undefined : await findDuplicate(db, push.app, push.businessId);
      if (first) return first;
      return new ApiError('DEVICE_NOT_FOUND', `no device ${push.target.device} in this app`);
    }),
  );
}

export type SimplePush = Static<typeof SimplePush>;
export type TemplatePush = Static<typeof TemplatePush>;
export type MultiplePush = Static<typeof MultiplePush>;
export type TaskAccepted = Static<typeof TaskAccepted>;

/** What the push routes do, callable by the scheduler as well. */
export function createPushService(deps: PushDeps) {
  const subjectOf = (appId: string, target: Target) =>
    target.device !== undefined ? deps.subjects.device(appId, target.device) : deps.subjects.user(appId, target.user as string);

  /** The inbox rows (or vendor count) and the vendor job of one message: inside the transaction. */
  async function stage(client: DbClient, appId: string, target: Target, message: StoredMessage, delivery: Delivery): Promise<number> {
    const targeted = await enqueue(client, appId, target, message, delivery);
    const whom = target.device !== undefined ? { device: target.device } : { user: target.user as string };
    await deps.vendorJobs.enqueue(client, delivery.channel ?? 'auto', { app: appId, message: message.id, ...whom });
    return targeted;
  }

  const storeGrouped = groupCommit((pushes: GroupedPush[]) => storeGroup(deps.db, pushes), { maxItems: 128, concurrency: 4 });

  /**
   * Stores one message for one target and publishes it (after the commit: stored first, then sent).
   * Without a vendor job to queue it is stored together with the pushes arriving meanwhile.
   */
  async function pushOne(appId: string, mode: 'simple' | 'template', target: Target, input: ContentInput & Delivery, businessId?: string): Promise<Accepted> {
    checkTarget(target);
    const { message, frame } = prepareMessage(input, deps);
    const delivery = { channel: input.channel, vendor: input.vendor };
    const policy = delivery.channel ?? 'auto';
    const accepted =
      policy !== 'vendor' && !(await deps.vendorJobs.wanted(deps.db, policy, appId))
        ? await storeGrouped({ app: appId, mode, message, target, businessId, delivery })
        : await inTransaction(deps.db, async (client) => {
            const first = await insertMessage(client, appId, mode, message, target, { businessId, delivery });
            if (first) return first;
            return { messageId: message.id, targeted: await stage(client, appId, target, message, delivery), duplicate: false };
          });
    // If this publish is lost the device still gets the message from its inbox.
    if (!accepted.duplicate && delivery.channel !== 'vendor') deps.nc.publish(subjectOf(appId, target), frame);
    return accepted;
  }

  const simple = (appId: string, push: SimplePush) => pushOne(appId, 'simple', push.target, push, push.businessId);

  async function template(appId: string, push: TemplatePush): Promise<Accepted> {
    const content = render(await deps.templates.get(appId, push.template), push.values ?? {});
    return pushOne(appId, 'template', push.target, { ...push, ...content }, push.businessId);
  }

  /** Every target is rendered and checked before anything is stored: all or nothing. */
  async function prepareTask(appId: string, push: MultiplePush) {
    const template = push.template !== undefined ? await deps.templates.get(appId, push.template) : { name: 'inline', ...push };
    return push.targets.map((target) => {
      checkTarget(target);
      return { target, ...prepareMessage({ ...push, ...render(template, target.values ?? {}) }, deps) };
    });
  }

  async function multiple(appId: string, push: MultiplePush): Promise<TaskAccepted> {
    const prepared = await prepareTask(appId, push);
    const taskId = newId();
    const delivery = { channel: push.channel, vendor: push.vendor };
    const result = await inTransaction(deps.db, async (client) => {
      const messages = [];
      for (const [i, { target, message }] of prepared.entries()) {
        const { values: _values, ...stored } = target;
        // The business id rides on the task's first message: a retried call finds it there.
        const businessId = i === 0 ? push.businessId : undefined;
        const first = await insertMessage(client, appId, 'multiple', message, stored, { businessId, taskId, delivery });
        if (first) return { duplicate: true as const, messageId: first.messageId };
        messages.push({ messageId: message.id, targeted: await stage(client, appId, stored, message, delivery) });
      }
      return { duplicate: false as const, messages };
    });
    if (result.duplicate) {
      const task = await deps.db.query<{ task_id: string; id: string; targeted: number }>(
        `SELECT m.task_id, m.id, (SELECT count(*)::int FROM inbox i WHERE i.message_id = m.id) AS targeted
         FROM messages m WHERE m.task_id = (SELECT task_id FROM messages WHERE id = $1) ORDER BY m.id`,
        [result.messageId],
      );
      const taskOf = task.rows[0]?.task_id ?? '';
      return { taskId: taskOf, duplicate: true, messages: task.rows.map((r) => ({ messageId: r.id, targeted: r.targeted })) };
    }
    if (delivery.channel !== 'vendor') for (const { target, frame } of prepared) deps.nc.publish(subjectOf(appId, target), frame);
    return { taskId, duplicate: false, messages: result.messages };
  }

  /** Validates a push without sending it (for scheduling): the same checks, no side effects. */
  async function check(appId: string, kind: 'simple' | 'template' | 'multiple', push: object): Promise<void> {
    if (kind === 'multiple') {
      await prepareTask(appId, push as MultiplePush);
      return;
    }
    const one = push as SimplePush | TemplatePush;
    checkTarget(one.target);
    const content = kind === 'template' ? render(await deps.templates.get(appId, (one as TemplatePush).template), (one as TemplatePush).values ?? {}) : {};
    prepareMessage({ ...one, ...content }, deps);
  }

  return { simple, template, multiple, check };
}

export type PushService = ReturnType<typeof createPushService>;

export function pushRoutes(app: Api, service: PushService, scheduler: Scheduler): void {
  app.post('/v1/push/simple', { schema: { body: ScheduledOr(SimplePush), response: ScheduledResponses(Accepted) } }, async (request, reply) => {
    const appId = appOf(request);
    if (request.body.schedule) return reply.code(202).send(await scheduler.schedule(appId, 'simple', request.body));
    const accepted = await service.simple(appId, request.body);
    return reply.code(accepted.duplicate ? 200 : 202).send(accepted);
  });

  app.post('/v1/push/template', { schema: { body: ScheduledOr(TemplatePush), response: ScheduledResponses(Accepted) } }, async (request, reply) => {
    const appId = appOf(request);
    if (request.body.schedule) return reply.code(202).send(await scheduler.schedule(appId, 'template', request.body));
    const accepted = await service.template(appId, request.body);
    return reply.code(accepted.duplicate ? 200 : 202).send(accepted);
  });

  app.post('/v1/push/multiple', { schema: { body: ScheduledOr(MultiplePush), response: ScheduledResponses(TaskAccepted) } }, async (request, reply) => {
    const appId = appOf(request);
    if (request.body.schedule) return reply.code(202).send(await scheduler.schedule(appId, 'multiple', request.body));
    const accepted = await service.multiple(appId, request.body);
    return reply.code(accepted.duplicate ? 200 : 202).send(accepted);
  });
}
