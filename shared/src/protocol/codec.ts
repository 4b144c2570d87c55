/**
 * The one boundary where device-protocol bytes become typed frames (and back).
 */
import { Packr } from 'msgpackr';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { CloseCode, type CloseInfo } from './codes.js';
import {
  clientFrameSchemas,
  serverFrameSchemas,
  type ClientFrame,
  type ServerFrame,
} from './frames.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export class ProtocolError extends Error {
  readonly close: CloseInfo;
  constructor(close: CloseInfo, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtocolError';
    this.close = close;
  }
}

type Validators = ReadonlyMap<number, ReturnType<typeof Compile<TSchema>>>;

function compileAll(schemas: Record<number, TSchema>): Validators {
  return new Map(Object.entries(schemas).map(([t, schema]) => [Number(t), Compile(schema)]));
}

const clientValidators = compileAll(clientFrameSchemas);
const serverValidators = compileAll(serverFrameSchemas);

function decodeWith<T>(bytes: Uint8Array, validators: Validators, refuseNul = false): T {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (cause) {
    throw new ProtocolError(CloseCode.BAD_FRAME, 'frame is not valid msgpack', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(CloseCode.BAD_FRAME, 'frame is not a msgpack map');
  }
  const t = (value as { t?: unknown }).t;
  const validator = typeof t === 'number' ? validators.get(t) : undefined;
  if (!validator) throw new ProtocolError(CloseCode.UNKNOWN_FRAME, `unknown frame type ${String(t)}`);
  if (!validator.Check(value)) {
    const first = [...validator.Errors(value)][0];
    const where = first ? `${first.instancePath || '/'} ${first.message}` : 'schema mismatch';
    throw new ProtocolError(CloseCode.INVALID_FRAME, `frame type ${t}: ${where}`);
  }
  // PostgreSQL cannot store U+0000 in text: refused here rather than failing the handler (4013).
  if (refuseNul && holdsNul(value)) throw new ProtocolError(CloseCode.INVALID_FRAME, `frame type ${t}: a string holds U+0000`);
  return value as T;
}

function holdsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (Array.isArray(value)) return value.some(holdsNul);
  if (typeof value === 'object' && value !== null) return Object.entries(value).some(([k, v]) => k.includes('\u0000') || holdsNul(v));
  return false;
}

export function decodeClientFrame(bytes: Uint8Array): ClientFrame {
  return decodeWith<ClientFrame>(bytes, clientValidators, true);
}

export function decodeServerFrame(bytes: Uint8Array): ServerFrame {
  return decodeWith<ServerFrame>(bytes, serverValidators);
}

export function encodeFrame(frame: ClientFrame | ServerFrame): Uint8Array {
  return packr.pack(frame);
}
