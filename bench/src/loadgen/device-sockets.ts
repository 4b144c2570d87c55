/**
 * Opens and holds the sockets of a range of bench devices: TCP connect from a spread source address,
 * WebSocket upgrade, one AUTH frame, then wait for READY. At most `maxInFlight` handshakes run at once;
 * a failed one is retried with backoff up to `maxAttempts`. A held socket keeps no state of its own
 * beyond the net.Socket: its listeners are shared by all held sockets.
 */
import { connect, type Socket } from 'node:net';
import { decodeServerFrame, encodeFrame, FrameType, PROTOCOL_VERSION, ProtocolError } from '@mps/shared/protocol';
import { deviceId, deviceSecret } from './identity.js';
import { newClientStatus, type ClientConfig, type ClientStatus } from './messages.js';
import {
  clientFrame,
  closeCode,
  Opcode,
  readFrames,
  readUpgradeResponse,
  upgradeRequest,
  WireError,
  type Upgrade,
  type WireFrame,
} from './wire.js';

const EMPTY = Buffer.alloc(0);

/** 127.a.b.c for this device: a new address every `perAddress` devices, never 127.0.x.x, .0 or .255. */
export function sourceAddress(device: number, perAddress: number): string {
  const n = Math.floor(device / perAddress);
  return `127.${1 + Math.floor(n / (254 * 254))}.${(Math.floor(n / 254) % 254) + 1}.${(n % 254) + 1}`;
}

export class DeviceSockets {
  readonly status: ClientStatus = newClientStatus();
  private readonly upgrade: Upgrade;
  private target = 0;
  /** The next device (relative to firstDevice) not tried yet. */
  private next = 0;
  private readonly dueRetries: Array<{ index: number; attempt: number }> = [];
  private waitingRetries = 0;
  /** Incomplete frames of held sockets (rare: server frames are tiny). */
  private readonly partial = new WeakMap<Socket, Buffer>();
  private readonly onHeldData: (this: Socket, chunk: Buffer) => void;
  private readonly onHeldClose: (this: Socket) => void;
  private readonly onLateError: (this: Socket, error: NodeJS.ErrnoException) => void;

  constructor(
    private readonly config: ClientConfig,
    private readonly onSettled: (status: ClientStatus) => void,
  ) {
    this.upgrade = upgradeRequest(config.host, config.port, config.path);
    // One listener of each kind for every held socket: the emitter calls it with `this` = the socket.
    const self = this;
    this.onHeldData = function (chunk) {
      self.heldData(this, chunk);
    };
    this.onHeldClose = function () {
      self.status.held--;
      self.status.dropped++;
      self.partial.delete(this);
    };
    this.onLateError = (error) => self.count(`error ${error.code ?? error.message}`);
  }

  /** Holds the first `connections` devices of the range (cumulative; never lowered). */
  setTarget(connections: number): void {
    this.target = Math.min(Math.max(connections, this.target), this.config.devices);
    this.pump();
  }

  /** Opens no more sockets; the ones in flight finish. */
  stop(): void {
    this.status.stopped = true;
    this.status.failed += this.dueRetries.length;
    this.dueRetries.length = 0;
    this.pump();
  }

  private pump(): void {
    while (!this.status.stopped && this.status.inFlight < this.config.maxInFlight) {
      const retry = this.dueRetries.shift();
      if (retry) this.open(retry.index, retry.attempt);
      else if (this.next < this.target) this.open(this.next++, 1);
      else break;
    }
    const idle = this.status.inFlight === 0 && this.waitingRetries === 0 && this.dueRetries.length === 0;
    if (idle && this.status.reached !== this.next) {
      this.status.reached = this.next;
      this.onSettled(this.status);
    }
  }

  private count(reason: string): void {
    this.status.reasons[reason] = (this.status.reasons[reason] ?? 0) + 1;
  }

