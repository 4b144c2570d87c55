/**
 * The device-facing WebSocket server: authenticates sockets, subscribes the node to their subjects,
 * forwards messages as they arrive and redelivers what is pending, and turns acks into events.
 */
import uWS from 'uWebSockets.js';
import {
  CloseCode,
  decodeClientFrame,
  encodeFrame,
  FrameType,
  PROTOCOL_VERSION,
  ProtocolError,
  type AuthFrame,
  type ClientFrame,
  type CloseInfo,
  type Db,
  type Logger,
  type NatsConnection,
  type RegisterFrame,
  type Subjects,
} from '@mps/shared';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { GatewayConfig } from './config.js';
import { DeviceStore, type AuthResult, type Device } from './devices.js';
import { Hub } from './hub.js';
import { Tracker } from './tracking.js';

export interface GatewayDeps {
  config: GatewayConfig;
  db: Db;
  nc: NatsConnection;
  js: JetStreamClient;
  subjects: Subjects;
  log: Logger;
}

/** Per-socket state, kept in uWS user data. */
interface Session {
  readonly ip: string;
  state: 'new' | 'authenticating' | 'ready' | 'closed';
  authTimer: NodeJS.Timeout | undefined;
  device: Device | undefined;
  /** The subjects this socket added interest in, to remove on close. */
  subjects: string[];
}

type Socket = uWS.WebSocket<Session>;

const PENDING_BATCH = 1000;
const PATH = '/v1/device';

export interface Gateway {
  listen(): Promise<number>;
  close(): Promise<void>;
  readonly connections: number;
}

