import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CloseCode,
  decodeServerFrame,
  encodeFrame,
  encodeMessage,
  FrameType,
  PROTOCOL_VERSION,
  newId,
  MasterKey,
  type ReadyFrame,
} from '@mps/shared';
import { KeyStore } from '@mps/control-plane';
import { createTestDatabase, createTestNats, type TestDatabase, type TestNats } from '../../test/support/services.js';
import { RawSocket, startTestGateway, type TestGateway } from '../../test/support/gateway.js';

const pack = (value: unknown) => new Packr({ useRecords: false }).pack(value);

describe('gateway device protocol', () => {
  let database: TestDatabase;
  let nats: TestNats;
  let gw: TestGateway;
  let app: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
    const masterKey = MasterKey.fromBase64(MasterKey.generate());
    gw = await startTestGateway(database.db, nats, masterKey, { GATEWAY_AUTH_TIMEOUT_MS: '300', GATEWAY_MAX_FRAME_BYTES: '2048' });
    app = (await new KeyStore(database.db, masterKey, 0).createApp('gw')).app;
  });

  afterAll(async () => {
    await gw?.close();
    await nats?.cleanup();
    await database?.drop();
  });

  const register = () => encodeFrame({ t: FrameType.REGISTER, v: PROTOCOL_VERSION, app, platform: 'ios', appVersion: '1.0' });

  async function registered(): Promise<{ socket: RawSocket; ready: ReadyFrame }> {
    const socket = new RawSocket(gw.url);
    await socket.send(register());
    const ready = decodeServerFrame(await socket.frame()) as ReadyFrame;
    return { socket, ready };
  }

  it('registers a new device, stores it and returns its id and secret once', async () => {
    const { socket, ready } = await registered();
    expect(ready.t).toBe(FrameType.READY);
    expect(ready.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await database.db.query('SELECT app_id, platform, app_version FROM devices WHERE id = $1', [ready.device]);
    expect(row.rows).toEqual([{ app_id: app, platform: 'ios', app_version: '1.0' }]);
    socket.close();
  });

  it('authenticates a known device with its secret, and re-registering keeps its id', async () => {
    const { socket, ready } = await registered();
    socket.close();
    const auth = new RawSocket(gw.url);
    await auth.send(
      encodeFrame({ t: FrameType.AUTH, v: PROTOCOL_VERSION, app, device: ready.device, secret: ready.secret as string, platform: 'ios', appVersion: '1.1' }),
    );
    const again = decodeServerFrame(await auth.frame()) as ReadyFrame;
    expect(again).toMatchObject({ t: FrameType.READY, device: ready.device });
    expect(again.secret).toBeUndefined();
    auth.close();

    const reregister = new RawSocket(gw.url);
    await reregister.send(
      encodeFrame({ t: FrameType.REGISTER, v: PROTOCOL_VERSION, app, device: ready.device, secret: ready.secret as string, platform: 'ios', appVersion: '1.2' }),
    );
    expect(decodeServerFrame(await reregister.frame())).toMatchObject({ device: ready.device });
    const row = await database.db.query('SELECT app_version FROM devices WHERE id = $1', [ready.device]);
    expect(row.rows[0]).toEqual({ app_version: '1.2' });
    reregister.close();
  });

  it('answers each of several devices authenticating at once by its own secret, one device twice included', async () => {
    const devices = await Promise.all(Array.from({ length: 4 }, () => registered()));
    for (const { socket } of devices) socket.close();
    const auth = (device: string, secret: string, appVersion: string) =>
      encodeFrame({ t: FrameType.AUTH, v: PROTOCOL_VERSION, app, device, secret, platform: 'ios', appVersion });
    const [a, b, c, d] = devices.map((x) => x.ready) as ReadyFrame[];
    const attempts = [
      [auth(a!.device, a!.secret as string, '2.0'), 'ready'],
      [auth(b!.device, c!.secret as string, '2.0'), 'refused'],
      [auth(c!.device, c!.secret as string, '2.0'), 'ready'],
      [auth(d!.device, d!.secret as string, '2.1'), 'ready'],
      [auth(d!.device, d!.secret as string, '2.2'), 'ready'],
      [auth(newId(), a!.secret as string, '2.0'), 'refused'],
    ] as const;
    const sockets = attempts.map(() => new RawSocket(gw.url));
    await Promise.all(sockets.map((socket, i) => socket.send(attempts[i]![0])));
    const outcomes = await Promise.all(
      sockets.map(async (socket) => {
        const first = await Promise.race([socket.frame().then((f) => decodeServerFrame(f)), socket.closed]);
        return 't' in first && first.t === FrameType.READY ? 'ready' : (first as { reason: string }).reason;
      }),
    );
    const expected = attempts.map(([, outcome]) => (outcome === 'ready' ? 'ready' : CloseCode.AUTH_FAILED.reason));
    // The same device twice: both authenticate, and the later connection may replace the earlier one.
    expect([...outcomes.slice(0, 3), outcomes[5]]).toEqual([...expected.slice(0, 3), expected[5]]);
    expect(outcomes.slice(3, 5).every((o) => o === 'ready' || o === CloseCode.REPLACED.reason)).toBe(true);
    expect(outcomes.slice(3, 5)).toContain('ready');
    const rows = await database.db.query<{ id: string; app_version: string }>('SELECT id, app_version FROM devices WHERE id = ANY($1::uuid[])', [
      [a!.device, b!.device, d!.device],
    ]);
    const versions = new Map(rows.rows.map((r) => [r.id, r.app_version]));
    expect(versions.get(a!.device)).toBe('2.0');
    expect(versions.get(b!.device)).toBe('1.0');
    expect(['2.1', '2.2']).toContain(versions.get(d!.device));
    for (const socket of sockets) socket.close();
  });

  it('answers a ping with a pong', async () => {
    const { socket } = await registered();
    await socket.send(encodeFrame({ t: FrameType.PING }));
    expect(decodeServerFrame(await socket.frame(2))).toEqual({ t: FrameType.PONG });
    socket.close();
  });

  it('sends what is pending in the inbox when the device connects, in send order, skipping expired and revoked, after a GAP telling the expired one', async () => {
    const { socket, ready } = await registered();
    socket.close();
    await socket.closed;
    const ids = [newId(), newId(), newId(), newId()];
    const future = new Date(Date.now() + 60_000);
    const past = new Date(Date.now() - 1000);
    for (const [i, id] of ids.entries()) {
      await database.db.query(
        `INSERT INTO messages (id, app_id, mode, push_type, target, content, expires_at, revoked_at)
         VALUES ($1, $2, 'simple', 'notification', '{}', $3, $4, $5)`,
        [id, app, { title: `m${i}` }, i === 1 ? past : future, i === 2 ? new Date() : null],
      );
      await database.db.query('INSERT INTO inbox (device_id, message_id, expires_at) VALUES ($1, $2, $3)', [
        ready.device,
        id,
        i === 1 ? past : future,
      ]);
    }
    const back = new RawSocket(gw.url);
    await back.send(
      encodeFrame({ t: FrameType.AUTH, v: PROTOCOL_VERSION, app, device: ready.device, secret: ready.secret as string, platform: 'ios' }),
    );
    await back.frame(4);
    const received = back.frames.slice(1).map((f) => decodeServerFrame(f));
    expect(received).toEqual([
      { t: FrameType.GAP, expired: 1, dropped: 0 },
      encodeAndDecode(ids[0] as string, 'm0', future),
      encodeAndDecode(ids[3] as string, 'm3', future),
    ]);
    back.close();
  });

  function encodeAndDecode(id: string, title: string, expiresAt: Date) {
    return decodeServerFrame(encodeMessage({ id, pushType: 'notification', content: { title }, expiresAt }));
  }

  describe('closes a misbehaving socket with a reason code', () => {
    const cases: [string, () => Promise<Uint8Array | string>, { code: number; reason: string }][] = [
      ['bytes that are not msgpack', async () => new Uint8Array([0xc1, 0xff]), CloseCode.BAD_FRAME],
      ['a text frame', async () => 'hello', CloseCode.BAD_FRAME],
      ['an unknown frame type', async () => pack({ t: 99 }), CloseCode.UNKNOWN_FRAME],
      ['a frame that breaks its schema', async () => pack({ t: FrameType.REGISTER, v: 1, app, platform: 'symbian' }), CloseCode.INVALID_FRAME],
      ['a frame before auth', async () => encodeFrame({ t: FrameType.ACK, ids: ['x'] }), CloseCode.NOT_AUTHENTICATED],
      ['an unsupported protocol version', async () => pack({ t: FrameType.REGISTER, v: 99, app, platform: 'ios' }), CloseCode.UNSUPPORTED_VERSION],
      ['an oversize frame', async () => pack({ t: FrameType.PING, pad: 'x'.repeat(4000) }), CloseCode.FRAME_TOO_LARGE],
      ['a register for an unknown app', async () => pack({ t: FrameType.REGISTER, v: 1, app: 'app_nope', platform: 'ios' }), CloseCode.AUTH_FAILED],
      [
        'an auth with a wrong secret',
        async () => {
          const { socket, ready } = await registered();
          socket.close();
          return encodeFrame({ t: FrameType.AUTH, v: 1, app, device: ready.device, secret: 'wrong', platform: 'ios' });
        },
        CloseCode.AUTH_FAILED,
      ],
      [
        'an auth for a device of another app',
        async () => {
          const { socket, ready } = await registered();
          socket.close();
          return encodeFrame({ t: FrameType.AUTH, v: 1, app: 'app_other', device: ready.device, secret: ready.secret as string, platform: 'ios' });
        },
        CloseCode.AUTH_FAILED,
      ],
    ];
    for (const [what, frame, expected] of cases) {
      it(what, async () => {
        const bytes = await frame();
        const socket = new RawSocket(gw.url);
        await socket.send(bytes);
        expect(await socket.closed).toEqual({ code: expected.code, reason: expected.reason });
        expect(socket.frames).toEqual([]);
      });
    }

    it('a second auth on an authenticated socket', async () => {
      const { socket } = await registered();
      await socket.send(register());
      expect(await socket.closed).toEqual({ code: CloseCode.INVALID_FRAME.code, reason: CloseCode.INVALID_FRAME.reason });
    });

    it('a socket that never authenticates', async () => {
      const silent = new RawSocket(gw.url);
      expect(await silent.closed).toEqual({ code: CloseCode.AUTH_TIMEOUT.code, reason: CloseCode.AUTH_TIMEOUT.reason });
    });
  });
});

