import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeClientFrame, decodeServerFrame, encodeFrame, ProtocolError } from './codec.js';
import { CloseCode, type CloseInfo } from './codes.js';
import { FrameType, PROTOCOL_VERSION, type ClientFrame, type ServerFrame } from './frames.js';

function protocolErrorOf(decode: () => unknown): ProtocolError {
  try {
    decode();
  } catch (error) {
    if (error instanceof ProtocolError) return error;
    throw error;
  }
  throw new Error('expected a ProtocolError, but decoding succeeded');
}

const closeOf = (decode: () => unknown): CloseInfo => protocolErrorOf(decode).close;

const clientFrames: Array<[string, ClientFrame]> = [
  ['register, first time (minimal)', { t: FrameType.REGISTER, v: PROTOCOL_VERSION, app: 'app_1', platform: 'android' }],
  [
    'register, again (every field)',
    {
      t: FrameType.REGISTER,
      v: PROTOCOL_VERSION,
      app: 'app_1',
      device: '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b',
      secret: 's3cret',
      platform: 'ios',
      osVersion: '17.4',
      appVersion: '2.3.0',
      sdkVersion: '0.1.0',
      locale: 'pt-BR',
      timezone: 'America/Sao_Paulo',
    },
  ],
  [
    'auth',
    {
      t: FrameType.AUTH,
      v: PROTOCOL_VERSION,
      app: 'app_1',
      device: 'dev-1',
      secret: 's3cret',
      platform: 'harmony',
      locale: 'zh-CN',
    },
  ],
  ['auth with a connect token', { t: FrameType.AUTH, v: PROTOCOL_VERSION, app: 'app_1', device: 'dev-1', token: 'a.b.c', platform: 'web' }],
  ['ack, one id', { t: FrameType.ACK, ids: ['m1'] }],
  ['bind', { t: FrameType.BIND, token: 'header.payload.signature' }],
  ['unbind', { t: FrameType.UNBIND }],
  ['vendor token', { t: FrameType.VENDOR_TOKEN, vendor: 'fcm', token: 'fcm-registration-token' }],
  ['tags', { t: FrameType.TAGS, add: ['vip', 'beta'], remove: ['trial'] }],
  ['attributes', { t: FrameType.ATTRIBUTES, set: { tier: 'gold', city: null } }],
  ['track', { t: FrameType.TRACK, events: [{ id: 'm1', ev: 'arrived', at: 1_700_000_000_000 }, { id: 'm1', ev: 'opened' }] }],
  ['gap ack', { t: FrameType.GAP_ACK, expired: 2, dropped: 0 }],
  ['ack, 256 ids', { t: FrameType.ACK, ids: Array.from({ length: 256 }, (_, i) => `m${i}`) }],
  ['ping', { t: FrameType.PING }],
];

const serverFrames: Array<[string, ServerFrame]> = [
  ['ready, new device', { t: FrameType.READY, device: 'dev-1', secret: 'only-once', time: 1_700_000_000_123, heartbeat: 30 }],
  ['ready, known device', { t: FrameType.READY, device: 'dev-1', time: 1_700_000_000_123, heartbeat: 30 }],
  ['message, silent (minimal)', { t: FrameType.MESSAGE, id: 'm1', type: 'silent', exp: 1_700_000_600_000 }],
  [
    'message, notification (every field)',
    {
      t: FrameType.MESSAGE,
      id: 'm2',
      type: 'notification',
      title: 'Olá',
      body: 'Your order 🍕 is on its way',
      payload: { order: 42, items: [{ sku: 'a', qty: 2 }], gift: null, paid: true },
      extras: { deeplink: 'app://orders/42' },
      exp: 1_700_000_600_000,
    },
  ],
  ['pong', { t: FrameType.PONG }],
  ['bound', { t: FrameType.BOUND, user: 'alice' }],
  ['unbound', { t: FrameType.BOUND, user: null }],
  ['revoke', { t: FrameType.REVOKE, id: 'm1' }],
  ['reconnect', { t: FrameType.RECONNECT, after: 2500 }],
  ['gap', { t: FrameType.GAP, expired: 2, dropped: 5 }],
];