export function createGateway(deps: GatewayDeps): Gateway {
  const { config, log, subjects } = deps;
  const devices = new DeviceStore(deps.db);
  const tracker = new Tracker(deps.js, subjects, log);
  const sockets = new Set<Socket>();
  let listenSocket: uWS.us_listen_socket | undefined;

  const send = (ws: Socket, data: Uint8Array): void => {
    const session = ws.getUserData();
    if (session.state !== 'ready') return;
    if (ws.getBufferedAmount() > config.GATEWAY_MAX_BUFFERED_BYTES) {
      // Whatever was unsent stays pending in the inbox and comes back on the next connection.
      return close(ws, CloseCode.BACKPRESSURE);
    }
    ws.cork(() => ws.send(data, true));
  };

  const hub = new Hub<Socket>(deps.nc, send, (subject, error) =>
    log.error({ err: error, subject }, 'subscription failed'),
  );

  function close(ws: Socket, info: CloseInfo, detail?: string): void {
    const session = ws.getUserData();
    if (session.state === 'closed') return;
    if (detail) log.debug({ ip: session.ip, code: info.code, detail }, 'closing device socket');
    ws.end(info.code, info.reason);
  }

  async function authenticate(ws: Socket, frame: RegisterFrame | AuthFrame): Promise<void> {
    const session = ws.getUserData();
    let result: AuthResult;
    try {
      result =
        frame.t === FrameType.REGISTER ? await devices.register(frame) : await devices.authenticate(frame, frame.device, frame.secret);
    } catch (error) {
      log.error({ err: error }, 'device authentication failed on the database');
      return close(ws, CloseCode.INTERNAL);
    }
    if (session.state === 'closed') return;
    if ('failure' in result) return close(ws, CloseCode.AUTH_FAILED, result.failure);

    const { device } = result;
    session.device = device;
    session.state = 'ready';
    session.subjects = [subjects.device(device.app, device.id)];
    if (device.userId !== null) session.subjects.push(subjects.user(device.app, device.userId));
    for (const subject of session.subjects) hub.add(subject, ws);
    send(
      ws,
      encodeFrame({
        t: FrameType.READY,
        device: device.id,
        ...(result.secret !== undefined && { secret: result.secret }),
        time: Date.now(),
        heartbeat: Math.floor(config.GATEWAY_IDLE_TIMEOUT_S / 2),
      }),
    );
    // Subscribed before reading the inbox: a message published meanwhile arrives twice at worst
    // (the SDK drops the duplicate), never zero times.
    try {
      await hub.flush();
      const pending = await devices.pendingFrames(device.id, PENDING_BATCH);
      if (session.state !== 'ready') return;
      ws.cork(() => {
        for (const frame of pending) ws.send(frame, true);
      });
    } catch (error) {
      log.error({ err: error, device: device.id }, 'pending messages not loaded');
      close(ws, CloseCode.INTERNAL);
    }
  }

  function handleFrame(ws: Socket, frame: ClientFrame): void {
    const session = ws.getUserData();
    if (session.state === 'new') {
      if (frame.t !== FrameType.AUTH && frame.t !== FrameType.REGISTER) return close(ws, CloseCode.NOT_AUTHENTICATED);
      if (frame.v !== PROTOCOL_VERSION) return close(ws, CloseCode.UNSUPPORTED_VERSION);
      clearTimeout(session.authTimer);
      session.state = 'authenticating';
      void authenticate(ws, frame);
      return;
    }
    if (session.state !== 'ready' || !session.device) return close(ws, CloseCode.NOT_AUTHENTICATED);
    switch (frame.t) {
      case FrameType.ACK:
        for (const id of frame.ids) tracker.record('delivered', session.device, id);
        return;
      case FrameType.PING:
        return send(ws, encodeFrame({ t: FrameType.PONG }));
      case FrameType.AUTH:
      case FrameType.REGISTER:
        return close(ws, CloseCode.INVALID_FRAME, 'already authenticated');
    }
  }

  const app = uWS.App().ws<Session>(PATH, {
    // uWS drops a socket whose frame exceeds this without a reason; up to it, we close with one.
    maxPayloadLength: config.GATEWAY_MAX_FRAME_BYTES * 4,
    idleTimeout: config.GATEWAY_IDLE_TIMEOUT_S,
    sendPingsAutomatically: true,
    maxBackpressure: config.GATEWAY_MAX_BUFFERED_BYTES,
    upgrade: (res, req, context) => {
      const session: Session = {
        ip: Buffer.from(res.getRemoteAddressAsText()).toString(),
        state: 'new',
        authTimer: undefined,
        device: undefined,
        subjects: [],
      };
      res.upgrade(
        session,
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },
    open: (ws) => {
      sockets.add(ws);
      const session = ws.getUserData();
      session.authTimer = setTimeout(() => close(ws, CloseCode.AUTH_TIMEOUT), config.GATEWAY_AUTH_TIMEOUT_MS);
    },
    message: (ws, data, isBinary) => {
      if (!isBinary) return close(ws, CloseCode.BAD_FRAME, 'text frame');
      if (data.byteLength > config.GATEWAY_MAX_FRAME_BYTES) return close(ws, CloseCode.FRAME_TOO_LARGE);
      let frame: ClientFrame;
      try {
        frame = decodeClientFrame(new Uint8Array(data));
      } catch (error) {
        if (error instanceof ProtocolError) return close(ws, error.close, error.message);
        throw error;
      }
      handleFrame(ws, frame);
    },
    close: (ws) => {
      sockets.delete(ws);
      const session = ws.getUserData();
      session.state = 'closed';
      clearTimeout(session.authTimer);
      for (const subject of session.subjects) hub.remove(subject, ws);
    },
  });

  return {
    get connections() {
      return sockets.size;
    },
    listen: () =>
      new Promise((resolve, reject) => {
        app.listen(config.GATEWAY_HOST, config.GATEWAY_PORT, (socket) => {
          if (!socket) return reject(new Error(`gateway cannot listen on ${config.GATEWAY_HOST}:${config.GATEWAY_PORT}`));
          listenSocket = socket;
          resolve(uWS.us_socket_local_port(socket));
        });
      }),
    close: async () => {
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      for (const ws of [...sockets]) close(ws, CloseCode.GOING_AWAY);
    },
  };
}