describe('gateway connection limits', () => {
  let database: TestDatabase;
  let nats: TestNats;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
  });

  afterAll(async () => {
    for (const gw of gateways) await gw.close();
    await nats?.cleanup();
    await database?.drop();
  });

  async function gateway(env: Record<string, string>): Promise<TestGateway> {
    const gw = await startTestGateway(database.db, nats, MasterKey.fromBase64(MasterKey.generate()), env);
    gateways.push(gw);
    return gw;
  }

  /** Opens a WebSocket: 'open', or the HTTP status and Retry-After the upgrade was refused with. */
  function upgrade(url: string): Promise<{ ws: WebSocket; refused?: undefined } | { refused: { status: number; retryAfter: string | undefined } }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve({ ws }));
      ws.once('unexpected-response', (_req, res) => resolve({ refused: { status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] } }));
      ws.once('error', (error) => (error.message.startsWith('Unexpected server response') ? undefined : reject(error)));
    });
  }

  it('refuses an upgrade past GATEWAY_MAX_CONNECTIONS with 503 and Retry-After, and takes one again when there is room', async () => {
    const gw = await gateway({ GATEWAY_MAX_CONNECTIONS: '2' });
    const first = await upgrade(gw.url);
    const second = await upgrade(gw.url);
    expect(await upgrade(gw.url)).toEqual({ refused: { status: 503, retryAfter: '1' } });
    if (!('ws' in first) || !('ws' in second)) throw new Error('the first two were refused');
    first.ws.close();
    await new Promise((r) => first.ws.once('close', r));
    const again = await upgrade(gw.url);
    expect('ws' in again).toBe(true);
    for (const open of [second, again]) if ('ws' in open) open.ws.close();
  });

  it('refuses an upgrade past GATEWAY_MAX_CONNECTIONS_PER_IP with 429', async () => {
    const gw = await gateway({ GATEWAY_MAX_CONNECTIONS_PER_IP: '1' });
    const first = await upgrade(gw.url);
    expect(await upgrade(gw.url)).toEqual({ refused: { status: 429, retryAfter: undefined } });
    if ('ws' in first) first.ws.close();
  });
});
