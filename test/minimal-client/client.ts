/**
 * A minimal device client written from docs/protocol.md alone: plain TypeScript on the `ws`
 * WebSocket library and msgpackr, importing nothing of mps. It registers or authenticates, keeps the
 * connection alive, reconnects with backoff, hands each message to the app once, acks everything
 * and reports what the user did. Section numbers below are the document's.
 */
import { Packr } from 'msgpackr';
import WebSocket from 'ws';

/** Section 4. */
export const T = {
  REGISTER: 1,
  AUTH: 2,
  ACK: 3,
  PING: 4,
  BIND: 5,
  UNBIND: 6,
  TRACK: 10,
  READY: 64,
  MESSAGE: 65,
  PONG: 66,
  BOUND: 67,
  REVOKE: 68,
  RECONNECT: 69,
} as const;

const PROTOCOL_VERSION = 1;
const MAX_IDS_PER_FRAME = 256;
const TOKEN_EXPIRED = 4007;
/** Section 12: closes after which reconnecting with the same credentials cannot succeed. */
const NO_RETRY = new Set([4000, 4001, 4002, 4003, 4006, TOKEN_EXPIRED, 4010, 4012]);

export type Platform = 'android' | 'ios' | 'web' | 'harmony';
export type TrackEvent = 'arrived' | 'opened' | 'ignored';

export interface Ready {
  t: typeof T.READY;
  device: string;
  secret?: string;
  time: number;
  heartbeat: number;
}

export interface Message {
  t: typeof T.MESSAGE;
  id: string;
  type: 'notification' | 'silent';
  title?: string;
  body?: string;
  payload?: unknown;
  extras?: Record<string, string>;
  exp: number;
}

type GatewayFrame =
  | Ready
  | Message
  | { t: typeof T.PONG }
  | { t: typeof T.BOUND; user: string | null }
  | { t: typeof T.REVOKE; id: string }
  | { t: typeof T.RECONNECT; after: number };

/** Section 3: plain maps with string keys; 64-bit integers read as numbers. */
const msgpack = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export const encode = (frame: Record<string, unknown>): Uint8Array => msgpack.pack(frame);

const isInt = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);
const isStr = (value: unknown): value is string => typeof value === 'string';

/** A gateway frame, or undefined for anything this client does not know, which it ignores (section 16). */
export function decode(data: Uint8Array): GatewayFrame | undefined {
  let value: unknown;
  try {
    value = msgpack.unpack(data);
  } catch {
    return undefined; // Not msgpack: ignored like an unknown frame, the connection stays.
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const f = value as Record<string, unknown>;
  switch (f.t) {
    case T.READY:
      return isStr(f.device) && isInt(f.time) && isInt(f.heartbeat) && (f.secret === undefined || isStr(f.secret)) ? (f as unknown as Ready) : undefined;
    case T.MESSAGE:
      return isStr(f.id) && (f.type === 'notification' || f.type === 'silent') && isInt(f.exp) ? (f as unknown as Message) : undefined;
    case T.PONG:
      return { t: T.PONG };
    case T.BOUND:
      return isStr(f.user) || f.user === null ? { t: T.BOUND, user: f.user } : undefined;
    case T.REVOKE:
      return isStr(f.id) ? { t: T.REVOKE, id: f.id } : undefined;
    case T.RECONNECT:
      return isInt(f.after) && f.after >= 0 ? { t: T.RECONNECT, after: f.after } : undefined;
    default:
      return undefined;
  }
}

export class ClosedError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`the gateway closed the connection: ${code} ${reason}`);
    this.name = 'ClosedError';
  }
}

export interface Credentials {
  device: string;
  secret: string;
}

