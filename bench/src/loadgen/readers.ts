/**
 * Lean readers of what a held socket receives: they count messages without decoding them. One
 * reader per socket keeps at most an incomplete frame or line between chunks; everything else is a
 * walk over the chunk's headers. Control traffic (WebSocket pings, NATS PING, MQTT PINGRESP) is
 * answered or skipped here, so a held socket stays alive without any other listener.
 */
import { clientFrame, Opcode, WireError } from './wire.js';

/** Where a reader writes its answers to control frames. */
export interface Writable {
  write(data: Uint8Array): unknown;
}

export interface Reader {
  /** Reads a chunk and returns how many messages it completed. */
  feed(chunk: Buffer): number;
}

/** Called with the payload of each message, in `data` between `start` and `end`, when stamps are wanted. */
export type PayloadListener = (data: Buffer, start: number, end: number) => void;

/** What is left of `data` from `at`, copied so that a large chunk is not kept alive by a partial frame. */
function remainder(data: Buffer, at: number): Buffer | undefined {
  return at < data.length ? Buffer.from(data.subarray(at)) : undefined;
}

/**
 * WebSocket frames from a server (unmasked, unfragmented): each binary or text frame is a message.
 * `onPayload`, when given, sees each message's payload (the slow path, for stamps or an inner protocol).
 */
export class WsFrameReader implements Reader {
  private rest: Buffer | undefined;
  closeCode: number | undefined;

  constructor(
    private readonly socket: Writable,
    private readonly onPayload?: PayloadListener,
  ) {}

  feed(chunk: Buffer): number {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let at = 0;
    let messages = 0;
    while (data.length - at >= 2) {
      const first = data[at]!;
      const second = data[at + 1]!;
      if ((first & 0x80) === 0 || (first & 0x0f) === Opcode.CONTINUATION) throw new WireError('fragmented frame');
      if ((second & 0x80) !== 0) throw new WireError('masked server frame');
      let length = second & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (data.length - at < 4) break;
        length = data.readUInt16BE(at + 2);
        start = at + 4;
      } else if (length === 127) {
        if (data.length - at < 10) break;
        length = Number(data.readBigUInt64BE(at + 2));
        start = at + 10;
      }
      const end = start + length;
      if (end > data.length) break;
      const opcode = first & 0x0f;
      if (opcode === Opcode.BINARY || opcode === Opcode.TEXT) {
        messages++;
        this.onPayload?.(data, start, end);
      } else if (opcode === Opcode.PING) {
        this.socket.write(clientFrame(Opcode.PONG, data.subarray(start, end)));
      } else if (opcode === Opcode.CLOSE) {
        this.closeCode = length >= 2 ? data.readUInt16BE(start) : 1005;
      }
      at = end;
    }
    this.rest = remainder(data, at);
    return messages;
  }
}

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const PONG_LINE = Buffer.from('PONG\r\n');

/**
 * The NATS client protocol as a byte stream (the payload of a NATS WebSocket's frames): each MSG is a
 * message; its payload is skipped, not read. A server PING is answered through `pong`.
 */
export class NatsProtocolReader {
  private rest: Buffer | undefined;
  /** Payload bytes (and their CRLF) of the current MSG still to skip. */
  private skip = 0;
  errors = 0;

  constructor(private readonly pong: (line: Buffer) => void) {}

  /** Reads bytes [start, end) of `chunk`; returns the MSGs completed. */
  feed(chunk: Buffer, start = 0, end = chunk.length): number {
    let data = chunk;
    let at = start;
    let stop = end;
    if (this.rest) {
      data = Buffer.concat([this.rest, chunk.subarray(start, end)]);
      at = 0;
      stop = data.length;
      this.rest = undefined;
    }
    let messages = 0;
    while (at < stop) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, stop - at);
        this.skip -= n;
        at += n;
        continue;
      }
      const eol = data.indexOf(LF, at);
      if (eol < 0 || eol >= stop) break;
      const lineEnd = eol > at && data[eol - 1] === CR ? eol - 1 : eol;
      const c0 = data[at];
      if (c0 === 0x4d /* M */ && data[at + 1] === 0x53 && data[at + 2] === 0x47 && data[at + 3] === SPACE) {
        // MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field.
        let size = 0;
        let i = lineEnd - 1;
        let scale = 1;
        while (i > at && data[i]! >= 0x30 && data[i]! <= 0x39) {
          size += (data[i]! - 0x30) * scale;
          scale *= 10;
          i--;
        }
        this.skip = size + 2;
        messages++;
      } else if (c0 === 0x50 /* P */ && data[at + 1] === 0x49 /* I */) {
        this.pong(PONG_LINE);
      } else if (c0 === 0x2d /* - */) {
        this.errors++;
      }
      at = eol + 1;
    }
    if (at < stop) this.rest = Buffer.from(data.subarray(at, stop));
    return messages;
  }
}

/** A NATS subscriber over WebSocket: NATS protocol inside the server's binary frames. */
export class NatsWsReader implements Reader {
  private readonly frames: WsFrameReader;
  private readonly nats: NatsProtocolReader;
  private completed = 0;

  constructor(socket: Writable) {
    this.nats = new NatsProtocolReader((line) => socket.write(clientFrame(Opcode.BINARY, line)));
    this.frames = new WsFrameReader(socket, (data, start, end) => {
      this.completed += this.nats.feed(data, start, end);
    });
  }

  feed(chunk: Buffer): number {
    this.completed = 0;
    this.frames.feed(chunk);
    return this.completed;
  }
}

export const MqttPacket = { CONNECT: 1, CONNACK: 2, PUBLISH: 3, SUBSCRIBE: 8, SUBACK: 9, PINGRESP: 13 } as const;

/** MQTT packets from a broker: each PUBLISH is a message. */
export class MqttReader implements Reader {
  private rest: Buffer | undefined;

  feed(chunk: Buffer): number {
    const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let at = 0;
    let messages = 0;
    for (;;) {
      const packet = mqttPacketAt(data, at);
      if (!packet) break;
      if (packet.type === MqttPacket.PUBLISH) messages++;
      at = packet.end;
    }
    this.rest = remainder(data, at);
    return messages;
  }
}

/** The MQTT packet starting at `at`, or undefined while it is incomplete. */
export function mqttPacketAt(data: Buffer, at: number): { type: number; start: number; end: number } | undefined {
  if (data.length - at < 2) return undefined;
  let length = 0;
  let multiplier = 1;
  let i = at + 1;
  for (;;) {
    if (i >= data.length) return undefined;
    const byte = data[i++]!;
    length += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) break;
    multiplier *= 128;
    if (multiplier > 128 ** 3) throw new WireError('malformed MQTT remaining length');
  }
  if (data.length < i + length) return undefined;
  return { type: data[at]! >> 4, start: i, end: i + length };
}
