/**
 * The device SDK: connects to a gateway, registers or authenticates, shows each message once,
 * acks it after the app's handler resolves, and reconnects with backoff and jitter.
 * Runs in browsers (global WebSocket) and Node (pass the `ws` package as `WebSocket`).
 */
import {
  CloseCode,
  closeInfo,
  decodeServerFrame,
  encodeFrame,
  FrameType,
  PROTOCOL_VERSION,
  type ClientFrame,
  type Gap,
  type MessageFrame,
  type Platform,
  type ServerFrame,
  type TrackKind,
  type Vendor,
} from '@mps/shared/protocol';
import { RecentIds } from './dedup.js';
import { Emitter } from './emitter.js';
import { DeviceClientError } from './errors.js';

export const SDK_VERSION = '0.1.0';

export interface Credentials {
  device: string;
  secret: string;
}

/** Where the device keeps its id and secret between runs (localStorage, a file, the keychain...). */
export interface CredentialStore {
  load(): Promise<Credentials | undefined>;
  save(credentials: Credentials): Promise<void>;
}

export class MemoryCredentialStore implements CredentialStore {
  constructor(private credentials?: Credentials) {}
  async load() {
    return this.credentials;
  }
  async save(credentials: Credentials) {
    this.credentials = credentials;
  }
}

/** The subset of the WebSocket API the client uses; both the browser's and `ws` provide it. */
interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => SocketLike;

export interface DeviceClientOptions {
  /** e.g. ws://127.0.0.1:8081/v1/device */
  url: string;
  app: string;
  platform: Platform;
  osVersion?: string;
  appVersion?: string;
  locale?: string;
  timezone?: string;
  credentials?: CredentialStore;
  WebSocket?: WebSocketConstructor;
  /**
   * Authenticate with a connect token from your business server instead of the stored secret
   * (the device must have registered once). Called on every (re)connect.
   */
  connectToken?: (device: string) => Promise<string>;
  /** Called for each new message; the message is acked when it resolves. */
  onMessage?: (message: MessageFrame) => void | Promise<void>;
  /**
   * Called when messages meant for this device were lost to it (expired before it connected, or
   * dropped past its inbox's cap): resync with your business server. Acked when it resolves;
   * until then it is told again on every connection.
   */
  onGap?: (gap: Gap) => void | Promise<void>;
  /** How many recent message ids are remembered to drop duplicates. */
  dedupCapacity?: number;
  reconnect?: { initialMs?: number; maxMs?: number };
  /**
   * How long a connection may take from opening the socket to READY (default 15 s) before it is
   * dropped and tried again with backoff: a gateway that accepts and never answers (stalled, out of
   * file descriptors) must not hold the device for ever.
   */
  handshakeTimeoutMs?: number;
}

export type { Gap };

export type ConnectionState = 'idle' | 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface DeviceClientEvents extends Record<string, unknown> {
  state: ConnectionState;
  message: MessageFrame;
  /** A message was withdrawn by the business server: remove it if you showed it. */
  revoke: string;
  /** The device's user after a bind or unbind. */
  bound: string | null;
  /** Messages meant for this device that it will never get: resync with your business server. */
  gap: Gap;
  error: DeviceClientError;
}

const ACK_BATCH = 256;
/**
 * Acks wait this long to share a frame: a device catching up on a thousand pending messages sends
 * a few ACK frames, not one per message, and stays far inside the gateway's frame rate (20 a
 * second by default, docs/protocol.md section 14), which would otherwise close it (4008).
 */
const ACK_DELAY_MS = 100;
/** A connection that stayed up this long resets the reconnect backoff. */
const STABLE_MS = 5000;
const OPEN = 1;
const HANDSHAKE_TIMEOUT_MS = 15_000;

export class DeviceClient extends Emitter<DeviceClientEvents> {
  private socket: SocketLike | undefined;
  private stateValue: ConnectionState = 'idle';
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private lastReceived = 0;
  private pendingAcks: string[] = [];
  private ackTimer: ReturnType<typeof setTimeout> | undefined;
  private handling: Promise<void> = Promise.resolve();
  private readyAt = 0;
  private readonly seen: RecentIds;
  private readonly credentials: CredentialStore;
  private readonly WebSocketImpl: WebSocketConstructor;
  private deviceIdValue: string | undefined;

  constructor(private readonly options: DeviceClientOptions) {
    super();
    this.seen = new RecentIds(options.dedupCapacity ?? 10_000);
    this.credentials = options.credentials ?? new MemoryCredentialStore();
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!impl) throw new DeviceClientError('no_websocket', 'no WebSocket implementation: pass one as options.WebSocket');
    this.WebSocketImpl = impl;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  get deviceId(): string | undefined {
    return this.deviceIdValue;
  }

  /** Connects and resolves with the device id once the gateway has accepted the device. */
  connect(): Promise<string> {
    if (this.stateValue === 'closed') this.stateValue = 'idle';
    return new Promise((resolve, reject) => {
      const offState = this.on('state', (state) => {
        if (state === 'ready') {
          offState();
          offError();
          resolve(this.deviceIdValue as string);
        }
      });
      const offError = this.on('error', (error) => {
        if (error.code !== 'closed_by_server' || error.close?.retry) return;
        offState();
        offError();
        reject(error);
      });
      void this.open();
    });
  }