describe('encodeFrame / decodeClientFrame / decodeServerFrame', () => {
  it('has a sample for every frame type', () => {
    const sampled = new Set([...clientFrames, ...serverFrames].map(([, frame]) => frame.t));
    expect([...sampled].sort((a, b) => a - b)).toEqual(Object.values(FrameType).sort((a, b) => a - b));
  });

  it.each(clientFrames)('round-trips a client frame: %s', (_, frame) => {
    expect(decodeClientFrame(encodeFrame(frame))).toEqual(frame);
  });

  it.each(serverFrames)('round-trips a server frame: %s', (_, frame) => {
    expect(decodeServerFrame(encodeFrame(frame))).toEqual(frame);
  });

  it.each(serverFrames)('does not accept a server frame as a client frame: %s', (_, frame) => {
    const error = protocolErrorOf(() => decodeClientFrame(encodeFrame(frame)));
    expect(error.close).toBe(CloseCode.UNKNOWN_FRAME);
    expect(error.message).toBe(`unknown frame type ${frame.t}`);
  });

  it.each(clientFrames)('does not accept a client frame as a server frame: %s', (_, frame) => {
    expect(closeOf(() => decodeServerFrame(encodeFrame(frame)))).toBe(CloseCode.UNKNOWN_FRAME);
  });

  it('tolerates unknown extra fields, so that newer peers can add them', () => {
    const ack = { t: FrameType.ACK, ids: ['m1'], batch: 7, meta: { why: 'later' } };
    expect(decodeClientFrame(pack(ack))).toMatchObject({ t: FrameType.ACK, ids: ['m1'] });
    const pong = { t: FrameType.PONG, load: 0.5 };
    expect(decodeServerFrame(pack(pong))).toMatchObject({ t: FrameType.PONG });
  });
});

describe('bytes that are not a msgpack map: BAD_FRAME', () => {
  const notMsgpack: Array<[string, Uint8Array]> = [
    ['a truncated map', Uint8Array.from([0x82, 0xa1, 0x74])],
    ['a map header alone', Uint8Array.from([0x81])],
    ['no bytes at all', new Uint8Array(0)],
    ['a valid frame followed by extra bytes', Uint8Array.from([...pack({ t: FrameType.PING }), 0xc0])],
  ];

  it.each(notMsgpack)('refuses %s as not msgpack, keeping the cause', (_, bytes) => {
    const error = protocolErrorOf(() => decodeClientFrame(bytes));
    expect(error.close).toBe(CloseCode.BAD_FRAME);
    expect(error.message).toBe('frame is not valid msgpack');
    expect(error.cause).toBeInstanceOf(Error);
  });

  const notAMap: Array<[string, unknown]> = [
    ['an array', [FrameType.PING]],
    ['a number', FrameType.PING],
    ['a string', 'ping'],
    ['nil', null],
  ];

  it.each(notAMap)('refuses %s as not a map', (_, value) => {
    const error = protocolErrorOf(() => decodeClientFrame(pack(value)));
    expect(error.close).toBe(CloseCode.BAD_FRAME);
    expect(error.message).toBe('frame is not a msgpack map');
  });

  it('applies to server frames too', () => {
    expect(closeOf(() => decodeServerFrame(Uint8Array.from([0x82, 0xa1, 0x74])))).toBe(CloseCode.BAD_FRAME);
    expect(closeOf(() => decodeServerFrame(pack([1, 2])))).toBe(CloseCode.BAD_FRAME);
  });
});

describe('a map whose `t` is not a known frame type: UNKNOWN_FRAME', () => {
  const unknownT: Array<[string, Record<string, unknown>]> = [
    ['an unassigned number', { t: 99 }],
    ['zero', { t: 0 }],
    ['a number as a string', { t: String(FrameType.PING) }],
    ['no t at all', { ids: ['m1'] }],
  ];

  it.each(unknownT)('refuses %s', (_, map) => {
    expect(closeOf(() => decodeClientFrame(pack(map)))).toBe(CloseCode.UNKNOWN_FRAME);
    expect(closeOf(() => decodeServerFrame(pack(map)))).toBe(CloseCode.UNKNOWN_FRAME);
  });
});

