/**
 * What travels on an app's broadcast subject: the device frame, encoded once by the control plane,
 * and who it is for. A gateway decodes the envelope once and sends the same bytes to every socket.
 */
import { Packr } from 'msgpackr';
import { parseCondition, type Condition } from './condition.js';

export const Audience = ['all', 'bound', 'unbound'] as const;
export type Audience = (typeof Audience)[number];

export interface BroadcastEnvelope {
  /** The encoded device frame (MESSAGE or REVOKE). */
  frame: Uint8Array;
  audience: Audience;
  condition: Condition | null;
  /** The message id: devices registered after it was sent do not get it. */
  id: string;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true });

export function encodeBroadcast(envelope: BroadcastEnvelope): Uint8Array {
  return packr.pack({ f: envelope.frame, a: envelope.audience, c: envelope.condition, i: envelope.id });
}

export class BroadcastDecodeError extends Error {
  override name = 'BroadcastDecodeError';
}

export function decodeBroadcast(bytes: Uint8Array): BroadcastEnvelope {
  let raw: { f?: unknown; a?: unknown; c?: unknown; i?: unknown };
  try {
    raw = packr.unpack(bytes) as typeof raw;
  } catch (cause) {
    throw new BroadcastDecodeError('broadcast envelope is not msgpack', { cause });
  }
  if (!(raw.f instanceof Uint8Array) || !Audience.includes(raw.a as Audience) || typeof raw.i !== 'string') {
    throw new BroadcastDecodeError('broadcast envelope is malformed');
  }
  return { frame: raw.f, audience: raw.a as Audience, condition: raw.c == null ? null : parseCondition(raw.c), id: raw.i };
}
