/**
 * Writes docs/conformance/vectors.json: every device-protocol frame as the real encoder writes it,
 * the bytes the real decoder refuses (with the close code the gateway sends for them), and frames
 * that decode but that the gateway refuses in a given connection state. Run from the repo root:
 *
 *   node --conditions=source --import tsx docs/conformance/generate.ts
 *
 * The expected outcome of each vector is written here by hand and checked against the code before
 * anything is written; shared/src/protocol/conformance.test.ts checks the file against the code again.
 */
import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import {
  CloseCode,
  decodeClientFrame,
  decodeServerFrame,
  encodeFrame,
  FrameType,
  Limits,
  PROTOCOL_VERSION,
  ProtocolError,
  type ClientFrame,
  type CloseInfo,
  type ServerFrame,
} from '@mps/shared/protocol';

type Direction = 'client' | 'server';

const APP = 'app_Zr4k9QeX2mB7wLpN';
const DEVICE = '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b';
const SECRET = 'kq3Vb8ZxN1rT5yW0cE7uH2mJ9pL4sD6gF1aQ8oI3nRw';
const MESSAGE = '0190a6f3-0c1d-7a2b-8c3d-4e5f6a7b8c9d';
const MESSAGE_2 = '0190a6f3-1e2f-7b3c-9d4e-5f6a7b8c9d0e';
const AT = 1_700_000_000_000;
const EXP = 1_700_086_400_000;
const KEY_ID = 'key_8sVqT2wYz5NbL3pK';

/**
 * A device token as a business server makes it (HS256 over the API key's secret, key id in `kid`).
 * Opaque to the device; these are signed with the example secret 'example-key-secret'.
 */
function exampleToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signed = `${part({ alg: 'HS256', kid: KEY_ID })}.${part(claims)}`;
  return `${signed}.${createHmac('sha256', 'example-key-secret').update(signed).digest('base64url')}`;
}
const CONNECT_TOKEN = exampleToken({ aud: 'mps:connect', sub: DEVICE, iat: 1_700_000_000, exp: 1_700_000_600 });
const BIND_TOKEN = exampleToken({ aud: 'mps:bind', sub: 'alice', dev: DEVICE, iat: 1_700_000_000, exp: 1_700_000_600 });

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `m${i}`);

/** The real encoder, also fed values that no typed frame allows (the error vectors). */
const encodeAny = (value: unknown): Uint8Array => encodeFrame(value as ClientFrame);

/**
 * The same value written with the smallest msgpack encodings (fixmap, fixstr, the narrowest int,
 * uint64 for large timestamps), as msgpack-java, MessagePack for Swift and most libraries write it.
 * Decoders must accept it as well as the reference encoder's map16 / float64 form.
 */
function compact(value: unknown): Uint8Array {
  const out: number[] = [];
  const be = (n: bigint, bytes: number) => {
    for (let i = bytes - 1; i >= 0; i--) out.push(Number((n >> BigInt(8 * i)) & 0xffn));
  };
  const header = (len: number, fix: number, fixMax: number, c8: number | undefined, c16: number, c32: number) => {
    if (len <= fixMax) out.push(fix | len);
    else if (c8 !== undefined && len <= 0xff) out.push(c8, len);
    else if (len <= 0xffff) (out.push(c16), be(BigInt(len), 2));
    else (out.push(c32), be(BigInt(len), 4));
  };
  const write = (v: unknown): void => {
    if (v === null) return void out.push(0xc0);
    if (typeof v === 'boolean') return void out.push(v ? 0xc3 : 0xc2);
    if (typeof v === 'string') {
      const bytes = Buffer.from(v, 'utf8');
      header(bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return void out.push(...bytes);
    }
    if (typeof v === 'number' && Number.isInteger(v)) {
      const n = BigInt(v);
      if (n >= 0n) {
        if (n < 0x80n) return void out.push(Number(n));
        const [code, bytes] = n <= 0xffn ? [0xcc, 1] : n <= 0xffffn ? [0xcd, 2] : n <= 0xffffffffn ? [0xce, 4] : [0xcf, 8];
        out.push(code);
        return be(n, bytes);
      }
      if (n >= -32n) return void out.push(Number(n & 0xffn));
      const [code, bytes] = n >= -0x80n ? [0xd0, 1] : n >= -0x8000n ? [0xd1, 2] : n >= -0x80000000n ? [0xd2, 4] : [0xd3, 8];
      out.push(code);
      return be(BigInt.asUintN(bytes * 8, n), bytes);
    }
    if (typeof v === 'number') {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      return void out.push(0xcb, ...b);
    }
    if (Array.isArray(v)) {
      header(v.length, 0x90, 15, undefined, 0xdc, 0xdd);
      return v.forEach(write);
    }
    if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>);
      header(entries.length, 0x80, 15, undefined, 0xde, 0xdf);
      for (const [key, item] of entries) {
        write(key);
        write(item);
      }
      return;
    }
    throw new Error(`compact(): cannot write ${typeof v}`);
  };
  write(value);
  return Uint8Array.from(out);
}

