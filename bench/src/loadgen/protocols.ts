/**
 * How a receiving socket gets ready on each server the fan-out benches drive, and which reader then
 * counts what it receives:
 * - mps: our gateway. WebSocket upgrade, one AUTH frame (a bench device of the run's seed), READY.
 * - ws: a plain WebSocket server that puts every socket on its broadcast list (the uWS.js and `ws` peers).
 * - nats_ws: nats-server's WebSocket listener. INFO, then CONNECT + SUB + PING, ready at the PONG.
 * - mqtt: an MQTT broker over TCP. CONNECT + SUBSCRIBE at QoS 0, ready at the SUBACK.
 */
import { decodeServerFrame, encodeFrame, FrameType, PROTOCOL_VERSION } from '@mps/shared/protocol';
import { deviceId, deviceSecret } from './identity.js';
import { mqttConnect, mqttSubscribe } from './mqtt.js';
import { MqttPacket, mqttPacketAt, MqttReader, NatsWsReader, WsFrameReader, type PayloadListener, type Reader, type Writable } from './readers.js';
import { clientFrame, closeCode, Opcode, readFrames, readUpgradeResponse, upgradeRequest, WireError } from './wire.js';

export const Protocols = ['mps', 'ws', 'nats_ws', 'mqtt'] as const;
export type Protocol = (typeof Protocols)[number];

export interface Endpoint {
  protocol: Protocol;
  host: string;
  port: number;
  /** The WebSocket path (mps, ws, nats_ws). */
  path: string;
  /** mps: the app and the seed its bench devices derive from. */
  app: string;
  seed: string;
  /** nats_ws: the subject; mqtt: the topic. */
  topic: string;
}

export interface Handshake {
  /** Written once the TCP connection is up. */
  hello: Buffer;
  /** Takes received bytes: the bytes after the handshake once ready, undefined while more must come. Throws a WireError to fail. */
  data(chunk: Buffer, socket: Writable): Buffer | undefined;
}

const EMPTY: Buffer = Buffer.alloc(0);

/** Creates the handshake of device `index` (its number in the whole run). */
export function handshakeFactory(endpoint: Endpoint): (index: number) => Handshake {
  const upgrade = upgradeRequest(endpoint.host, endpoint.port, endpoint.path);
  switch (endpoint.protocol) {
    case 'mps':
      return (index) => mpsHandshake(endpoint, upgrade, index);
    case 'ws':
      return () => wsHandshake(upgrade);
    case 'nats_ws':
      return () => natsWsHandshake(endpoint.topic, upgrade);
    case 'mqtt':
      return (index) => mqttHandshake(endpoint.topic, index);
  }
}

/** The reader of a ready socket. `onPayload` (mps only) sees each message's payload, for stamps. */
export function createReader(protocol: Protocol, socket: Writable, onPayload?: PayloadListener): Reader {
  switch (protocol) {
    case 'mps':
    case 'ws':
      return new WsFrameReader(socket, onPayload);
    case 'nats_ws':
      return new NatsWsReader(socket);
    case 'mqtt':
      return new MqttReader();
  }
}

type Upgrade = ReturnType<typeof upgradeRequest>;

/** Bytes of `data` after the frame whose payload is `payload` (a subarray of `data`). */
const after = (data: Buffer, payload: Buffer) => data.subarray(payload.byteOffset - data.byteOffset + payload.length);

function mpsHandshake(endpoint: Endpoint, upgrade: Upgrade, index: number): Handshake {
  let received: Buffer = EMPTY;
  let upgraded = false;
  return {
    hello: upgrade.request,
    data(chunk, socket) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (!upgraded) {
        const response = readUpgradeResponse(received, upgrade.accept);
        if (!response.complete) return undefined;
        upgraded = true;
        received = response.rest;
        const auth = encodeFrame({
          t: FrameType.AUTH,
          v: PROTOCOL_VERSION,
          app: endpoint.app,
          device: deviceId(endpoint.seed, index),
          secret: deviceSecret(endpoint.seed, index),
          platform: 'android',
          sdkVersion: 'bench',
        });
        socket.write(clientFrame(Opcode.BINARY, auth));
      }
      const { frames, rest } = readFrames(received);
      for (const frame of frames) {
        if (frame.opcode === Opcode.PING) socket.write(clientFrame(Opcode.PONG, frame.payload));
        else if (frame.opcode === Opcode.CLOSE) throw new WireError(`close ${closeCode(frame.payload)} before ready`);
        else if (frame.opcode !== Opcode.BINARY) throw new WireError(`opcode ${frame.opcode} before ready`);
        else if (decodeServerFrame(frame.payload).t === FrameType.READY) return after(received, frame.payload);
        else throw new WireError('a frame other than READY first');
      }
      received = Buffer.from(rest);
      return undefined;
    },
  };
}

function wsHandshake(upgrade: Upgrade): Handshake {
  let received: Buffer = EMPTY;
  return {
    hello: upgrade.request,
    data(chunk) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const response = readUpgradeResponse(received, upgrade.accept);
      return response.complete ? response.rest : undefined;
    },
  };
}

function natsWsHandshake(subject: string, upgrade: Upgrade): Handshake {
  let received: Buffer = EMPTY;
  let upgraded = false;
  let subscribed = false;
  let ready = false;
  let lines = '';
  const subscribe = Buffer.from(
    `CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":false,"no_responders":false}\r\nSUB ${subject} 1\r\nPING\r\n`,
  );
  return {
    hello: upgrade.request,
    data(chunk, socket) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (!upgraded) {
        const response = readUpgradeResponse(received, upgrade.accept);
        if (!response.complete) return undefined;
        upgraded = true;
        received = response.rest;
      }
      const { frames, rest } = readFrames(received);
      for (const frame of frames) {
        if (frame.opcode === Opcode.PING) socket.write(clientFrame(Opcode.PONG, frame.payload));
        if (frame.opcode === Opcode.CLOSE) throw new WireError(`close ${closeCode(frame.payload)} before ready`);
        if (frame.opcode !== Opcode.BINARY && frame.opcode !== Opcode.TEXT) continue;
        lines += frame.payload.toString('latin1');
        if (!subscribed && lines.includes('INFO ')) {
          subscribed = true;
          socket.write(clientFrame(Opcode.BINARY, subscribe));
        }
        if (lines.startsWith('-ERR') || lines.includes('\n-ERR')) throw new WireError(`nats: ${lines.trim().slice(0, 80)}`);
        if (subscribed && /(^|\n)PONG\r\n/.test(lines)) ready = true;
        if (ready) return after(received, frame.payload);
      }
      received = Buffer.from(rest);
      return undefined;
    },
  };
}

function mqttHandshake(topic: string, index: number): Handshake {
  let received: Buffer = EMPTY;
  return {
    hello: Buffer.concat([mqttConnect(`bench-${index}`), mqttSubscribe(topic)]),
    data(chunk) {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let at = 0;
      for (let packet = mqttPacketAt(received, at); packet; packet = mqttPacketAt(received, at)) {
        if (packet.type === MqttPacket.CONNACK && received[packet.start + 1] !== 0) {
          throw new WireError(`mqtt connack ${received[packet.start + 1]}`);
        }
        at = packet.end;
        if (packet.type === MqttPacket.SUBACK) return received.subarray(at);
      }
      received = Buffer.from(received.subarray(at));
      return undefined;
    },
  };
}
