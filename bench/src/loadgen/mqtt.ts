/** Just enough MQTT 3.1.1 to subscribe and publish at QoS 0, for the Mosquitto peer of the bench. */
import { MqttPacket } from './readers.js';

function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

function packet(typeAndFlags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([typeAndFlags]), remainingLength(body.length), body]);
}

function utf8(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(2);
  length.writeUInt16BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** CONNECT with a clean session and no keep-alive (the broker never times the client out). */
export function mqttConnect(clientId: string): Buffer {
  const header = Buffer.concat([utf8('MQTT'), Buffer.from([4 /* 3.1.1 */, 0x02 /* clean session */, 0, 0 /* keep-alive off */])]);
  return packet(MqttPacket.CONNECT << 4, Buffer.concat([header, utf8(clientId)]));
}

export function mqttSubscribe(topic: string, packetId = 1): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  return packet((MqttPacket.SUBSCRIBE << 4) | 0x02, Buffer.concat([id, utf8(topic), Buffer.from([0 /* QoS 0 */])]));
}

export function mqttPublish(topic: string, payload: Uint8Array): Buffer {
  return packet(MqttPacket.PUBLISH << 4, Buffer.concat([utf8(topic), payload]));
}
