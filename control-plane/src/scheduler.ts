/**
 * Scheduled pushes: a push body with `schedule` is validated, stored in Postgres and fired by
 * whichever control-plane process claims it first (SKIP LOCKED), through the same service the routes
 * use. "At a local time" fires once per time zone of the target devices. Each firing carries a
 * business id derived from its row, so a firing retried after a crash sends nothing twice.
 */
import Type, { type TObject, type TProperties, type TSchema } from 'typebox';
import { newId, type Condition, type Db, type Logger } from '@mps/shared';
import { ApiError } from './errors.js';
import { isTimeZone, zonedToInstant } from './zoned-time.js';

export const MAX_SCHEDULE_DAYS = 30;
/** A firing claimed this long ago but not finished (its process died) is tried again. */
const STALE_CLAIM_MS = 5 * 60_000;
const CLAIM_BATCH = 50;

const Schedule = Type.Object(
  {
    at: Type.Optional(Type.String({ format: 'date-time', description: 'when to send (UTC or with an offset)' })),
    localTime: Type.Optional(
      Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}$', description: "YYYY-MM-DDTHH:MM in each target device's time zone" }),
    ),
  },
  { additionalProperties: false, description: 'exactly one of at or localTime' },
);

export const Scheduled = Type.Object({ scheduleId: Type.String(), fireAt: Type.Array(Type.String()) });
export interface Scheduled {
  scheduleId: string;
  fireAt: string[];
}

/** A push body that may instead be scheduled. */
export function ScheduledOr<T extends TObject<TProperties>>(body: T) {
  return Type.Object({ ...body.properties, schedule: Type.Optional(Schedule) }, { additionalProperties: false }) as unknown as TObject<
    T['properties'] & { schedule: ReturnType<typeof Type.Optional<typeof Schedule>> }
  >;
}

export function ScheduledResponses<T extends TSchema>(accepted: T) {
  return { 200: accepted, 202: Type.Union([accepted, Scheduled]) };
}

export type PushKind = 'simple' | 'template' | 'multiple' | 'broadcast';

interface Body {
  schedule?: { at?: string; localTime?: string };
  businessId?: string;
  target?: { device?: string; user?: string };
  condition?: unknown;
}

/** Runs a push now (the route's own logic); `check` validates without sending. */
export interface Firing {
  fire(app: string, kind: PushKind, body: object): Promise<object>;
  check(app: string, kind: PushKind, body: object): Promise<void>;
}