export interface MinimalClientOptions {
  /** ws://HOST:PORT/v1/device */
  url: string;
  app: string;
  platform: Platform;
  facts?: { osVersion?: string; appVersion?: string; sdkVersion?: string; locale?: string; timezone?: string };
  /** From an earlier READY; without them the client registers a new device. */
  credentials?: Credentials;
  /** Authenticate with a connect token from the business server instead of the secret (section 6.4). */
  connectToken?: (device: string) => Promise<string>;
  /** A new, unexpired message; it is acked once this resolves. */
  onMessage?: (message: Message) => void | Promise<void>;
  /** Section 13. */
  backoff?: { initialMs: number; maxMs: number };
}

interface Waiter<V> {
  resolve(value: V): void;
  reject(error: Error): void;
}

export class MinimalClient {
  /** Messages handed to the app, in arrival order. */
  readonly shown: Message[] = [];
  readonly revoked: string[] = [];
  /** Every close of a connection, as [code, reason]. */
  readonly closes: Array<[number, string]> = [];
  credentials: Credentials | undefined;
  private socket: WebSocket | undefined;
  private ready = false;
  private stopped = false;
  private attempt = 0;
  private readonly seen = new Set<string>();
  private acks: string[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastHeard = 0;
  private readyWaiter: Waiter<Ready> | undefined;
  private readonly boundWaiters: Array<Waiter<string | null>> = [];

  constructor(private readonly options: MinimalClientOptions) {
    this.credentials = options.credentials;
  }

  get deviceId(): string | undefined {
    return this.credentials?.device;
  }

  /** Resolves with the first READY; rejects if the gateway closes with a code that forbids retrying. */
  connect(): Promise<Ready> {
    this.stopped = false;
    return new Promise((resolve, reject) => {
      this.readyWaiter = { resolve, reject };
      this.open();
    });
  }

  /** Section 9.3: resolves with the user of the BOUND that answers it. */
  bind(token: string): Promise<string | null> {
    return this.untilBound({ t: T.BIND, token });
  }

  unbind(): Promise<string | null> {
    return this.untilBound({ t: T.UNBIND });
  }

  track(id: string, ev: TrackEvent, at = Date.now()): void {
    if (!this.send({ t: T.TRACK, events: [{ id, ev, at }] })) throw new Error('not connected');
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    this.lost(new ClosedError(1000, 'closed by the app'));
    this.socket?.close(1000);
    this.socket = undefined;
  }

  private open(): void {
    const socket = new WebSocket(this.options.url);
    socket.binaryType = 'nodebuffer';
    this.socket = socket;
    socket.on('open', () => {
      this.authenticate().catch((error: unknown) => {
        this.readyWaiter?.reject(error as Error);
        socket.close(1000);
      });
    });
    socket.on('message', (data: Buffer) => {
      if (socket === this.socket) this.receive(new Uint8Array(data));
    });
    socket.on('close', (code, reason) => this.closed(socket, code, reason.toString()));
    // A failed upgrade or a network error is followed by 'close', which decides what happens next.
    socket.on('error', () => undefined);
  }

  /** Sections 6.1 to 6.4: the first frame, and nothing else until READY. */
  private async authenticate(): Promise<void> {
    const who = { v: PROTOCOL_VERSION, app: this.options.app, platform: this.options.platform, ...this.options.facts };
    const saved = this.credentials;
    if (!saved) return void this.send({ t: T.REGISTER, ...who });
    if (!this.options.connectToken) return void this.send({ t: T.AUTH, ...who, device: saved.device, secret: saved.secret });
    const token = await this.options.connectToken(saved.device);
    this.send({ t: T.AUTH, ...who, device: saved.device, token });
  }

  private receive(data: Uint8Array): void {
    this.lastHeard = Date.now();
    const frame = decode(data);
    if (!frame) return;
    switch (frame.t) {
      case T.READY:
        if (frame.secret !== undefined) this.credentials = { device: frame.device, secret: frame.secret };
        this.ready = true;
        this.attempt = 0;
        this.startHeartbeat(frame.heartbeat);
        this.readyWaiter?.resolve(frame);
        this.readyWaiter = undefined;
        return;
      case T.MESSAGE:
        return this.deliver(frame);
      case T.PONG:
        return;
      case T.BOUND:
        return this.boundWaiters.shift()?.resolve(frame.user);
      case T.REVOKE:
        // Remembered as seen, so that a copy still in flight is not shown afterwards.
        this.seen.add(frame.id);
        this.revoked.push(frame.id);
        return;
      case T.RECONNECT:
        return this.reconnectAfter(frame.after);
    }
  }

  /** Section 10: shown once, never after `exp`, and acked in every case. */
  private deliver(message: Message): void {
    const isNew = !this.seen.has(message.id) && message.exp > Date.now();
    this.seen.add(message.id);
    if (!isNew) return this.ack(message.id);
    this.shown.push(message);
    Promise.resolve(this.options.onMessage?.(message)).then(
      () => this.ack(message.id),
      // Not acked, and forgotten, so that the copy the next connection brings is shown.
      () => this.seen.delete(message.id),
    );
  }

  private ack(id: string): void {
    this.acks.push(id);
    if (this.acks.length === 1) queueMicrotask(() => this.flushAcks());
  }

  private flushAcks(): void {
    while (this.acks.length > 0) {
      // Acks that cannot be sent are dropped: their messages come again on the next connection.
      if (!this.send({ t: T.ACK, ids: this.acks.splice(0, MAX_IDS_PER_FRAME) })) this.acks = [];
    }
  }

  private untilBound(frame: Record<string, unknown>): Promise<string | null> {
    return new Promise((resolve, reject) => {
      if (!this.ready || !this.send(frame)) return reject(new Error('not connected'));
      this.boundWaiters.push({ resolve, reject });
    });
  }

  /** Section 11: a PING every `heartbeat` seconds; two periods of silence mean a dead connection. */
  private startHeartbeat(seconds: number): void {
    clearInterval(this.heartbeat);
    const periodMs = seconds * 1000;
    this.lastHeard = Date.now();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastHeard < 2 * periodMs) return void this.send({ t: T.PING });
      const dead = this.socket;
      this.socket = undefined;
      this.lost(new ClosedError(1006, 'no answer for two heartbeats'));
      dead?.terminate();
      this.scheduleReconnect();
    }, periodMs);
  }

  /** Section 9.8: keep the connection for `after` ms, then move at once, without backoff. */
  private reconnectAfter(after: number): void {
    const socket = this.socket;
    setTimeout(() => {
      if (!socket || socket !== this.socket || this.stopped) return;
      this.socket = undefined;
      this.lost(new ClosedError(1000, 'the gateway asked to reconnect'));
      socket.close(1000);
      this.attempt = 0;
      this.open();
    }, after);
  }

  private closed(socket: WebSocket, code: number, reason: string): void {
    this.closes.push([code, reason]);
    if (socket !== this.socket) return;
    this.socket = undefined;
    const error = new ClosedError(code, reason);
    this.lost(error);
    if (this.stopped) return;
    // An expired connect token is replaced by a new one on the next attempt (section 12, 4007).
    const canRetry = !NO_RETRY.has(code) || (code === TOKEN_EXPIRED && this.options.connectToken !== undefined);
    if (canRetry) return this.scheduleReconnect();
    this.stopped = true;
    this.readyWaiter?.reject(error);
    this.readyWaiter = undefined;
  }

  /** The connection is gone: nothing waits on it any more. */
  private lost(error: ClosedError): void {
    this.ready = false;
    clearInterval(this.heartbeat);
    for (const waiter of this.boundWaiters.splice(0)) waiter.reject(error);
  }

  /** Section 13: exponential backoff with full jitter. */
  private scheduleReconnect(): void {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const delay = Math.random() * Math.min(maxMs, initialMs * 2 ** this.attempt);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private send(frame: Record<string, unknown>): boolean {
    if (this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(encode(frame));
    return true;
  }
}