const decoderOf = (direction: Direction) => (direction === 'client' ? decodeClientFrame : decodeServerFrame);

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`vector "${what}" does not hold against the code`);
}

// ---------------------------------------------------------------------------------------------
// Valid frames: `hex` is what encodeFrame writes; `compactHex` the same map in the smallest encodings.

interface FrameVector {
  name: string;
  direction: Direction;
  hex: string;
  compactHex: string;
  frame: ClientFrame | ServerFrame;
}

const clientFrames: Array<[string, ClientFrame]> = [
  ['register: a new device, fewest fields', { t: FrameType.REGISTER, v: PROTOCOL_VERSION, app: APP, platform: 'android' }],
  [
    'register: a new device, every device fact',
    {
      t: FrameType.REGISTER,
      v: PROTOCOL_VERSION,
      app: APP,
      platform: 'ios',
      osVersion: '17.4.1',
      appVersion: '2.3.0',
      sdkVersion: '0.1.0',
      locale: 'pt-BR',
      timezone: 'America/Sao_Paulo',
    },
  ],
  [
    'register: a known device again, keeping its id',
    { t: FrameType.REGISTER, v: PROTOCOL_VERSION, app: APP, device: DEVICE, secret: SECRET, platform: 'android', appVersion: '2.4.0' },
  ],
  ['auth: with the device secret', { t: FrameType.AUTH, v: PROTOCOL_VERSION, app: APP, device: DEVICE, secret: SECRET, platform: 'android', osVersion: '14' }],
  ['auth: with a connect token', { t: FrameType.AUTH, v: PROTOCOL_VERSION, app: APP, device: DEVICE, token: CONNECT_TOKEN, platform: 'harmony' }],
  ['ack: one message', { t: FrameType.ACK, ids: [MESSAGE] }],
  ['ack: a batch', { t: FrameType.ACK, ids: [MESSAGE, MESSAGE_2] }],
  [`ack: ${Limits.IDS_PER_FRAME} ids, the most one frame may carry`, { t: FrameType.ACK, ids: ids(Limits.IDS_PER_FRAME) }],
  ['ack: an id of 64 code points (65 UTF-16 units, 67 UTF-8 bytes): lengths count code points', { t: FrameType.ACK, ids: ['x'.repeat(63) + '😀'] }],
  ['ack: with a field this version does not know, which the gateway ignores', { t: FrameType.ACK, ids: [MESSAGE], batch: 7 } as ClientFrame],
  ['ping', { t: FrameType.PING }],
  ['bind', { t: FrameType.BIND, token: BIND_TOKEN }],
  ['unbind', { t: FrameType.UNBIND }],
  ['vendor token', { t: FrameType.VENDOR_TOKEN, vendor: 'fcm', token: 'dGhpcyBpcyBhbiBGQ00gcmVnaXN0cmF0aW9uIHRva2Vu' }],
  ['tags: add and remove', { t: FrameType.TAGS, add: ['vip', 'beta'], remove: ['trial'] }],
  ['attributes: set one, remove one (nil)', { t: FrameType.ATTRIBUTES, set: { tier: 'gold', city: null } }],
  [
    'track: arrived, opened and ignored',
    {
      t: FrameType.TRACK,
      events: [
        { id: MESSAGE, ev: 'arrived', at: AT },
        { id: MESSAGE, ev: 'opened', at: AT + 4_000 },
        { id: MESSAGE_2, ev: 'ignored' },
      ],
    },
  ],
  ['gap ack', { t: FrameType.GAP_ACK, expired: 3, dropped: 120 }],
];