describe('a known frame with a missing, ill-typed or oversized field: INVALID_FRAME', () => {
  const register = { t: FrameType.REGISTER, v: PROTOCOL_VERSION, app: 'app_1', platform: 'android' };
  const auth = { t: FrameType.AUTH, v: PROTOCOL_VERSION, app: 'app_1', device: 'dev-1', secret: 's', platform: 'web' };
  const without = (frame: Record<string, unknown>, field: string) =>
    Object.fromEntries(Object.entries(frame).filter(([name]) => name !== field));

  const invalidClient: Array<[string, Record<string, unknown>]> = [
    ['ack with 257 ids', { t: FrameType.ACK, ids: Array.from({ length: 257 }, (_, i) => `m${i}`) }],
    ['ack with no ids', { t: FrameType.ACK, ids: [] }],
    ['ack without ids', { t: FrameType.ACK }],
    ['ack with an empty id', { t: FrameType.ACK, ids: [''] }],
    ['ack with a 65-character id', { t: FrameType.ACK, ids: ['x'.repeat(65)] }],
    ['ack with a numeric id', { t: FrameType.ACK, ids: [42] }],
    ["register with platform 'symbian'", { ...register, platform: 'symbian' }],
    ['register without platform', without(register, 'platform')],
    ['register without app', without(register, 'app')],
    ['register with an empty app', { ...register, app: '' }],
    ['register without v', without(register, 'v')],
    ['register with a fractional v', { ...register, v: 1.5 }],
    ['register with v as a string', { ...register, v: '1' }],
    ['register with a 36-character locale', { ...register, locale: 'x'.repeat(36) }],
    ['register with a 65-character osVersion', { ...register, osVersion: 'x'.repeat(65) }],
    ['register with a 129-character secret', { ...register, secret: 'x'.repeat(129) }],
    ['auth without secret', without(auth, 'secret')],
    ['auth with an empty secret', { ...auth, secret: '' }],
    ['auth without device', without(auth, 'device')],
    ['auth with both a secret and a token', { ...auth, token: 'a.b.c' }],
    ['vendor token for an unknown vendor', { t: FrameType.VENDOR_TOKEN, vendor: 'nokia', token: 'x' }],
    ['tags over the limit', { t: FrameType.TAGS, add: Array.from({ length: 101 }, (_, i) => `t${i}`) }],
    ['an attribute value that is a number', { t: FrameType.ATTRIBUTES, set: { tier: 3 } }],
    ['track with an unknown event', { t: FrameType.TRACK, events: [{ id: 'm1', ev: 'liked' }] }],
    ['track with no events', { t: FrameType.TRACK, events: [] }],
  ];

  it.each(invalidClient)('refuses %s', (_, map) => {
    expect(closeOf(() => decodeClientFrame(pack(map)))).toBe(CloseCode.INVALID_FRAME);
  });

  const ready = { t: FrameType.READY, device: 'dev-1', time: 1_700_000_000_000, heartbeat: 30 };
  const message = { t: FrameType.MESSAGE, id: 'm1', type: 'notification', exp: 1_700_000_000_000 };

  const invalidServer: Array<[string, Record<string, unknown>]> = [
    ['ready with time as a string', { ...ready, time: '1700000000000' }],
    ['ready without heartbeat', without(ready, 'heartbeat')],
    ["message with type 'loud'", { ...message, type: 'loud' }],
    ['message without exp', without(message, 'exp')],
    ['message with a non-string extra', { ...message, extras: { count: 3 } }],
    ['message with a 65-character id', { ...message, id: 'x'.repeat(65) }],
  ];

  it.each(invalidServer)('refuses %s', (_, map) => {
    expect(closeOf(() => decodeServerFrame(pack(map)))).toBe(CloseCode.INVALID_FRAME);
  });

  it('says which frame type and field were wrong', () => {
    const error = protocolErrorOf(() =>
      decodeClientFrame(pack({ t: FrameType.ACK, ids: Array.from({ length: 257 }, (_, i) => `m${i}`) })),
    );
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('ProtocolError');
    expect(error.message).toMatch(/^frame type 3: \/ids /);
  });

  it('refuses U+0000 in any string or key of a device frame (PostgreSQL cannot store it)', () => {
    const register = { t: FrameType.REGISTER, v: PROTOCOL_VERSION, platform: 'android' };
    expect(closeOf(() => decodeClientFrame(pack({ ...register, app: 'app_\u0000' })))).toBe(CloseCode.INVALID_FRAME);
    expect(closeOf(() => decodeClientFrame(pack({ t: FrameType.TAGS, add: ['ok', 'n\u0000'] })))).toBe(CloseCode.INVALID_FRAME);
    expect(closeOf(() => decodeClientFrame(pack({ t: FrameType.ATTRIBUTES, set: { 'k\u0000': 'v' } })))).toBe(CloseCode.INVALID_FRAME);
    expect(decodeClientFrame(pack({ ...register, app: 'app_ok' }))).toMatchObject({ app: 'app_ok' });
  });
});
