import { describe, expect, it } from 'vitest';
import { mqttConnect, mqttPublish, mqttSubscribe } from './mqtt.js';
import { MqttPacket, mqttPacketAt, MqttReader, NatsProtocolReader, NatsWsReader, WsFrameReader } from './readers.js';
import { readStamp, stampText } from './stamp.js';
import { Opcode, readFrames } from './wire.js';

function serverFrame(opcode: number, payload: Buffer): Buffer {
  const head =
    payload.length < 126
      ? Buffer.from([0x80 | opcode, payload.length])
      : payload.length < 65536
        ? Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 127]), Buffer.from([0, 0, 0, 0, (payload.length >>> 24) & 0xff, (payload.length >> 16) & 0xff, (payload.length >> 8) & 0xff, payload.length & 0xff])]);
  return Buffer.concat([head, payload]);
}

/** Feeds `data` in pieces of `size` bytes and sums what the reader counted. */
function feedInPieces(reader: { feed(chunk: Buffer): number }, data: Buffer, size: number): number {
  let total = 0;
  for (let at = 0; at < data.length; at += size) total += reader.feed(data.subarray(at, at + size));
  return total;
}

const sink = () => {
  const written: Buffer[] = [];
  return { written, write: (data: Uint8Array) => written.push(Buffer.from(data)) };
};

describe('WsFrameReader', () => {
  const stream = Buffer.concat([
    serverFrame(Opcode.BINARY, Buffer.alloc(100, 1)),
    serverFrame(Opcode.PING, Buffer.from('hi')),
    serverFrame(Opcode.BINARY, Buffer.alloc(300, 2)),
    serverFrame(Opcode.BINARY, Buffer.alloc(70_000, 3)),
    serverFrame(Opcode.TEXT, Buffer.from('t')),
  ]);

  it.each([3, 7, 64, 1000, stream.length])('counts every message however the stream is cut (%d-byte chunks)', (size) => {
    const socket = sink();
    expect(feedInPieces(new WsFrameReader(socket), stream, size)).toBe(4);
    // The ping is answered with a masked pong carrying its payload.
    expect(socket.written).toHaveLength(1);
    expect(socket.written[0]![0]).toBe(0x80 | Opcode.PONG);
  });

  it('reads a stream fed byte by byte', () => {
    const small = Buffer.concat([serverFrame(Opcode.BINARY, Buffer.alloc(125, 1)), serverFrame(Opcode.BINARY, Buffer.alloc(126, 2)), serverFrame(Opcode.PING, Buffer.alloc(0))]);
    expect(feedInPieces(new WsFrameReader(sink()), small, 1)).toBe(2);
  });

  it('hands each message payload to the listener and reads the close code', () => {
    const payloads: string[] = [];
    const reader = new WsFrameReader(sink(), (data, start, end) => payloads.push(data.toString('utf8', start, end)));
    reader.feed(Buffer.concat([serverFrame(Opcode.BINARY, Buffer.from('one')), serverFrame(Opcode.CLOSE, Buffer.from([0x0f, 0xa6]))]));
    expect(payloads).toEqual(['one']);
    expect(reader.closeCode).toBe(4006);
  });

  it('refuses masked and fragmented frames', () => {
    expect(() => new WsFrameReader(sink()).feed(Buffer.from([0x82, 0x81, 0, 0, 0, 0, 1]))).toThrow('masked server frame');
    expect(() => new WsFrameReader(sink()).feed(Buffer.from([0x02, 0x01, 1]))).toThrow('fragmented frame');
  });

  it('agrees with readFrames on a whole stream', () => {
    const frames = readFrames(stream).frames.filter((f) => f.opcode === Opcode.BINARY || f.opcode === Opcode.TEXT);
    expect(new WsFrameReader(sink()).feed(stream)).toBe(frames.length);
  });
});

describe('NatsProtocolReader', () => {
  const protocol = Buffer.from(
    'INFO {"server_id":"x"}\r\n' +
      'MSG bench.all 1 5\r\nhello\r\n' +
      'PING\r\n' +
      'MSG bench.all 1 reply.to 12\r\nline\r\nbreaks\r\n' +
      'MSG bench.all 1 0\r\n\r\n' +
      '+OK\r\n',
  );

  it.each([1, 2, 5, 13, protocol.length])('counts MSGs and skips their payloads (%d-byte chunks)', (size) => {
    const pongs: string[] = [];
    const reader = new NatsProtocolReader((line) => pongs.push(line.toString()));
    expect(feedInPieces(reader, protocol, size)).toBe(3);
    expect(pongs).toEqual(['PONG\r\n']);
  });

  it('reads NATS protocol split across WebSocket frames', () => {
    const socket = sink();
    const frames = Buffer.concat([serverFrame(Opcode.BINARY, protocol.subarray(0, 40)), serverFrame(Opcode.BINARY, protocol.subarray(40))]);
    expect(feedInPieces(new NatsWsReader(socket), frames, 9)).toBe(3);
    // PONG goes back inside a masked WebSocket frame.
    expect(socket.written).toHaveLength(1);
  });
});

describe('MQTT', () => {
  it('counts PUBLISH packets across chunks, whatever their length encoding', () => {
    const stream = Buffer.concat([
      Buffer.from([MqttPacket.SUBACK << 4, 3, 0, 1, 0]),
      mqttPublish('bench.all', Buffer.alloc(10, 1)),
      mqttPublish('bench.all', Buffer.alloc(200, 2)),
      mqttPublish('bench.all', Buffer.alloc(20_000, 3)),
    ]);
    for (const size of [1, 3, 100, stream.length]) expect(feedInPieces(new MqttReader(), stream, size)).toBe(3);
  });

  it('encodes CONNECT and SUBSCRIBE as a broker reads them', () => {
    const connect = mqttConnect('bench-1');
    expect(mqttPacketAt(connect, 0)).toMatchObject({ type: MqttPacket.CONNECT, end: connect.length });
    expect(connect.subarray(4, 8).toString()).toBe('MQTT');
    const subscribe = mqttSubscribe('bench.all');
    expect(subscribe[0]).toBe(0x82);
    expect(mqttPacketAt(subscribe, 0)).toMatchObject({ type: MqttPacket.SUBSCRIBE, end: subscribe.length });
  });
});

describe('latency stamps', () => {
  it('are found in the raw bytes of a frame', () => {
    const text = Buffer.from(`\xa5title\xdabody ${stampText(42, 1_700_000_000_123.456)} rest`, 'latin1');
    expect(readStamp(text, 0, text.length)).toEqual({ seq: 42, intendedMs: 1_700_000_000_123.456 });
    expect(readStamp(text, 0, 10)).toBeUndefined();
    expect(readStamp(Buffer.from('mpsb:12'), 0, 7)).toBeUndefined();
  });
});