const serverFrames: Array<[string, ServerFrame]> = [
  ['ready: a new device, with its secret (sent this once only)', { t: FrameType.READY, device: DEVICE, secret: SECRET, time: AT, heartbeat: 60 }],
  ['ready: a known device', { t: FrameType.READY, device: DEVICE, time: AT, heartbeat: 60 }],
  ['message: a notification with a title only', { t: FrameType.MESSAGE, id: MESSAGE, type: 'notification', title: 'Hello', exp: EXP }],
  [
    'message: a notification with every field',
    {
      t: FrameType.MESSAGE,
      id: MESSAGE_2,
      type: 'notification',
      title: 'Olá',
      body: 'Your order 🍕 is on its way',
      payload: { order: 42, total: 18.5, items: [{ sku: 'a-1', qty: 2 }], gift: null, paid: true, delta: -3 },
      extras: { deeplink: 'app://orders/42' },
      exp: EXP,
    },
  ],
  ['message: silent, with a payload', { t: FrameType.MESSAGE, id: MESSAGE, type: 'silent', payload: { sync: 'inbox' }, exp: EXP }],
  ['pong', { t: FrameType.PONG }],
  ['bound: to a user', { t: FrameType.BOUND, user: 'alice' }],
  ['bound: to no user (after unbind)', { t: FrameType.BOUND, user: null }],
  ['revoke', { t: FrameType.REVOKE, id: MESSAGE }],
  ['reconnect', { t: FrameType.RECONNECT, after: 2500 }],
  ['gap: expired and dropped messages', { t: FrameType.GAP, expired: 3, dropped: 120 }],
  ['pong: with a field this version does not know, which clients ignore', { t: FrameType.PONG, load: 0.5 } as ServerFrame],
];

function frameVector(direction: Direction, [name, frame]: [string, ClientFrame | ServerFrame]): FrameVector {
  const bytes = encodeFrame(frame);
  const compactBytes = compact(frame);
  const decode = decoderOf(direction);
  check(isDeepStrictEqual({ ...decode(bytes) }, frame), name);
  check(isDeepStrictEqual({ ...decode(compactBytes) }, frame), `${name} (compact)`);
  return { name, direction, hex: hex(bytes), compactHex: hex(compactBytes), frame };
}

// ---------------------------------------------------------------------------------------------
// Bytes the decoder refuses. `msgpack` is the decoded value where JSON can show it.

interface ErrorVector {
  name: string;
  direction: Direction;
  hex: string;
  msgpack?: unknown;
  error: CloseInfo;
}

type ErrorCase = [name: string, direction: Direction, bytes: Uint8Array | { value: unknown }, expected: CloseInfo];

const register = { t: FrameType.REGISTER, v: PROTOCOL_VERSION, app: APP, platform: 'android' };
const auth = { t: FrameType.AUTH, v: PROTOCOL_VERSION, app: APP, device: DEVICE, secret: SECRET, platform: 'android' };
const ready = { t: FrameType.READY, device: DEVICE, time: AT, heartbeat: 60 };
const message = { t: FrameType.MESSAGE, id: MESSAGE, type: 'notification', title: 'Hello', exp: EXP };
const without = (frame: Record<string, unknown>, field: string) => Object.fromEntries(Object.entries(frame).filter(([k]) => k !== field));
const raw = (...bytes: number[]) => Uint8Array.from(bytes);
const v = (value: unknown) => ({ value });