export function createScheduler(deps: { db: Db; log: Logger; intervalMs: number }) {
  const { db, log } = deps;
  let firing: Firing | undefined;

  /** The time zones of the devices a push reaches (devices without one count as UTC). */
  async function zonesOf(app: string, kind: PushKind, body: Body): Promise<string[]> {
    const target = body.target;
    if (kind === 'broadcast') {
      const r = await db.query<{ tz: string }>(`SELECT DISTINCT coalesce(timezone, 'UTC') AS tz FROM devices WHERE app_id = $1`, [app]);
      return r.rows.map((row) => row.tz).filter(isTimeZone);
    }
    if (kind === 'multiple' || !target) throw new ApiError('INVALID_SCHEDULE', 'localTime works for broadcasts and single device or user targets');
    // A user's zone is that of the device they used last.
    const r = await db.query<{ tz: string | null }>(
      target.device !== undefined
        ? 'SELECT timezone AS tz FROM devices WHERE id = $1 AND app_id = $2'
        : 'SELECT timezone AS tz FROM devices WHERE user_id = $1 AND app_id = $2 ORDER BY last_seen_at DESC LIMIT 1',
      [target.device ?? target.user, app],
    );
    const tz = r.rows[0]?.tz ?? 'UTC';
    return [isTimeZone(tz) ? tz : 'UTC'];
  }

  /** A broadcast at local time reaches, per zone, only the devices of that zone. */
  function forZone(kind: PushKind, body: Body, zone: string, zones: string[]): Body {
    if (kind !== 'broadcast') return body;
    const others = zones.filter((z) => z !== 'UTC');
    // UTC also takes the devices without a (known) zone: everything not in another zone.
    const inZone: Condition | null =
      zone !== 'UTC' ? { fact: 'timezone', equals: zone } : others.length > 0 ? { not: { fact: 'timezone', in: others } } : null;
    if (inZone === null) return body;
    return { ...body, condition: body.condition === undefined ? inZone : { and: [body.condition as Condition, inZone] } };
  }

  async function schedule(app: string, kind: PushKind, body: Body): Promise<Scheduled> {
    const { schedule: when, ...push } = body;
    if (!when || (when.at === undefined) === (when.localTime === undefined)) {
      throw new ApiError('INVALID_SCHEDULE', 'schedule needs exactly one of at or localTime');
    }
    await (firing as Firing).check(app, kind, push);
    const zones = when.at !== undefined ? [null] : await zonesOf(app, kind, push);
    const rows = zones.map((zone) => ({
      zone,
      body: zone === null ? push : forZone(kind, push, zone, zones as string[]),
      fireAt: zone === null ? new Date(when.at as string) : zonedToInstant(when.localTime as string, zone),
    }));
    const now = Date.now();
    for (const row of rows) {
      if (Number.isNaN(row.fireAt.getTime())) throw new ApiError('INVALID_SCHEDULE', 'schedule time is not a valid time');
      if (row.fireAt.getTime() > now + MAX_SCHEDULE_DAYS * 86_400_000) {
        throw new ApiError('INVALID_SCHEDULE', `a push can be scheduled at most ${MAX_SCHEDULE_DAYS} days ahead`);
      }
    }
    if (when.at !== undefined && (rows[0]?.fireAt.getTime() ?? 0) < now) throw new ApiError('INVALID_SCHEDULE', 'schedule.at is in the past');
    const scheduleId = newId();
    for (const row of rows) {
      // A local time already past in a zone fires at once there.
      await db.query(
        `INSERT INTO scheduled_pushes (id, schedule_id, app_id, kind, body, time_zone, fire_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [newId(), scheduleId, app, kind, row.body, row.zone, new Date(Math.max(row.fireAt.getTime(), now))],
      );
    }
    return { scheduleId, fireAt: rows.map((r) => new Date(Math.max(r.fireAt.getTime(), now)).toISOString()) };
  }

  async function fireDue(): Promise<number> {
    const due = await db.query<{ id: string; app_id: string; kind: PushKind; body: Body; time_zone: string | null }>(
      `UPDATE scheduled_pushes SET status = 'firing', claimed_at = now()
       WHERE id IN (SELECT id FROM scheduled_pushes
                    WHERE (status = 'waiting' AND fire_at <= now())
                       OR (status = 'firing' AND claimed_at < now() - make_interval(secs => $1))
                    ORDER BY fire_at LIMIT ${CLAIM_BATCH} FOR UPDATE SKIP LOCKED)
       RETURNING id, app_id, kind, body, time_zone`,
      [STALE_CLAIM_MS / 1000],
    );
    for (const row of due.rows) {
      try {
        // Each zone's firing is its own push: a caller's business id is made distinct per zone.
        const businessId = row.body.businessId === undefined ? `schedule:${row.id}` : row.time_zone === null ? row.body.businessId : `${row.body.businessId}@${row.time_zone}`;
        const result = await (firing as Firing).fire(row.app_id, row.kind, { ...row.body, businessId });
        await db.query(`UPDATE scheduled_pushes SET status = 'fired', result = $2 WHERE id = $1`, [row.id, result]);
      } catch (error) {
        const message = error instanceof ApiError ? `${error.code}: ${error.message}` : 'internal error';
        if (!(error instanceof ApiError)) log.error({ err: error, schedule: row.id }, 'scheduled push failed');
        await db.query(`UPDATE scheduled_pushes SET status = 'failed', error = $2 WHERE id = $1`, [row.id, message]);
      }
    }
    return due.rowCount ?? 0;
  }

  async function status(app: string, scheduleId: string) {
    const r = await db.query<{ time_zone: string | null; fire_at: Date; status: string; result: object | null; error: string | null }>(
      'SELECT time_zone, fire_at, status, result, error FROM scheduled_pushes WHERE schedule_id = $1 AND app_id = $2 ORDER BY fire_at',
      [scheduleId, app],
    );
    if (r.rowCount === 0) throw new ApiError('SCHEDULE_NOT_FOUND', `no schedule ${scheduleId} in this app`);
    return {
      scheduleId,
      firings: r.rows.map((row) => ({
        timeZone: row.time_zone,
        fireAt: row.fire_at.toISOString(),
        status: row.status,
        result: row.result,
        error: row.error,
      })),
    };
  }

  /** Cancels what has not fired yet; answers how many firings were cancelled. */
  async function cancel(app: string, scheduleId: string): Promise<number> {
    const r = await db.query(`UPDATE scheduled_pushes SET status = 'cancelled' WHERE schedule_id = $1 AND app_id = $2 AND status = 'waiting'`, [
      scheduleId,
      app,
    ]);
    if ((r.rowCount ?? 0) > 0) return r.rowCount ?? 0;
    const { firings } = await status(app, scheduleId);
    // Cancelling again is not an error; cancelling what fired is.
    if (firings.every((f) => f.status === 'cancelled')) return 0;
    throw new ApiError('ALREADY_FIRED', 'nothing left to cancel: the schedule has fired');
  }

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<unknown> = Promise.resolve();
  const tick = () => {
    current = fireDue()
      .catch((error: unknown) => log.error({ err: error }, 'scheduler pass failed'))
      .finally(() => {
        if (running) timer = setTimeout(tick, deps.intervalMs);
      });
  };

  return {
    schedule,
    status,
    cancel,
    fireDue,
    /** Starts firing with the push service (the routes' own logic). */
    start(with_: Firing): void {
      firing = with_;
      running = true;
      timer = setTimeout(tick, deps.intervalMs);
    },
    stop: async () => {
      running = false;
      clearTimeout(timer);
      await current;
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
