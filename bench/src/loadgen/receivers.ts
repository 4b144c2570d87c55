/**
 * Opens and holds receiving sockets for the fan-out benches, on our gateway or on a peer server, and
 * counts what they receive without decoding it (readers.ts). Connecting works as in DeviceSockets:
 * spread source addresses, at most `maxInFlight` handshakes at once, retries with backoff.
 */
import { connect, type Socket } from 'node:net';
import { ProtocolError } from '@mps/shared/protocol';
import { sourceAddress } from './device-sockets.js';
import { createReader, handshakeFactory, type Handshake } from './protocols.js';
import type { PayloadListener, Reader } from './readers.js';
import { newReceiverStatus, type ReceiverConfig, type ReceiverStatus } from './receiver-messages.js';
import { readStamp, wallClockMs } from './stamp.js';
import { WireError } from './wire.js';

export class Receivers {
  readonly status: ReceiverStatus = newReceiverStatus();
  private readonly handshake: (index: number) => Handshake;
  private target = 0;
  private next = 0;
  private readonly dueRetries: Array<{ index: number; attempt: number }> = [];
  private waitingRetries = 0;
  /** Flat pairs (sequence, latency ms) not reported yet. */
  private stamps: number[] = [];
  private readonly onPayload: PayloadListener | undefined;
  private readonly readBuffer = Buffer.allocUnsafe(256 * 1024);

  constructor(
    private readonly config: ReceiverConfig,
    private readonly onSettled: (status: ReceiverStatus) => void,
  ) {
    this.handshake = handshakeFactory(config);
    this.onPayload = config.stamps
      ? (data, start, end) => {
          const stamp = readStamp(data, start, end);
          if (stamp) this.stamps.push(stamp.seq, wallClockMs() - stamp.intendedMs);
        }
      : undefined;
  }

  setTarget(connections: number): void {
    this.target = Math.min(Math.max(connections, this.target), this.config.devices);
    this.pump();
  }

  stop(): void {
    this.status.stopped = true;
    this.status.failed += this.dueRetries.length;
    this.dueRetries.length = 0;
    this.pump();
  }

  /** Stamps received since the last call. */
  takeStamps(): number[] {
    const taken = this.stamps;
    this.stamps = [];
    return taken;
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
    const { config } = this;
    const device = config.firstDevice + index;
    const handshake = this.handshake(device);
    this.status.inFlight++;
    // Every read lands in one buffer of the process and goes straight to this socket's handler:
    // no Buffer per chunk, no 'data' event. Handlers copy what they keep.
    let handle: (chunk: Buffer) => void = () => undefined;
    const socket = connect({
      host: config.host,
      port: config.port,
      localAddress: sourceAddress(device, config.socketsPerAddress),
      onread: { buffer: this.readBuffer, callback: (bytes, buffer) => (handle(buffer.subarray(0, bytes) as Buffer), true) },
    });
    socket.setNoDelay(true);
    let settled = false;
    const settle = () => {
      settled = true;
      clearTimeout(timer);
      handle = () => undefined;
      socket.off('connect', onConnect).off('close', onClose).off('error', onError);
      socket.on('error', (error: NodeJS.ErrnoException) => this.count(`error ${error.code ?? error.message}`));
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
    const ready = (rest: Buffer) => {
      settle();
      this.status.held++;
      this.status.handshakes++;
      handle = this.hold(socket, createReader(config.protocol, socket, this.onPayload));
      if (rest.length > 0) handle(rest);
      this.pump();
    };
    const onConnect = () => socket.write(handshake.hello);
    handle = (chunk: Buffer) => {
      try {
        const rest = handshake.data(Buffer.from(chunk), socket);
        if (rest) ready(rest);
      } catch (error) {
        if (error instanceof WireError || error instanceof ProtocolError) return fail(error.message);
        throw error;
      }
    };
    const onClose = () => fail('closed before ready');
    const onError = (error: NodeJS.ErrnoException) => fail(error.code ?? error.message);
    const timer = setTimeout(() => fail('handshake timeout'), config.handshakeTimeoutMs);
    socket.on('connect', onConnect).on('close', onClose).on('error', onError);
  }

  /** Counts what a ready socket receives; returns its chunk handler. */
  private hold(socket: Socket, reader: Reader): (chunk: Buffer) => void {
    const status = this.status;
    socket.on('close', () => {
      status.held--;
      status.dropped++;
    });
    return (chunk) => {
      let messages: number;
      try {
        messages = reader.feed(chunk);
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        this.count(error.message);
        socket.destroy();
        return;
      }
      if (messages > 0) {
        status.messages += messages;
        status.lastMessageAt = wallClockMs();
      }
    };
  }
}
