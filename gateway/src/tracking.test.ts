/**
 * The gateway's tracking events against the real NATS: acks that arrive together go out as one
 * JetStream message, and what is held when the gateway closes is published before close() returns.
 * (test/tracking-crash.test.ts: what a gateway killed while holding acks loses, and gets back.)
 */
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEvents, decodeServerFrame, encodeFrame, FrameType, MasterKey, newId, PROTOCOL_VERSION, type ReadyFrame, type TrackingEvent } from '@mps/shared';
import { KeyStore } from '@mps/control-plane';
import { createTestDatabase, createTestNats, type TestDatabase, type TestNats } from '../../test/support/services.js';
import { RawSocket, startTestGateway, type TestGateway } from '../../test/support/gateway.js';

describe('gateway tracking events', () => {
  let database: TestDatabase;
  let nats: TestNats;
  let js: JetStreamClient;
  let masterKey: MasterKey;
  let app: string;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    nats = await createTestNats();
    js = jetstream(nats.nc);
    masterKey = MasterKey.fromBase64(MasterKey.generate());
    app = (await new KeyStore(database.db, masterKey, 0).createApp('tracking')).app;
  });

  afterAll(async () => {
    for (const gw of gateways) await gw.close();
    await nats?.cleanup();
    await database?.drop();
  });

  const start = async (env: Record<string, string>) => {
    const gw = await startTestGateway(database.db, nats, masterKey, env);
    gateways.push(gw);
    return gw;
  };

  async function readyDevice(gw: TestGateway): Promise<{ socket: RawSocket; device: string }> {
    const socket = new RawSocket(gw.url);
    await socket.send(encodeFrame({ t: FrameType.REGISTER, v: PROTOCOL_VERSION, app, platform: 'ios', appVersion: '1.0' }));
    const ready = decodeServerFrame(await socket.frame()) as ReadyFrame;
    return { socket, device: ready.device };
  }

  /** Every message of the event stream so far, each as its subject and events. */
  async function streamMessages(): Promise<{ subject: string; events: TrackingEvent[] }[]> {
    const jsm = await jetstreamManager(nats.nc);
    const count = (await jsm.streams.info(nats.subjects.eventStream)).state.messages;
    if (count === 0) return [];
    const consumer = await js.consumers.get(nats.subjects.eventStream);
    const out: { subject: string; events: TrackingEvent[] }[] = [];
    for await (const m of await consumer.fetch({ max_messages: count, expires: 2000 })) {
      out.push({ subject: m.subject, events: decodeEvents(m.data).events });
      if (out.length === count) break;
    }
    return out;
  }

  it('publishes the acks of one flush interval as one message', async () => {
    const gw = await start({ GATEWAY_TRACK_FLUSH_MS: '200' });
    const { socket, device } = await readyDevice(gw);
    const ids = Array.from({ length: 5 }, () => newId());
    await socket.send(encodeFrame({ t: FrameType.ACK, ids: ids.slice(0, 3) }));
    await socket.send(encodeFrame({ t: FrameType.ACK, ids: ids.slice(3) }));
    await new Promise((r) => setTimeout(r, 1000));
    const messages = (await streamMessages()).filter((m) => m.events.some((e) => e.device === device));
    expect(messages).toHaveLength(1);
    expect(messages[0]?.subject).toBe(nats.subjects.event(app, 'delivered'));
    expect(messages[0]?.events.map((e) => e.message)).toEqual(ids);
    expect(new Set(messages[0]?.events.map((e) => e.id)).size).toBe(5);
    expect(messages[0]?.events.every((e) => e.kind === 'delivered' && e.app === app && e.platform === 'ios' && e.appVersion === '1.0')).toBe(true);
    socket.close();
  });

  it('publishes what it holds before close() returns', async () => {
    const gw = await start({ GATEWAY_TRACK_FLUSH_MS: '1000' });
    const { socket, device } = await readyDevice(gw);
    const id = newId();
    await socket.send(encodeFrame({ t: FrameType.ACK, ids: [id] }));
    // The ack reached the gateway (its reply to a ping comes after it), and is held.
    await socket.send(encodeFrame({ t: FrameType.PING }));
    await socket.frame(2);
    const before = await streamMessages();
    expect(before.some((m) => m.events.some((e) => e.device === device))).toBe(false);
    const started = Date.now();
    await gw.close();
    expect(Date.now() - started).toBeLessThan(1000);
    const after = await streamMessages();
    expect(after.flatMap((m) => m.events).filter((e) => e.device === device).map((e) => e.message)).toEqual([id]);
  });
});