  private open(index: number, attempt: number): void {
    const { config, upgrade } = this;
    const device = config.firstDevice + index;
    this.status.inFlight++;
    const socket = connect({ host: config.host, port: config.port, localAddress: sourceAddress(device, config.socketsPerAddress) });
    let received: Buffer = EMPTY;
    let upgraded = false;
    let settled = false;

    const settle = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('connect', onConnect).off('data', onData).off('close', onClose).off('error', onError);
      socket.on('error', this.onLateError);
      this.status.inFlight--;
    };
    const fail = (reason: string) => {
      if (settled) return;
      settle();
      socket.destroy();
      this.count(reason);
      if (attempt < config.maxAttempts && !this.status.stopped) {
        this.status.retries++;
        this.waitingRetries++;
        setTimeout(() => {
          this.waitingRetries--;
          if (this.status.stopped) this.status.failed++;
          else this.dueRetries.push({ index, attempt: attempt + 1 });
          this.pump();
        }, 250 * attempt * (1 + Math.random()));
      } else {
        this.status.failed++;
      }
      this.pump();
    };
    const ready = (after: WireFrame[]) => {
      settle();
      this.status.held++;
      this.status.handshakes++;
      socket.on('data', this.onHeldData).on('close', this.onHeldClose);
      this.heldFrames(socket, after);
      if (received.length > 0) this.partial.set(socket, received);
      this.pump();
    };
    const onConnect = () => socket.write(upgrade.request);
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      try {
        if (!upgraded) {
          const response = readUpgradeResponse(received, upgrade.accept);
          if (!response.complete) return;
          upgraded = true;
          received = response.rest;
          const auth = encodeFrame({
            t: FrameType.AUTH,
            v: PROTOCOL_VERSION,
            app: config.app,
            device: deviceId(config.seed, device),
            secret: deviceSecret(config.seed, device),
            platform: 'android',
            sdkVersion: 'bench',
          });
          socket.write(clientFrame(Opcode.BINARY, auth));
        }
        const { frames, rest } = readFrames(received);
        received = rest;
        for (const [i, frame] of frames.entries()) {
          if (frame.opcode === Opcode.PING) socket.write(clientFrame(Opcode.PONG, frame.payload));
          else if (frame.opcode === Opcode.CLOSE) return fail(`close ${closeCode(frame.payload)} before ready`);
          else if (frame.opcode !== Opcode.BINARY) return fail(`opcode ${frame.opcode} before ready`);
          else if (decodeServerFrame(frame.payload).t === FrameType.READY) return ready(frames.slice(i + 1));
          else return fail('a frame other than READY first');
        }
      } catch (error) {
        if (error instanceof WireError || error instanceof ProtocolError) return fail(error.message);
        throw error;
      }
    };
    const onClose = () => fail(upgraded ? 'closed before ready' : 'closed before upgrade');
    const onError = (error: NodeJS.ErrnoException) => fail(error.code ?? error.message);
    const timer = setTimeout(() => fail('handshake timeout'), config.handshakeTimeoutMs);
    socket.on('connect', onConnect).on('data', onData).on('close', onClose).on('error', onError);
  }

  private heldData(socket: Socket, chunk: Buffer): void {
    const before = this.partial.get(socket);
    try {
      const { frames, rest } = readFrames(before ? Buffer.concat([before, chunk]) : chunk);
      if (rest.length > 0) this.partial.set(socket, rest);
      else if (before) this.partial.delete(socket);
      this.heldFrames(socket, frames);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      this.count(error.message);
      socket.destroy();
    }
  }

  private heldFrames(socket: Socket, frames: WireFrame[]): void {
    for (const frame of frames) {
      if (frame.opcode === Opcode.PING) socket.write(clientFrame(Opcode.PONG, frame.payload));
      else if (frame.opcode === Opcode.CLOSE) this.count(`close ${closeCode(frame.payload)} after ready`);
      else if (frame.opcode !== Opcode.PONG) this.status.messages++;
    }
  }
}
