/**
 * The device-facing WebSocket server: authenticates sockets, subscribes the node to their subjects,
 * forwards messages as they arrive and redelivers what is pending, and turns device reports into
 * tracking events. Nothing durable lives here: a killed gateway loses nothing.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import uWS from 'uWebSockets.js';
import {
  BroadcastDecodeError,
  CloseCode,
  AUTHENTICATED_HEADER,
  CONNECTION_HEADER,
  CONTROL_HEADER,
  DEVICE_REPLACED,
  DEVICE_REVOKED,
  issuedAfterRevocation,
  REVOKED_AT_HEADER,
  PRESENCE_QUERY,
  PROFILE_CHANGED,
  decodeBroadcast,
  decodeClientFrame,
  matches,
  type BroadcastEnvelope,
  encodeFrame,
  FrameType,
  groupBy,
  groupCommit,
  ProtocolError,
  type ApiKeyLookup,
  type ClientFrame,
  type CloseInfo,
  type Db,
  type Logger,
  type NatsConnection,
  type ServerFrame,
  type Subjects,
} from '@mps/shared';
import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { GatewayConfig } from './config.js';
import { DeviceStore, type Device } from './devices.js';
import { createFrameHandler } from './handlers.js';
import { Hub } from './hub.js';
import type { Metrics } from './metrics.js';
import { PushTypes } from './push-types.js';
import type { Session } from './session.js';
import { Tracker } from './tracking.js';

export interface GatewayDeps {
  config: GatewayConfig;
  db: Db;
  nc: NatsConnection;
  js: JetStreamClient;
  subjects: Subjects;
  keys: ApiKeyLookup;
  metrics: Metrics;
  log: Logger;
}

export type Socket = uWS.WebSocket<Session>;

const PATH = '/v1/device';
/** Devices whose inbox is read in one query when the node catches up after a NATS reconnect. */
const CATCH_UP_BATCH = 500;
/** Broadcasts a reconnecting device catches up on at most, per connection. */
const BROADCAST_CATCH_UP = 1000;
/** Message ids whose push type the node remembers for the events of their acks. */
const PUSH_TYPES_REMEMBERED = 100_000;

/** Connections whose catch-up queries are made together, at most. */
const CONNECT_GROUP = 256;

/** The step of a throttled broadcast's schedule. */
const SPREAD_SLOT_MS = 100;
/** Open files a gateway process keeps for what is not a device: PostgreSQL, NATS, logs, the admin port. */
const FILES_RESERVED = 200;

/** The process's soft limit on open files (Linux), which bounds the sockets it can hold. */
function openFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) && soft > 0 ? soft : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** The uWS topic of an app's unconditional broadcasts: uWS fans them out in C++. */
export const broadcastTopic = (app: string): string => `b:${app}`;

export interface Gateway {
  listen(): Promise<number>;
  /**
   * Stops accepting, tells devices to reconnect elsewhere within `windowMs`, then closes the rest;
   * resolves once the tracking events recorded meanwhile are published.
   */
  drain(windowMs: number): Promise<void>;
  /** Closes every socket at once; resolves once the tracking events held are published. */
  close(): Promise<void>;
  readonly connections: number;
  readonly accepting: boolean;
}

/** What the frame handlers need from the node. */
export interface Node {
  send(ws: Socket, frame: Uint8Array): void;
  sendFrame(ws: Socket, frame: ServerFrame): void;
  close(ws: Socket, info: CloseInfo, detail?: string): void;
  hub: Hub<Socket>;
  /** Sends what is pending in the inbox of these sockets' devices. */
  deliverPending(sockets: Socket[]): Promise<void>;
  /** Sends the broadcasts a device missed since its cursor that are for it. */
  catchUpBroadcasts(ws: Socket): Promise<void>;
  /** Closes the device's other connections, on this gateway or another (one connection per device). */
  replaceOthers(ws: Socket): void;
  pushTypes: PushTypes;
}

