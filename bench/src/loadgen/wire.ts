/**
 * Just enough of RFC 6455 for a load client: the upgrade request, masked client frames, and a reader
 * of the server's (unmasked, unfragmented) frames. A `ws` client per socket would cost several KB of
 * heap each; this keeps a held socket down to the net.Socket itself.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';

const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** A response head larger than this is not a WebSocket upgrade answer. */
export const MAX_RESPONSE_HEAD = 4096;

export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

export interface Upgrade {
  request: Buffer;
  /** The Sec-WebSocket-Accept the server must answer with. */
  accept: string;
}

/**
 * One request for all the sockets of a client: the key only proves that the server speaks WebSocket
 * (it guards against caching proxies, and there are none on loopback), so one is enough.
 */
export function upgradeRequest(host: string, port: number, path: string): Upgrade {
  const key = randomBytes(16).toString('base64');
  const request = Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    'latin1',
  );
  return { request, accept: createHash('sha1').update(key + ACCEPT_GUID).digest('base64') };
}

export type UpgradeResponse = { complete: false } | { complete: true; rest: Buffer };

/** Reads the answer to the upgrade; throws a WireError unless it is a 101 with the right accept. */
export function readUpgradeResponse(data: Buffer, accept: string): UpgradeResponse {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) {
    if (data.length > MAX_RESPONSE_HEAD) throw new WireError('response head too large');
    return { complete: false };
  }
  const lines = data.toString('latin1', 0, end).split('\r\n');
  const status = lines[0] ?? '';
  if (!status.startsWith('HTTP/1.1 101 ')) throw new WireError(`http ${status.split(' ')[1] ?? '?'}`);
  const acceptLine = lines.find((line) => line.toLowerCase().startsWith('sec-websocket-accept:'));
  if (acceptLine?.slice(acceptLine.indexOf(':') + 1).trim() !== accept) throw new WireError('wrong Sec-WebSocket-Accept');
  return { complete: true, rest: data.subarray(end + 4) };
}

/** A whole (FIN) client frame, masked as RFC 6455 requires of clients. */
export function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.byteLength;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  randomFillSync(frame, head, 4);
  for (let i = 0; i < length; i++) frame[head + 4 + i] = payload[i]! ^ frame[head + (i & 3)]!;
  return frame;
}

export interface WireFrame {
  opcode: number;
  payload: Buffer;
}

/** Splits the complete server frames off the front of `data`; `rest` is an incomplete frame, if any. */
export function readFrames(data: Buffer): { frames: WireFrame[]; rest: Buffer } {
  const frames: WireFrame[] = [];
  let at = 0;
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
    if (data.length < start + length) break;
    frames.push({ opcode: first & 0x0f, payload: data.subarray(start, start + length) });
    at = start + length;
  }
  return { frames, rest: data.subarray(at) };
}

/** The status code of a close frame's payload (1005: none given). */
export function closeCode(payload: Buffer): number {
  return payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
}