  /** Binds this device to the user named in `token` (a bind token from your business server). */
  bind(token: string): Promise<string> {
    return this.untilBound(() => this.request({ t: FrameType.BIND, token })).then((user) => user as string);
  }

  unbind(): Promise<void> {
    return this.untilBound(() => this.request({ t: FrameType.UNBIND })).then(() => undefined);
  }

  setVendorToken(vendor: Vendor, token: string): void {
    this.request({ t: FrameType.VENDOR_TOKEN, vendor, token });
  }

  setTags(change: { add?: string[]; remove?: string[] }): void {
    this.request({ t: FrameType.TAGS, ...change });
  }

  /** Sets attributes; a null value removes one. */
  setAttributes(set: Record<string, string | null>): void {
    this.request({ t: FrameType.ATTRIBUTES, set });
  }

  /** Reports what happened to a message: shown by the OS (arrived), opened, or dismissed (ignored). */
  track(messageId: string, event: TrackKind, at: number = Date.now()): void {
    this.request({ t: FrameType.TRACK, events: [{ id: messageId, ev: event, at }] });
  }

  private request(frame: ClientFrame): void {
    if (this.stateValue !== 'ready' || !this.send(frame)) {
      throw new DeviceClientError('not_connected', 'the device is not connected to a gateway');
    }
  }