const errorCases: ErrorCase[] = [
  // Not msgpack at all.
  ['no bytes at all', 'client', raw(), CloseCode.BAD_FRAME],
  ['a string header longer than the message', 'client', raw(0xd9, 0x05, 0x61, 0x62), CloseCode.BAD_FRAME],
  ['a map cut short', 'client', raw(0x82, 0xa1, 0x74), CloseCode.BAD_FRAME],
  ['a complete frame followed by another value (one msgpack value per WebSocket message)', 'client', Uint8Array.from([...encodeFrame({ t: FrameType.PING }), 0xc0]), CloseCode.BAD_FRAME],
  ['two frames in one WebSocket message', 'client', Uint8Array.from([...encodeFrame({ t: FrameType.PING }), ...encodeFrame({ t: FrameType.PING })]), CloseCode.BAD_FRAME],
  ['server: a map cut short', 'server', raw(0x82, 0xa1, 0x74), CloseCode.BAD_FRAME],
  // msgpack, but not a map.
  ['an array', 'client', v([FrameType.PING]), CloseCode.BAD_FRAME],
  ['a number', 'client', v(FrameType.PING), CloseCode.BAD_FRAME],
  ['a string', 'client', v('ping'), CloseCode.BAD_FRAME],
  ['nil', 'client', v(null), CloseCode.BAD_FRAME],
  ['server: an array', 'server', v([FrameType.PONG]), CloseCode.BAD_FRAME],
  // A map whose `t` is no frame type of this direction.
  ['t = 99, no frame type', 'client', v({ t: 99 }), CloseCode.UNKNOWN_FRAME],
  ['t = 0', 'client', v({ t: 0 }), CloseCode.UNKNOWN_FRAME],
  ['t as a string', 'client', v({ t: '4' }), CloseCode.UNKNOWN_FRAME],
  ['no t', 'client', v({ ids: [MESSAGE] }), CloseCode.UNKNOWN_FRAME],
  ['a server frame type (READY) sent by a client', 'client', v(ready), CloseCode.UNKNOWN_FRAME],
  ['server: t = 90, a type this version does not know (clients ignore the frame)', 'server', v({ t: 90, why: 'newer gateway' }), CloseCode.UNKNOWN_FRAME],
  ['server: a client frame type (PING) sent by a server', 'server', v({ t: FrameType.PING }), CloseCode.UNKNOWN_FRAME],
  // A known frame type whose fields break its schema.
  ['register without v', 'client', v(without(register, 'v')), CloseCode.INVALID_FRAME],
  ['register with v as a string', 'client', v({ ...register, v: '1' }), CloseCode.INVALID_FRAME],
  ['register with a fractional v', 'client', v({ ...register, v: 1.5 }), CloseCode.INVALID_FRAME],
  ['register without app', 'client', v(without(register, 'app')), CloseCode.INVALID_FRAME],
  ['register with an empty app', 'client', v({ ...register, app: '' }), CloseCode.INVALID_FRAME],
  ['register without platform', 'client', v(without(register, 'platform')), CloseCode.INVALID_FRAME],
  ["register with platform 'symbian'", 'client', v({ ...register, platform: 'symbian' }), CloseCode.INVALID_FRAME],
  ['register with a locale of 36 characters', 'client', v({ ...register, locale: 'x'.repeat(36) }), CloseCode.INVALID_FRAME],
  ['register with a secret of 129 characters', 'client', v({ ...register, device: DEVICE, secret: 'x'.repeat(129) }), CloseCode.INVALID_FRAME],
  ['register with app as msgpack bin instead of str', 'client', encodeAny({ ...register, app: Buffer.from(APP) }), CloseCode.INVALID_FRAME],
  ['auth with both a secret and a token', 'client', v({ ...auth, token: CONNECT_TOKEN }), CloseCode.INVALID_FRAME],
  ['auth with neither a secret nor a token', 'client', v(without(auth, 'secret')), CloseCode.INVALID_FRAME],
  ['auth with an empty secret', 'client', v({ ...auth, secret: '' }), CloseCode.INVALID_FRAME],
  ['auth with a nil token next to the secret', 'client', v({ ...auth, token: null }), CloseCode.INVALID_FRAME],
  ['auth without device', 'client', v(without(auth, 'device')), CloseCode.INVALID_FRAME],
  ['ack without ids', 'client', v({ t: FrameType.ACK }), CloseCode.INVALID_FRAME],
  ['ack with no ids', 'client', v({ t: FrameType.ACK, ids: [] }), CloseCode.INVALID_FRAME],
  [`ack with ${Limits.IDS_PER_FRAME + 1} ids`, 'client', v({ t: FrameType.ACK, ids: ids(Limits.IDS_PER_FRAME + 1) }), CloseCode.INVALID_FRAME],
  ['ack with an empty id', 'client', v({ t: FrameType.ACK, ids: [''] }), CloseCode.INVALID_FRAME],
  ['ack with an id of 65 characters', 'client', v({ t: FrameType.ACK, ids: ['x'.repeat(65)] }), CloseCode.INVALID_FRAME],
  ['ack with a number as id', 'client', v({ t: FrameType.ACK, ids: [42] }), CloseCode.INVALID_FRAME],
  ['bind without token', 'client', v({ t: FrameType.BIND }), CloseCode.INVALID_FRAME],
  ["vendor token for vendor 'nokia'", 'client', v({ t: FrameType.VENDOR_TOKEN, vendor: 'nokia', token: 'x' }), CloseCode.INVALID_FRAME],
  [`tags adding ${Limits.TAGS_PER_DEVICE + 1} tags`, 'client', v({ t: FrameType.TAGS, add: ids(Limits.TAGS_PER_DEVICE + 1) }), CloseCode.INVALID_FRAME],
  ['tags with an empty tag', 'client', v({ t: FrameType.TAGS, remove: [''] }), CloseCode.INVALID_FRAME],
  ['attributes with a number as value', 'client', v({ t: FrameType.ATTRIBUTES, set: { tier: 3 } }), CloseCode.INVALID_FRAME],
  [`attributes with a value of ${Limits.ATTRIBUTE_VALUE_LENGTH + 1} characters`, 'client', v({ t: FrameType.ATTRIBUTES, set: { tier: 'x'.repeat(Limits.ATTRIBUTE_VALUE_LENGTH + 1) } }), CloseCode.INVALID_FRAME],
  ["track with event 'liked'", 'client', v({ t: FrameType.TRACK, events: [{ id: MESSAGE, ev: 'liked' }] }), CloseCode.INVALID_FRAME],
  ['track with no events', 'client', v({ t: FrameType.TRACK, events: [] }), CloseCode.INVALID_FRAME],
  ['track with at as a string', 'client', v({ t: FrameType.TRACK, events: [{ id: MESSAGE, ev: 'opened', at: '1700000000000' }] }), CloseCode.INVALID_FRAME],
  ['track with at as a msgpack timestamp extension', 'client', encodeAny({ t: FrameType.TRACK, events: [{ id: MESSAGE, ev: 'opened', at: new Date(AT) }] }), CloseCode.INVALID_FRAME],
  ['server: ready without heartbeat', 'server', v(without(ready, 'heartbeat')), CloseCode.INVALID_FRAME],
  ['server: ready with time as a string', 'server', v({ ...ready, time: String(AT) }), CloseCode.INVALID_FRAME],
  ['server: message without exp', 'server', v(without(message, 'exp')), CloseCode.INVALID_FRAME],
  ["server: message of type 'loud'", 'server', v({ ...message, type: 'loud' }), CloseCode.INVALID_FRAME],
  ['server: message with a number among the extras', 'server', v({ ...message, extras: { count: 3 } }), CloseCode.INVALID_FRAME],
  ['server: reconnect with a negative delay', 'server', v({ t: FrameType.RECONNECT, after: -1 }), CloseCode.INVALID_FRAME],
  ['gap ack with a negative count', 'client', v({ t: FrameType.GAP_ACK, expired: -1, dropped: 0 }), CloseCode.INVALID_FRAME],
  ['server: gap without dropped', 'server', v({ t: FrameType.GAP, expired: 1 }), CloseCode.INVALID_FRAME],
];

