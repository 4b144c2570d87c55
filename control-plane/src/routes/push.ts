/**
 * Targeted pushes: POST /v1/push/simple (content given), /v1/push/template (a stored template and
 * its values), /v1/push/multiple (up to 1,000 targets, each with its own values, as one task).
 */
import Type, { type Static } from 'typebox';
import { ScheduledOr, ScheduledResponses, type Scheduler } from '../scheduler.js';
import { inTransaction, namedRecord, newId, type Db, type DbClient, type NatsConnection, type StoredMessage, type Subjects } from '@mps/shared';
import type { Api } from '../api.js';
import { appOf } from '../auth.js';
import { ApiError } from '../errors.js';
import { render, type TemplateStore } from '../templates.js';
import type { VendorJobs } from '../vendor-jobs.js';
import { Accepted, ContentFields, DeliveryFields, insertMessage, prepareMessage, type ContentInput, type Delivery, type Ttl } from './message-input.js';

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

export type SimplePush = Static<typeof SimplePush>;
export type TemplatePush = Static<typeof TemplatePush>;
export type MultiplePush = Static<typeof MultiplePush>;
export type TaskAccepted = Static<typeof TaskAccepted>;

/** What the push routes do, callable by the scheduler as well. */
export function createPushService(deps: PushDeps) {
  const subjectOf = (appId: string, target: Target) =>
    target.device !== undefined ? deps.subjects.device(appId, target.device) : deps.subjects.user(appId, target.user as string);

  /** Stores one message for one target and publishes it (after the commit: stored first, then sent). */
  /** The inbox rows (or vendor count) and the vendor job of one message: inside the transaction. */
  async function stage(client: DbClient, appId: string, target: Target, message: StoredMessage, delivery: Delivery): Promise<number> {
    const targeted = await enqueue(client, appId, target, message, delivery);
    const whom = target.device !== undefined ? { device: target.device } : { user: target.user as string };
    await deps.vendorJobs.enqueue(client, delivery.channel ?? 'auto', { app: appId, message: message.id, ...whom });
    return targeted;
  }

  /** Stores one message for one target and publishes it (after the commit: stored first, then sent). */
  async function pushOne(appId: string, mode: 'simple' | 'template', target: Target, input: ContentInput & Delivery, businessId?: string): Promise<Accepted> {
    checkTarget(target);
    const { message, frame } = prepareMessage(input, deps);
    const delivery = { channel: input.channel, vendor: input.vendor };
    const accepted = await inTransaction(deps.db, async (client) => {
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