export function createGateway(deps: GatewayDeps): Gateway {
  const { config, log, metrics } = deps;
  const devices = new DeviceStore(deps.db);
  const tracker = new Tracker(deps.js, deps.subjects, log, { maxEvents: config.GATEWAY_TRACK_BATCH, maxDelayMs: config.GATEWAY_TRACK_FLUSH_MS });
  const sockets = new Set<Socket>();
  const maxConnections = config.GATEWAY_MAX_CONNECTIONS || openFileLimit() - FILES_RESERVED;
  const perIp = new Map<string, number>();
  let listenSocket: uWS.us_listen_socket | undefined;

  function send(ws: Socket, data: Uint8Array): void {
    if (ws.getUserData().state === 'closed') return;
    if (ws.getBufferedAmount() > config.GATEWAY_MAX_BUFFERED_BYTES) {
      // Unsent messages stay pending in the inbox and come back on the next connection.
      metrics.drops.inc();
      return close(ws, CloseCode.BACKPRESSURE);
    }
    ws.cork(() => ws.send(data, true));
    metrics.framesOut.inc();
    metrics.bytesOut.inc(data.byteLength);
  }

  function close(ws: Socket, info: CloseInfo, detail?: string): void {
    const session = ws.getUserData();
    if (session.state === 'closed') return;
    if (detail) log.debug({ ip: session.ip, code: info.code, detail }, 'closing device socket');
    metrics.closes.inc({ reason: info.reason });
    ws.end(info.code, info.reason);
  }

  /** Answers an upgrade with an HTTP error and a JSON body instead of a WebSocket, and counts it. */
  function refuseUpgrade(res: uWS.HttpResponse, status: string, code: string, message: string, retryAfterS?: number): void {
    metrics.closes.inc({ reason: code });
    res.writeStatus(status);
    if (retryAfterS !== undefined) res.writeHeader('retry-after', String(retryAfterS));
    res.writeHeader('content-type', 'application/json').end(JSON.stringify({ error: { code, message } }));
  }

  const pushTypes = new PushTypes(PUSH_TYPES_REMEMBERED);

  function isFor(ws: Socket, envelope: Pick<BroadcastEnvelope, 'audience' | 'condition'>): boolean {
    const { state, device } = ws.getUserData();
    if (state !== 'ready' || !device) return false;
    if (envelope.audience === 'bound' && device.userId === null) return false;
    if (envelope.audience === 'unbound' && device.userId !== null) return false;
    return envelope.condition === null || matches(envelope.condition, device);
  }

  function broadcast(subject: string, sockets: ReadonlySet<Socket>, data: Uint8Array): void {
    let envelope: BroadcastEnvelope;
    try {
      envelope = decodeBroadcast(data);
    } catch (error) {
      if (!(error instanceof BroadcastDecodeError)) throw error;
      return log.error({ err: error, subject }, 'malformed broadcast dropped');
    }
    pushTypes.rememberFrame(envelope.frame);
    if (envelope.spreadMs !== undefined) return spread(envelope, [...sockets].filter((ws) => isFor(ws, envelope)));
    if (envelope.audience === 'all' && envelope.condition === null) {
      // Every ready socket of the app is subscribed to the topic: one C++ fan-out.
      app.publish(broadcastTopic(subject.slice(broadcastPrefix.length)), envelope.frame, true);
      metrics.framesOut.inc(sockets.size);
      metrics.bytesOut.inc(sockets.size * envelope.frame.byteLength);
      return;
    }
    for (const ws of sockets) if (isFor(ws, envelope)) send(ws, envelope.frame);
  }

  /**
   * Throttled fan-out: each device gets a slot of the window by its id (the same on every gateway),
   * one timer per slot. A socket closed before its slot is skipped; its device catches up on reconnect.
   */
  function spread(envelope: BroadcastEnvelope, targets: Socket[]): void {
    const slots = Math.max(1, Math.floor((envelope.spreadMs ?? 0) / SPREAD_SLOT_MS));
    const bySlot = groupBy(targets, (ws) => Number.parseInt((ws.getUserData().device?.id ?? '').slice(-8), 16) % slots || 0);
    for (const [slot, group] of bySlot) {
      setTimeout(() => {
        for (const ws of group) if (ws.getUserData().state === 'ready') send(ws, envelope.frame);
      }, slot * SPREAD_SLOT_MS).unref();
    }
  }

  const broadcastPrefix = deps.subjects.broadcast('x').slice(0, -1);
  const hub = new Hub<Socket>(
    deps.nc,
    (subject, sockets, msg) => {
      if (subject.startsWith(broadcastPrefix)) return broadcast(subject, sockets, msg.data);
      const control = msg.headers?.get(CONTROL_HEADER);
      if (control === PROFILE_CHANGED) {
        for (const ws of sockets) frames.reloadProfile(ws);
        return;
      }
      if (control === PRESENCE_QUERY) {
        for (const ws of sockets) if (ws.getUserData().state === 'ready') return msg.respond();
        return;
      }
      if (control === DEVICE_REVOKED) {
        // A connection made with a connect token issued after the revocation is vouched for anew.
        const revokedAt = Number(msg.headers?.get(REVOKED_AT_HEADER));
        for (const ws of sockets) if (!issuedAfterRevocation(ws.getUserData().tokenIssuedAt, revokedAt)) close(ws, CloseCode.REVOKED);
        return;
      }
      if (control === DEVICE_REPLACED) {
        // A replaced-message can arrive after an even newer connection joined: close only older ones.
        const newest = msg.headers?.get(CONNECTION_HEADER) ?? '';
        const at = Number(msg.headers?.get(AUTHENTICATED_HEADER));
        for (const ws of sockets) {
          const { connection, authenticatedAt } = ws.getUserData();
          if (authenticatedAt < at || (authenticatedAt === at && connection < newest)) close(ws, CloseCode.REPLACED);
        }
        return;
      }
      pushTypes.rememberFrame(msg.data);
      for (const ws of sockets) if (ws.getUserData().state === 'ready') send(ws, msg.data);
    },
    (subject, error) => log.error({ err: error, subject }, 'subscription failed'),
  );

  async function deliverPending(targets: Socket[]): Promise<void> {
    // A device can be here twice (a connection and the one replacing it, in one group): each of
    // its sockets still ready gets what is pending.
    const byDevice = groupBy(
      targets.filter((ws) => ws.getUserData().device),
      (ws) => (ws.getUserData().device as Device).id,
    );
    if (byDevice.size === 0) return;
    // Interest first, inbox second: a message published in between arrives twice at worst (the SDK
    // drops the duplicate), never zero times.
    await hub.flush();
    const known = new Map([...byDevice].map(([id, group]) => [id, group[0]?.getUserData().device as Device]));
    const sendTo = (device: string, frame: Uint8Array) => {
      for (const ws of byDevice.get(device) ?? []) if (ws.getUserData().state === 'ready') send(ws, frame);
    };
    const ids = [...byDevice.keys()];
    for (const row of await devices.settleInboxes(ids, config.GATEWAY_INBOX_CAP)) {
      tracker.record(row.status, known.get(row.device_id) as Device, row.message_id, row.push_type);
    }
    // What a device missed comes before what it gets: the app can resync, then show the rest.
    for (const [device, gap] of await devices.gaps(ids)) sendTo(device, encodeFrame({ t: FrameType.GAP, ...gap }));
    for (const { device, frame, id, pushType } of await devices.pendingFrames(ids, config.GATEWAY_INBOX_CAP)) {
      pushTypes.remember(id, pushType);
      sendTo(device, frame);
    }
  }

  async function catchUpBroadcasts(targets: Socket[]): Promise<void> {
    const ready = targets.filter((ws) => ws.getUserData().device);
    if (ready.length === 0) return;
    const missed = await devices.broadcastsAfter(
      ready.map((ws) => ws.getUserData().device as Device),
      BROADCAST_CATCH_UP,
    );
    for (const ws of ready) {
      const device = ws.getUserData().device as Device;
      for (const stored of missed.get(device.id) ?? []) {
        pushTypes.rememberFrame(stored.frame);
        // Seen within the period: judged by the device's previous connection, not this one.
        const seen = stored.seenAfter === undefined || device.seenBefore >= stored.seenAfter;
        if (seen && isFor(ws, stored)) send(ws, stored.frame);
      }
    }
  }

  // Devices connecting together share their catch-up: one NATS flush and one inbox query for the
  // group, one broadcast query, instead of one of each per connection.
  const together = (work: (sockets: Socket[]) => Promise<void>) =>
    groupCommit(
      async (groups: Socket[][]) => {
        await work(groups.flat());
        return groups.map(() => true);
      },
      { maxItems: CONNECT_GROUP, concurrency: 2 },
    );
  const pendingTogether = together(deliverPending);
  const broadcastsTogether = together(catchUpBroadcasts);

  const node: Node = {
    send,
    sendFrame: (ws, frame) => send(ws, encodeFrame(frame)),
    close,
    hub,
    deliverPending: async (targets) => {
      await pendingTogether(targets);
    },
    catchUpBroadcasts: async (ws) => {
      await broadcastsTogether([ws]);
    },
    pushTypes,
    replaceOthers: (ws) => {
      const { device, connection, authenticatedAt } = ws.getUserData();
      if (!device) return;
      const h = natsHeaders();
      h.set(CONTROL_HEADER, DEVICE_REPLACED);
      h.set(CONNECTION_HEADER, connection);
      h.set(AUTHENTICATED_HEADER, String(authenticatedAt));
      deps.nc.publish(deps.subjects.device(device.app, device.id), new Uint8Array(0), { headers: h });
    },
  };
  const frames = createFrameHandler({ db: deps.db, node, devices, tracker, keys: deps.keys, subjects: deps.subjects, config, log, metrics });

  /** After NATS reconnects, messages published while the node was away are in the inboxes: resend them. */
  async function catchUp(): Promise<void> {
    const ready = [...sockets].filter((ws) => ws.getUserData().state === 'ready');
    for (let i = 0; i < ready.length; i += CATCH_UP_BATCH) {
      await deliverPending(ready.slice(i, i + CATCH_UP_BATCH));
    }
  }
  void (async () => {
    for await (const status of deps.nc.status()) {
      if (status.type === 'slowConsumer' || status.type === 'disconnect' || status.type === 'reconnect') {
        metrics.natsEvents.inc({ type: status.type });
        log.warn({ status: status.type }, 'NATS connection event');
      }
      if (status.type === 'reconnect') {
        catchUp().catch((error: unknown) => log.error({ err: error }, 'catch-up after NATS reconnect failed'));
      }
    }
  })();

  const app = uWS.App().ws<Session>(PATH, {
    // uWS drops a socket whose frame exceeds this without a reason; up to it, we close with one.
    maxPayloadLength: config.GATEWAY_MAX_FRAME_BYTES * 4,
    idleTimeout: config.GATEWAY_IDLE_TIMEOUT_S,
    sendPingsAutomatically: true,
    maxBackpressure: config.GATEWAY_MAX_BUFFERED_BYTES,
    upgrade: (res, req, context) => {
      // Refused before a socket exists, the cheapest place to say no. A full process refuses before
      // it runs out of file descriptors: the device's next attempt (with backoff) reaches another
      // process sharing the port, or this one once it has room.
      if (sockets.size >= maxConnections) {
        return refuseUpgrade(res, '503 Service Unavailable', 'process_full', 'this gateway process is full: connect again', 1);
      }
      const ip = Buffer.from(res.getRemoteAddressAsText()).toString();
      if ((perIp.get(ip) ?? 0) >= config.GATEWAY_MAX_CONNECTIONS_PER_IP) {
        return refuseUpgrade(res, '429 Too Many Requests', CloseCode.TOO_MANY_CONNECTIONS.reason, 'too many connections from this address');
      }
      const session: Session = {
        ip,
        connection: randomBytes(9).toString('base64url'),
        authenticatedAt: 0,
        state: 'new',
        authTimer: undefined,
        device: undefined,
        subjects: [],
        tokens: config.GATEWAY_MAX_FRAMES_PER_S * 2,
        refilledAt: Date.now(),
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
      perIp.set(session.ip, (perIp.get(session.ip) ?? 0) + 1);
      metrics.connections.set(sockets.size);
      // After an event-loop stall the timer can run before the poll phase reads an AUTH frame that
      // already arrived: judged after that phase (setImmediate), not before it.
      session.authTimer = setTimeout(
        () => setImmediate(() => session.state === 'new' && close(ws, CloseCode.AUTH_TIMEOUT)),
        config.GATEWAY_AUTH_TIMEOUT_MS,
      );
    },
    message: (ws, data, isBinary) => {
      metrics.bytesIn.inc(data.byteLength);
      if (!isBinary) return close(ws, CloseCode.BAD_FRAME, 'text frame');
      if (data.byteLength > config.GATEWAY_MAX_FRAME_BYTES) return close(ws, CloseCode.FRAME_TOO_LARGE);
      if (!takeToken(ws.getUserData(), config.GATEWAY_MAX_FRAMES_PER_S)) return close(ws, CloseCode.RATE_LIMITED);
      let frame: ClientFrame;
      try {
        frame = decodeClientFrame(new Uint8Array(data));
      } catch (error) {
        if (error instanceof ProtocolError) return close(ws, error.close, error.message);
        throw error;
      }
      metrics.framesIn.inc({ type: FRAME_NAMES[frame.t] });
      frames.handle(ws, frame);
    },
    close: (ws) => {
      sockets.delete(ws);
      const session = ws.getUserData();
      session.state = 'closed';
      clearTimeout(session.authTimer);
      clearTimeout(session.tokenTimer);
      const left = (perIp.get(session.ip) ?? 1) - 1;
      if (left === 0) perIp.delete(session.ip);
      else perIp.set(session.ip, left);
      for (const subject of session.subjects) hub.remove(subject, ws);
      metrics.connections.set(sockets.size);
      metrics.subjects.set(hub.subjectCount);
    },
  });

  function stopListening(): void {
    if (listenSocket) uWS.us_listen_socket_close(listenSocket);
    listenSocket = undefined;
  }

  return {
    get connections() {
      return sockets.size;
    },
    get accepting() {
      return listenSocket !== undefined;
    },
    listen: () =>
      new Promise((resolve, reject) => {
        app.listen(config.GATEWAY_HOST, config.GATEWAY_PORT, (socket) => {
          if (!socket) return reject(new Error(`gateway cannot listen on ${config.GATEWAY_HOST}:${config.GATEWAY_PORT}`));
          listenSocket = socket;
          resolve(uWS.us_socket_local_port(socket));
        });
      }),
    drain: async (windowMs) => {
      stopListening();
      for (const ws of sockets) {
        node.sendFrame(ws, { t: FrameType.RECONNECT, after: Math.floor(Math.random() * windowMs) });
      }
      const deadline = Date.now() + windowMs + 1000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      for (const ws of [...sockets]) close(ws, CloseCode.GOING_AWAY);
      await tracker.settle();
    },
    close: async () => {
      stopListening();
      for (const ws of [...sockets]) close(ws, CloseCode.GOING_AWAY);
      await tracker.settle();
    },
  };
}

const FRAME_NAMES = Object.fromEntries(Object.entries(FrameType).map(([name, t]) => [t, name.toLowerCase()])) as Record<number, string>;

/** Token bucket: `perSecond` frames a second, bursts of twice that. */
function takeToken(session: Session, perSecond: number): boolean {
  const now = Date.now();
  session.tokens = Math.min(perSecond * 2, session.tokens + ((now - session.refilledAt) / 1000) * perSecond);
  session.refilledAt = now;
  if (session.tokens < 1) return false;
  session.tokens -= 1;
  return true;
}