function errorVector([name, direction, input, expected]: ErrorCase): ErrorVector {
  const bytes = input instanceof Uint8Array ? input : encodeAny(input.value);
  try {
    decoderOf(direction)(bytes);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    check(error.close === expected, `${name}: got ${error.close.reason}`);
    return { name, direction, hex: hex(bytes), ...(!(input instanceof Uint8Array) && { msgpack: input.value }), error: expected };
  }
  throw new Error(`vector "${name}" decodes, but should not`);
}

// ---------------------------------------------------------------------------------------------
// Frames the decoder accepts but the gateway refuses, given the connection's state.

interface GatewayVector {
  name: string;
  /** `open`: the first frame on a new connection; `ready`: sent after READY. */
  after: 'open' | 'ready';
  hex: string;
  frame: ClientFrame;
  close: CloseInfo;
}

const gatewayCases: Array<[string, GatewayVector['after'], ClientFrame, CloseInfo]> = [
  ['an ack before register or auth', 'open', { t: FrameType.ACK, ids: [MESSAGE] }, CloseCode.NOT_AUTHENTICATED],
  ['a ping before register or auth', 'open', { t: FrameType.PING }, CloseCode.NOT_AUTHENTICATED],
  ['register with protocol version 2', 'open', { ...register, v: 2 } as ClientFrame, CloseCode.UNSUPPORTED_VERSION],
  ['auth with protocol version 0', 'open', { ...auth, v: 0 } as ClientFrame, CloseCode.UNSUPPORTED_VERSION],
  ['register for an app that does not exist', 'open', { ...register, app: 'app_doesNotExist00' } as ClientFrame, CloseCode.AUTH_FAILED],
  ['register with a device id but no secret', 'open', { ...register, device: DEVICE } as ClientFrame, CloseCode.AUTH_FAILED],
  ['auth with a device id that is not a UUID', 'open', { ...auth, device: 'dev-1' } as ClientFrame, CloseCode.AUTH_FAILED],
  ['auth with a connect token that is not a JWT', 'open', { ...without(auth, 'secret'), token: 'not-a-jwt' } as ClientFrame, CloseCode.AUTH_FAILED],
  ['a second register', 'ready', register as ClientFrame, CloseCode.INVALID_FRAME],
  ['a second auth', 'ready', auth as ClientFrame, CloseCode.INVALID_FRAME],
  ['bind with a token that is not a JWT', 'ready', { t: FrameType.BIND, token: 'not-a-jwt' }, CloseCode.BIND_REJECTED],
];

