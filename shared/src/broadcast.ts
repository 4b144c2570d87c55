/**
 * What travels on an app's broadcast subject: the device frame, encoded once by the control plane,
 * and who it is for. A gateway decodes the envelope once and sends the same bytes to every socket.
 */
import { Packr } from 'msgpackr';
import { conditionSql, parseCondition, type Condition } from './condition.js';

export const Audience = ['all', 'bound', 'unbound'] as const;
export type Audience = (typeof Audience)[number];

/** Whom a broadcast is for; stored with the message (messages.target) and sent in its envelope. */
export interface Selection {
  audience: Audience;
  condition: Condition | null;
  /** Only devices seen (connected or registered) at or after this time, in ms since the epoch. */
  seenAfter?: number;
}

/**
 * The SQL conditions on `devices d` (joined with `user_profiles up`) that select a broadcast's
 * devices; values are appended to `params`.
 */
export function selectionSql(selection: Selection, params: unknown[]): string[] {
  const where: string[] = [];
  if (selection.audience === 'bound') where.push('d.user_id IS NOT NULL');
  if (selection.audience === 'unbound') where.push('d.user_id IS NULL');
  if (selection.seenAfter !== undefined) {
    params.push(new Date(selection.seenAfter));
    where.push(`d.last_seen_at >= $${params.length}`);
  }
  if (selection.condition) where.push(conditionSql(selection.condition, params));
  return where;
}

/** The selection stored in messages.target, as written by the control plane. */
export function storedSelection(target: { audience?: unknown; condition?: unknown; seenAfter?: unknown }): Selection {
  return {
    audience: Audience.includes(target.audience as Audience) ? (target.audience as Audience) : 'all',
    condition: target.condition == null ? null : parseCondition(target.condition),
    ...(typeof target.seenAfter === 'number' && { seenAfter: target.seenAfter }),
  };
}

export interface BroadcastEnvelope extends Selection {
  /** The encoded device frame (MESSAGE or REVOKE). */
  frame: Uint8Array;
  /** The message id: devices registered after it was sent do not get it. */
  id: string;
  /** Connected devices get it spread evenly over this many ms instead of all at once. */
  spreadMs?: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeBroadcast(envelope: BroadcastEnvelope): Uint8Array {
  return packr.pack({
    f: envelope.frame,
    a: envelope.audience,
    c: envelope.condition,
    i: envelope.id,
    ...(envelope.seenAfter !== undefined && { s: envelope.seenAfter }),
    ...(envelope.spreadMs !== undefined && { w: envelope.spreadMs }),
  });
}

export class BroadcastDecodeError extends Error {
  override name = 'BroadcastDecodeError';
}

export function decodeBroadcast(bytes: Uint8Array): BroadcastEnvelope {
  let raw: { f?: unknown; a?: unknown; c?: unknown; i?: unknown; s?: unknown; w?: unknown };
  try {
    raw = packr.unpack(bytes) as typeof raw;
  } catch (cause) {
    throw new BroadcastDecodeError('broadcast envelope is not msgpack', { cause });
  }
  const optionalCount = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0);
  if (!(raw.f instanceof Uint8Array) || !Audience.includes(raw.a as Audience) || typeof raw.i !== 'string' || !optionalCount(raw.s) || !optionalCount(raw.w)) {
    throw new BroadcastDecodeError('broadcast envelope is malformed');
  }
  return {
    frame: raw.f,
    audience: raw.a as Audience,
    condition: raw.c == null ? null : parseCondition(raw.c),
    id: raw.i,
    ...(raw.s !== undefined && { seenAfter: raw.s as number }),
    ...(raw.w !== undefined && { spreadMs: raw.w as number }),
  };
}
