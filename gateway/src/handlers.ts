/** What the gateway does with each frame of an open socket. */
import {
  CloseCode,
  FrameType,
  PROTOCOL_VERSION,
  TokenAudience,
  TokenError,
  tokenKeyId,
  verifyDeviceToken,
  changeDeviceAttributes,
  undeclaredAttributes,
  changeDeviceTags,
  type ApiKeyLookup,
  type Db,
  type AuthFrame,
  type BindFrame,
  type ClientFrame,
  type Logger,
  type RegisterFrame,
  type Subjects,
  type VerifiedToken,
} from '@mps/shared';
import type { GatewayConfig } from './config.js';
import { intern, setProfiles, type AuthResult, type Device, type DeviceStore } from './devices.js';
import { broadcastTopic, type Node, type Socket } from './gateway.js';
import type { Metrics } from './metrics.js';
import type { Tracker } from './tracking.js';

export interface HandlerContext {
  db: Db;
  node: Node;
  devices: DeviceStore;
  tracker: Tracker;
  keys: ApiKeyLookup;
  subjects: Subjects;
  config: GatewayConfig;
  log: Logger;
  metrics: Metrics;
}

type TokenCheck = VerifiedToken | 'expired' | 'invalid';

/** The `exp` claim (seconds) of a token whose signature was already verified. */
function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
}

/** The longest user id, as the push API accepts it. */
const MAX_USER_ID = 128;