function gatewayVector([name, after, frame, close]: (typeof gatewayCases)[number]): GatewayVector {
  const bytes = encodeFrame(frame);
  check(isDeepStrictEqual({ ...decodeClientFrame(bytes) }, frame), name);
  return { name, after, hex: hex(bytes), frame, close };
}

const vectors = {
  about:
    'Conformance vectors of the mps device protocol (docs/protocol.md). Generated by docs/conformance/generate.ts from the ' +
    'reference codec; checked by shared/src/protocol/conformance.test.ts. hex: bytes of one binary WebSocket message.',
  protocolVersion: PROTOCOL_VERSION,
  frameTypes: FrameType,
  closeCodes: CloseCode,
  limits: Limits,
  frames: [...clientFrames.map((f) => frameVector('client', f)), ...serverFrames.map((f) => frameVector('server', f))],
  errors: errorCases.map(errorVector),
  gateway: gatewayCases.map(gatewayVector),
};

/** JSON with two-space indentation, arrays of scalars kept on one line (the 256-id vectors stay short). */
function format(value: unknown, indent = ''): string {
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.every((item) => item === null || typeof item !== 'object')) return JSON.stringify(value);
    return `[\n${value.map((item) => inner + format(item, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([key, item]) => `${inner}${JSON.stringify(key)}: ${format(item, inner)}`);
    return entries.length === 0 ? '{}' : `{\n${entries.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

const target = new URL('./vectors.json', import.meta.url);
writeFileSync(target, `${format(vectors)}\n`);
console.log(
  `wrote ${vectors.frames.length} frames, ${vectors.errors.length} errors and ${vectors.gateway.length} gateway vectors to ${target.pathname}`,
);
