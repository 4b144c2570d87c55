import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { clientFrame, closeCode, Opcode, readFrames, readUpgradeResponse, upgradeRequest } from './wire.js';

/** A server frame as a server sends it: unmasked. */
function serverFrame(opcode: number, payload: Buffer, fin = true): Buffer {
  const head =
    payload.length < 126
      ? Buffer.from([(fin ? 0x80 : 0) | opcode, payload.length])
      : Buffer.from([(fin ? 0x80 : 0) | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

function unmask(frame: Buffer): { opcode: number; payload: Buffer } {
  const short = frame[1]! & 0x7f;
  const head = short < 126 ? 2 : short === 126 ? 4 : 10;
  const length = short < 126 ? short : short === 126 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2));
  const mask = frame.subarray(head, head + 4);
  const payload = Buffer.from(frame.subarray(head + 4, head + 4 + length).map((byte, i) => byte ^ mask[i & 3]!));
  return { opcode: frame[0]! & 0x0f, payload };
}

describe('clientFrame', () => {
  it.each([0, 1, 125, 126, 65535, 65536])('masks a %d-byte payload behind the right length header', (length) => {
    const payload = Buffer.alloc(length, 7);
    const frame = clientFrame(Opcode.BINARY, payload);
    expect(frame[0]).toBe(0x82);
    expect(frame[1]! & 0x80).toBe(0x80);
    expect(unmask(frame)).toEqual({ opcode: Opcode.BINARY, payload });
  });
});

describe('readFrames', () => {
  it('splits whole frames and keeps an incomplete one', () => {
    const big = Buffer.alloc(300, 1);
    const data = Buffer.concat([serverFrame(Opcode.BINARY, Buffer.from('ab')), serverFrame(Opcode.PING, Buffer.alloc(0)), serverFrame(Opcode.BINARY, big)]);
    const { frames, rest } = readFrames(data.subarray(0, data.length - 10));
    expect(frames.map((f) => [f.opcode, f.payload.length])).toEqual([
      [Opcode.BINARY, 2],
      [Opcode.PING, 0],
    ]);
    expect(readFrames(Buffer.concat([rest, data.subarray(data.length - 10)])).frames[0]!.payload).toEqual(big);
  });

  it('refuses masked and fragmented server frames', () => {
    expect(() => readFrames(clientFrame(Opcode.BINARY, Buffer.from('x')))).toThrow('masked server frame');
    expect(() => readFrames(serverFrame(Opcode.BINARY, Buffer.from('x'), false))).toThrow('fragmented frame');
  });

  it('reads the status code of a close frame', () => {
    expect(closeCode(Buffer.from([0x0f, 0xa6, 0x61]))).toBe(4006);
    expect(closeCode(Buffer.alloc(0))).toBe(1005);
  });
});

describe('readUpgradeResponse', () => {
  const { accept } = upgradeRequest('127.0.0.1', 1, '/');
  const answer = (status: string, acceptValue = accept) =>
    Buffer.from(`HTTP/1.1 ${status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptValue}\r\n\r\n`);

  it('waits for the whole head, then hands over the bytes after it', () => {
    const head = answer('101 Switching Protocols');
    expect(readUpgradeResponse(head.subarray(0, 20), accept)).toEqual({ complete: false });
    const frame = serverFrame(Opcode.BINARY, Buffer.from('hi'));
    expect(readUpgradeResponse(Buffer.concat([head, frame]), accept)).toEqual({ complete: true, rest: frame });
  });

  it('refuses another status or a wrong accept', () => {
    expect(() => readUpgradeResponse(answer('429 Too Many Requests'), accept)).toThrow('http 429');
    expect(() => readUpgradeResponse(answer('101 Switching Protocols', 'nope'), accept)).toThrow('wrong Sec-WebSocket-Accept');
  });
});

describe('against another WebSocket implementation (ws)', () => {
  it('upgrades, and its masked frames arrive intact', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    server.on('connection', (ws) => ws.on('message', (data: Buffer) => ws.send(Buffer.concat([Buffer.from('echo:'), data]))));
    const socket = connect(port, '127.0.0.1');
    try {
      const upgrade = upgradeRequest('127.0.0.1', port, '/v1/device');
      socket.write(upgrade.request);
      let received: Buffer = Buffer.alloc(0);
      let upgraded = false;
      const reply = new Promise<Buffer>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          if (!upgraded) {
            const response = readUpgradeResponse(received, upgrade.accept);
            if (!response.complete) return;
            upgraded = true;
            received = response.rest;
            socket.write(clientFrame(Opcode.BINARY, Buffer.alloc(200, 9)));
          }
          const frame = readFrames(received).frames[0];
          if (frame) resolve(frame.payload);
        });
      });
      expect(await reply).toEqual(Buffer.concat([Buffer.from('echo:'), Buffer.alloc(200, 9)]));
    } finally {
      socket.destroy();
      server.close();
    }
  });
});
