/**
 * What other processes ask analytics over NATS request/reply, and what it answers. Requests are
 * JSON and are checked here, once; report code trusts them after that.
 */
import { Channel, EventKind, isUuid, type Subjects } from '@mps/shared';

/**
 * Request subjects. The funnel's is shared/subjects.ts's `reportFunnel`; the series subject is
 * spelled here, beside it, until shared/ names it too.
 */
export function reportSubjects(subjects: Subjects) {
  return {
    funnel: subjects.reportFunnel,
    series: subjects.reportSeries,
  } as const;
}

export const Granularity = ['minute', 'hour', 'day'] as const;
export type Granularity = (typeof Granularity)[number];

export const GRANULARITY_MS: Record<Granularity, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** The most buckets one series may span: 7 days of minutes, 400 days of hours, 3 years of days. */
export const MAX_BUCKETS: Record<Granularity, number> = { minute: 7 * 1440, hour: 400 * 24, day: 3 * 366 };

/** What a series can be split and filtered by. */
export const Dimension = ['platform', 'appVersion', 'channel', 'pushType'] as const;
export type Dimension = (typeof Dimension)[number];

/** One message, or the messages of a task (a multiple push), counted together. */
export type FunnelRequest = { app: string; message: string } | { app: string; messages: string[] };

/** The most messages one funnel may add up (a multiple push has at most 1,000). */
export const MAX_FUNNEL_MESSAGES = 1000;

/** Distinct (message, device) pairs per event kind (for one message: devices); kinds nobody reported are absent. */
export type Funnel = Partial<Record<EventKind, number>>;

export interface FunnelReply {
  funnel: Funnel;
  /** The same, per channel (sent and failed per vendor, delivered on the socket, ...). */
  channels: Partial<Record<Channel, Funnel>>;
}

export interface SeriesRequest {
  app: string;
  granularity: Granularity;
  /** Milliseconds since the epoch; the range is [from, to), widened to whole buckets (UTC). */
  from: number;
  to: number;
  /** Split into one series per combination of these dimensions' values (none: one series). */
  by: Dimension[];
  /** Only these values (per dimension). */
  where: Partial<Record<Dimension, string[]>>;
  /** Event kinds to count (default: all). */
  kinds: EventKind[];
  /** Only this message's events (from the raw events, kept a shorter time than the aggregates). */
  message?: string;
}

export interface Series {
  granularity: Granularity;
  /** ISO 8601, the start of the first bucket and the end of the last. */
  from: string;
  to: string;
  /** The start of each bucket (ISO 8601, UTC); every count array lines up with it. */
  times: string[];
  series: { key: Partial<Record<Dimension, string>>; counts: Partial<Record<EventKind, number[]>> }[];
}

export interface SeriesReply {
  series: Series;
}

export type ErrorReply = { error: string; code: 'BAD_REQUEST' | 'FAILED' };

export class ReportRequestError extends Error {
  override name = 'ReportRequestError';
  readonly code = 'BAD_REQUEST';
}

const APP_ID = /^app_[A-Za-z0-9_-]{1,64}$/;
const MAX_VALUES = 100;
const MAX_VALUE_LENGTH = 256;

function object(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ReportRequestError('the request must be a JSON object');
  return value as Record<string, unknown>;
}

function app(value: unknown): string {
  if (typeof value !== 'string' || !APP_ID.test(value)) throw new ReportRequestError('app must be an app id');
  return value;
}

function message(value: unknown): string {
  if (typeof value !== 'string' || !isUuid(value)) throw new ReportRequestError('message must be a message id (UUID)');
  return value;
}

function members<T extends string>(name: string, value: unknown, allowed: readonly T[]): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && (allowed as readonly string[]).includes(v))) {
    throw new ReportRequestError(`${name} must be a list of: ${allowed.join(', ')}`);
  }
  return [...new Set(value as T[])];
}

function time(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 8_000_000_000_000) {
    throw new ReportRequestError(`${name} must be milliseconds since the epoch`);
  }
  return value;
}

export function parseFunnelRequest(value: unknown): FunnelRequest {
  const body = object(value);
  if (body.messages === undefined) return { app: app(body.app), message: message(body.message) };
  if (!Array.isArray(body.messages) || body.messages.length === 0 || body.messages.length > MAX_FUNNEL_MESSAGES) {
    throw new ReportRequestError(`messages must be a list of 1 to ${MAX_FUNNEL_MESSAGES} message ids`);
  }
  return { app: app(body.app), messages: [...new Set(body.messages.map(message))] };
}

export function parseSeriesRequest(value: unknown): SeriesRequest {
  const body = object(value);
  if (!(Granularity as readonly unknown[]).includes(body.granularity)) {
    throw new ReportRequestError(`granularity must be one of: ${Granularity.join(', ')}`);
  }
  const granularity = body.granularity as Granularity;
  const from = time('from', body.from);
  const to = time('to', body.to);
  if (to <= from) throw new ReportRequestError('to must be after from');
  const step = GRANULARITY_MS[granularity];
  if (Math.ceil(to / step) - Math.floor(from / step) > MAX_BUCKETS[granularity]) {
    throw new ReportRequestError(`a ${granularity} series spans at most ${MAX_BUCKETS[granularity]} ${granularity}s`);
  }
  const where: SeriesRequest['where'] = {};
  if (body.where !== undefined) {
    for (const [dimension, values] of Object.entries(object(body.where))) {
      if (!(Dimension as readonly string[]).includes(dimension)) throw new ReportRequestError(`where: unknown dimension ${dimension}`);
      if (
        !Array.isArray(values) ||
        values.length === 0 ||
        values.length > MAX_VALUES ||
        !values.every((v) => typeof v === 'string' && v.length <= MAX_VALUE_LENGTH)
      ) {
        throw new ReportRequestError(`where.${dimension} must be a list of 1 to ${MAX_VALUES} strings`);
      }
      where[dimension as Dimension] = [...new Set(values as string[])];
    }
  }
  const request: SeriesRequest = {
    app: app(body.app),
    granularity,
    from,
    to,
    by: members('by', body.by, Dimension),
    where,
    kinds: members('kinds', body.kinds, EventKind),
  };
  if (body.message !== undefined) request.message = message(body.message);
  return request;
}