export function createFrameHandler(ctx: HandlerContext) {
  const { node, devices, tracker, subjects, log } = ctx;

  /** A device token must be signed by an active key of the device's own app. */
  async function checkToken(token: string, audience: TokenAudience, app: string): Promise<TokenCheck> {
    try {
      const key = await ctx.keys.find(tokenKeyId(token));
      if (!key || key.status !== 'active' || key.app !== app) return 'invalid';
      return await verifyDeviceToken(token, key, audience);
    } catch (error) {
      if (error instanceof TokenError) return error.reason;
      throw error;
    }
  }

  /**
   * A connect token vouches for the device until it expires, not for as long as the socket lasts:
   * the connection is closed with token_expired once the token's exp and the grace have passed, and
   * the device reconnects with a new token (the SDK does so when it has a token source).
   */
  function closeWhenExpired(ws: Socket, token: string): void {
    const exp = tokenExpiry(token);
    if (exp === undefined) return;
    const session = ws.getUserData();
    // setTimeout holds at most 2^31-1 ms (24.8 days); a longer token is checked again then.
    const delay = Math.min(exp * 1000 + ctx.config.GATEWAY_TOKEN_GRACE_MS - Date.now(), 2 ** 31 - 1);
    session.tokenTimer = setTimeout(() => {
      if (exp * 1000 + ctx.config.GATEWAY_TOKEN_GRACE_MS <= Date.now()) node.close(ws, CloseCode.TOKEN_EXPIRED, 'connect token expired mid-session');
      else closeWhenExpired(ws, token);
    }, Math.max(0, delay));
  }

  function setInterest(ws: Socket, device: Device): void {
    const session = ws.getUserData();
    const wanted = [subjects.device(device.app, device.id), intern(subjects.broadcast(device.app))];
    if (device.userId !== null) wanted.push(subjects.user(device.app, device.userId));
    for (const subject of session.subjects) if (!wanted.includes(subject)) node.hub.remove(subject, ws);
    for (const subject of wanted) if (!session.subjects.includes(subject)) node.hub.add(subject, ws);
    session.subjects = wanted;
    ctx.metrics.subjects.set(node.hub.subjectCount);
  }

  async function authenticate(ws: Socket, frame: RegisterFrame | AuthFrame): Promise<void> {
    const session = ws.getUserData();
    let result: AuthResult;
    if (frame.t === FrameType.REGISTER) {
      result = await devices.register(frame);
    } else if (frame.secret !== undefined) {
      result = await devices.authenticate(frame, frame.device, frame.secret);
    } else {
      const check = await checkToken(frame.token as string, TokenAudience.CONNECT, frame.app);
      if (check === 'expired') return node.close(ws, CloseCode.TOKEN_EXPIRED);
      if (check === 'invalid' || check.subject !== frame.device) return node.close(ws, CloseCode.AUTH_FAILED, 'connect token');
      session.tokenIssuedAt = check.issuedAt;
      result = await devices.authenticate(frame, frame.device, null);
    }
    if (session.state === 'closed') return;
    if ('failure' in result) return node.close(ws, CloseCode.AUTH_FAILED, result.failure);

    const { device } = result;
    if (frame.t === FrameType.AUTH && frame.token !== undefined) closeWhenExpired(ws, frame.token);
    session.device = device;
    session.state = 'ready';
    session.authenticatedAt = Date.now();
    setInterest(ws, device);
    node.replaceOthers(ws);
    ws.subscribe(broadcastTopic(device.app));
    node.sendFrame(ws, {
      t: FrameType.READY,
      device: device.id,
      ...(result.secret !== undefined && { secret: result.secret }),
      time: Date.now(),
      heartbeat: Math.floor(ctx.config.GATEWAY_IDLE_TIMEOUT_S / 2),
    });
    await devices.adoptUserMessages(device);
    await node.deliverPending([ws]);
    await node.catchUpBroadcasts(ws);
  }

  async function bind(ws: Socket, device: Device, frame: BindFrame): Promise<void> {
    const check = await checkToken(frame.token, TokenAudience.BIND, device.app);
    if (check === 'expired' || check === 'invalid') return node.close(ws, CloseCode.BIND_REJECTED, `bind token ${check}`);
    if (check.device !== undefined && check.device !== device.id) {
      return node.close(ws, CloseCode.BIND_REJECTED, 'bind token is for another device');
    }
    if (check.subject === '' || check.subject.length > MAX_USER_ID) {
      return node.close(ws, CloseCode.BIND_REJECTED, `a user id is 1-${MAX_USER_ID} characters`);
    }
    await devices.bind(device, check.subject);
    device.userId = check.subject;
    await devices.reloadProfiles(device);
    setInterest(ws, device);
    node.sendFrame(ws, { t: FrameType.BOUND, user: device.userId });
    await devices.adoptUserMessages(device);
    await node.deliverPending([ws]);
  }

  async function unbind(ws: Socket, device: Device): Promise<void> {
    await devices.bind(device, null);
    device.userId = null;
    await devices.reloadProfiles(device);
    setInterest(ws, device);
    node.sendFrame(ws, { t: FrameType.BOUND, user: null });
  }

  /** Runs a socket's async work in frame order, closing the socket (not the node) if it fails. */
  function serially(ws: Socket, work: () => Promise<void>): void {
    const session = ws.getUserData();
    session.work = (session.work ?? Promise.resolve())
      .then(() => (ws.getUserData().state === 'closed' ? undefined : work()))
      .catch((error: unknown) => {
        log.error({ err: error, device: session.device?.id }, 'device frame failed');
        node.close(ws, CloseCode.INTERNAL);
      });
  }

  const handle = (ws: Socket, frame: ClientFrame): void => {
    const session = ws.getUserData();
    if (session.state === 'new') {
      if (frame.t !== FrameType.AUTH && frame.t !== FrameType.REGISTER) return node.close(ws, CloseCode.NOT_AUTHENTICATED);
      if (frame.v !== PROTOCOL_VERSION) return node.close(ws, CloseCode.UNSUPPORTED_VERSION);
      clearTimeout(session.authTimer);
      session.authTimer = undefined;
      session.state = 'authenticating';
      return serially(ws, () => authenticate(ws, frame));
    }
    const device = session.device;
    if (session.state !== 'ready' || !device) return node.close(ws, CloseCode.NOT_AUTHENTICATED);
    switch (frame.t) {
      case FrameType.ACK:
        ctx.metrics.acks.inc(frame.ids.length);
        for (const id of frame.ids) tracker.record('delivered', device, id, node.pushTypes.of(id), Date.now(), frame.ch ?? 'socket');
        return;
      case FrameType.TRACK:
        for (const event of frame.events) tracker.record(event.ev, device, event.id, node.pushTypes.of(event.id), event.at);
        return;
      case FrameType.GAP_ACK:
        // Taken off even if the socket closes meanwhile: the device was told.
        devices.gapTold(device, frame).catch((error: unknown) => log.error({ err: error, device: device.id }, 'gap ack not stored'));
        return;
      case FrameType.PING:
        return node.sendFrame(ws, { t: FrameType.PONG });
      case FrameType.BIND:
        return serially(ws, () => bind(ws, device, frame));
      case FrameType.UNBIND:
        return serially(ws, () => unbind(ws, device));
      case FrameType.VENDOR_TOKEN:
        return serially(ws, () => devices.setVendorToken(device, frame.vendor, frame.token));
      case FrameType.TAGS:
        if (!device.tagsWritable) return node.close(ws, CloseCode.FORBIDDEN, 'the app does not let devices set tags');
        return serially(ws, async () => {
          const own = await changeDeviceTags(ctx.db, device.id, frame.add ?? [], frame.remove ?? []);
          if (!own) return node.close(ws, CloseCode.INVALID_FRAME, 'too many tags');
          setProfiles(device, own, device.user);
        });
      case FrameType.ATTRIBUTES:
        if (!device.tagsWritable) return node.close(ws, CloseCode.FORBIDDEN, 'the app does not let devices set attributes');
        return serially(ws, async () => {
          if ((await undeclaredAttributes(ctx.db, device.app, frame.set)).length > 0) {
            return node.close(ws, CloseCode.INVALID_FRAME, 'an attribute the app has not declared');
          }
          const own = await changeDeviceAttributes(ctx.db, device.id, frame.set);
          if (!own) return node.close(ws, CloseCode.INVALID_FRAME, 'too many attributes');
          setProfiles(device, own, device.user);
        });
      case FrameType.AUTH:
      case FrameType.REGISTER:
        return node.close(ws, CloseCode.INVALID_FRAME, 'already authenticated');
    }
  };

  /** The business server changed this device's or its user's tags or attributes. */
  const reloadProfile = (ws: Socket): void => {
    const device = ws.getUserData().device;
    if (device) serially(ws, () => devices.reloadProfiles(device));
  };

  return { handle, reloadProfile };
}