  private untilBound(sendFrame: () => void): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const offBound = this.on('bound', (user) => {
        offBound();
        offError();
        resolve(user);
      });
      const offError = this.on('error', (error) => {
        // Only the connection closing ends the wait; a frame this SDK cannot read does not.
        if (error.code !== 'closed_by_server') return;
        offBound();
        offError();
        reject(error);
      });
      try {
        sendFrame();
      } catch (error) {
        offBound();
        offError();
        reject(error as Error);
      }
    });
  }

  close(): void {
    // What was shown is acked before leaving, rather than sent again on the next connection.
    this.flushAcks();
    this.setState('closed');
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.handshakeTimer);
    this.stopHeartbeat();
    this.socket?.close(1000, 'client closed');
    this.socket = undefined;
  }

  private setState(state: ConnectionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  private async open(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const saved = await this.credentials.load();
    const socket = new this.WebSocketImpl(this.options.url);
    socket.binaryType = 'arraybuffer';
    this.socket = socket;
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = setTimeout(() => {
      if (this.socket !== socket || this.stateValue === 'ready' || this.stateValue === 'closed') return;
      this.socket = undefined;
      socket.onclose = null;
      socket.close();
      this.emit('error', new DeviceClientError('handshake_timeout', 'the gateway did not accept the device in time: trying again'));
      this.scheduleReconnect();
    }, this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    socket.onopen = () => {
      const facts = {
        v: PROTOCOL_VERSION,
        app: this.options.app,
        platform: this.options.platform,
        sdkVersion: SDK_VERSION,
        ...(this.options.osVersion !== undefined && { osVersion: this.options.osVersion }),
        ...(this.options.appVersion !== undefined && { appVersion: this.options.appVersion }),
        ...(this.options.locale !== undefined && { locale: this.options.locale }),
        ...(this.options.timezone !== undefined && { timezone: this.options.timezone }),
      };
      void (async () => {
        if (!saved) return this.send({ t: FrameType.REGISTER, ...facts });
        if (!this.options.connectToken) return this.send({ t: FrameType.AUTH, ...facts, device: saved.device, secret: saved.secret });
        const token = await this.options.connectToken(saved.device);
        this.send({ t: FrameType.AUTH, ...facts, device: saved.device, token });
      })().catch((cause: unknown) => {
        this.emit('error', new DeviceClientError('protocol', 'could not get a connect token', undefined, { cause }));
        socket.close();
      });
    };
    socket.onmessage = (event) => {
      this.lastReceived = Date.now();
      let frame: ServerFrame;
      try {
        frame = decodeServerFrame(new Uint8Array(event.data as ArrayBuffer));
      } catch (cause) {
        this.emit('error', new DeviceClientError('protocol', 'the gateway sent a frame this SDK cannot read', undefined, { cause }));
        return;
      }
      void this.handle(frame);
    };
    socket.onerror = () => {
      // Followed by onclose, which decides what happens next.
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.stopHeartbeat();
      if (this.stateValue === 'closed') return;
      // Backoff starts over only after a connection that lasted: a gateway that accepts and then
      // closes at once must not be hammered.
      if (this.readyAt > 0 && Date.now() - this.readyAt >= STABLE_MS) this.attempt = 0;
      this.readyAt = 0;
      const info = closeInfo(event.code);
      if (info) {
        this.emit('error', new DeviceClientError('closed_by_server', `gateway closed the connection: ${info.reason}`, info));
        // An expired connect token is not final when the app can fetch a new one.
        const retry = info.retry || (info === CloseCode.TOKEN_EXPIRED && this.options.connectToken !== undefined);
        if (!retry) return this.setState('closed');
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const initial = this.options.reconnect?.initialMs ?? 500;
    const max = this.options.reconnect?.maxMs ?? 30_000;
    // Full jitter: a crowd of devices losing a gateway does not come back in lockstep.
    const delay = Math.random() * Math.min(max, initial * 2 ** this.attempt);
    this.attempt += 1;
    this.setState('reconnecting');
    this.reconnectTimer = setTimeout(() => void this.open(), delay);
  }

  private async handle(frame: ServerFrame): Promise<void> {
    switch (frame.t) {
      case FrameType.READY:
        clearTimeout(this.handshakeTimer);
        this.deviceIdValue = frame.device;
        if (frame.secret !== undefined) await this.credentials.save({ device: frame.device, secret: frame.secret });
        this.readyAt = Date.now();
        this.startHeartbeat(frame.heartbeat);
        this.setState('ready');
        return;
      case FrameType.MESSAGE:
        return this.receive(frame);
      case FrameType.PONG:
        return;
      case FrameType.BOUND:
        return this.emit('bound', frame.user);
      case FrameType.REVOKE:
        // Remembered as seen, so that a copy still in flight is not shown afterwards.
        this.seen.add(frame.id);
        return this.emit('revoke', frame.id);
      case FrameType.RECONNECT:
        return this.reconnectAfter(frame.after);
      case FrameType.GAP:
        this.handling = this.handling.then(() => this.tellGap({ expired: frame.expired, dropped: frame.dropped }));
        return this.handling;
    }
  }

  /** The gateway is draining: keep this connection until `after` ms, then move to another gateway. */
  private reconnectAfter(after: number): void {
    const socket = this.socket;
    setTimeout(() => {
      if (this.socket !== socket || !socket) return;
      this.flushAcks();
      this.socket = undefined;
      this.stopHeartbeat();
      socket.onclose = null;
      socket.close(1000, 'gateway asked to reconnect');
      this.attempt = 0;
      void this.open();
    }, after);
  }

  /** Messages are handled one at a time, in the order they arrive, so acks follow send order. */
  private receive(message: MessageFrame): Promise<void> {
    this.handling = this.handling.then(() => this.show(message));
    return this.handling;
  }

  private async show(message: MessageFrame): Promise<void> {
    if (this.seen.add(message.id) && message.exp > Date.now()) {
      try {
        this.emit('message', message);
        await this.options.onMessage?.(message);
      } catch (cause) {
        // Not acked and forgotten: the gateway resends it on the next connection and it is shown then.
        this.seen.delete(message.id);
        this.emit('error', new DeviceClientError('handler', `the message handler failed for ${message.id}`, undefined, { cause }));
        return;
      }
    }
    // Duplicates and expired messages are acked too, so the gateway stops resending them.
    this.ack(message.id);
  }

  private async tellGap(gap: Gap): Promise<void> {
    try {
      this.emit('gap', gap);
      await this.options.onGap?.(gap);
    } catch (cause) {
      this.emit('error', new DeviceClientError('handler', 'the gap handler failed', undefined, { cause }));
      return;
    }
    // Unsent, it is not lost: the gateway tells the gap again on the next connection.
    this.send({ t: FrameType.GAP_ACK, ...gap });
  }

  /**
   * Reports a message the app showed from a vendor notification (APNs, FCM, Huawei, Xiaomi carry
   * its id as `mps_id`): it counts as delivered through that vendor, and the socket's copy is
   * acked without being shown again. Returns false when the socket had already shown it.
   */
  shownByVendor(messageId: string, vendor: Vendor): boolean {
    const first = this.seen.add(messageId);
    // Unsent, it is not lost: the socket's copy arrives later, is recognised, and acked.
    this.send({ t: FrameType.ACK, ids: [messageId], ch: vendor });
    return first;
  }

  private ack(id: string): void {
    this.pendingAcks.push(id);
    if (this.pendingAcks.length >= ACK_BATCH) return this.flushAcks();
    this.ackTimer ??= setTimeout(() => this.flushAcks(), ACK_DELAY_MS);
  }

  private flushAcks(): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    while (this.pendingAcks.length > 0) {
      const ids = this.pendingAcks.splice(0, ACK_BATCH);
      // Unsent acks are not lost: the gateway resends the messages on the next connection.
      if (!this.send({ t: FrameType.ACK, ids })) this.pendingAcks.length = 0;
    }
  }

  private send(frame: ClientFrame): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(encodeFrame(frame));
    return true;
  }

  private startHeartbeat(seconds: number): void {
    this.stopHeartbeat();
    this.lastReceived = Date.now();
    const periodMs = Math.max(1, seconds) * 1000;
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastReceived > 2 * periodMs) {
        // Nothing heard for two periods: the connection is dead even if the OS has not noticed.
        const dead = this.socket;
        this.socket = undefined;
        this.stopHeartbeat();
        if (dead) {
          dead.onclose = null;
          dead.close();
        }
        this.scheduleReconnect();
        return;
      }
      this.send({ t: FrameType.PING });
    }, periodMs);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}
