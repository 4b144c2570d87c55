/**
 * The gateway's interest layer against a real nats-server: its subscriptions go through nats.js's
 * protocol handler (gateway/src/hub.ts), so this checks what nats.js's own Subscription would give:
 * delivery to every local socket, the server's interest gone after the last socket leaves, the
 * subscriptions back after the server restarts, and a drained connection.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '@mps/shared';
import { Hub } from '@mps/gateway';
import { startOwnNats, type OwnNats } from './reliability/support/servers.js';
import { eventually } from './support/services.js';

interface Socket {
  name: string;
}

let server: OwnNats;
let nc: NatsConnection;
let publisher: NatsConnection;
const got: string[] = [];
const errors_: string[] = [];
let hub: Hub<Socket>;

beforeAll(async () => {
  server = await startOwnNats();
  nc = await connectNats(server.url, 'hub-test');
  publisher = await connectNats(server.url, 'hub-test-publisher');
  hub = new Hub<Socket>(
    nc,
    (subject, sockets, msg) => {
      for (const socket of sockets) got.push(`${subject} ${socket.name} ${msg.string()}`);
    },
    (subject, error) => errors_.push(`${subject} ${error.message}`),
  );
});

afterAll(async () => {
  await publisher?.close();
  await nc?.close();
  await server?.stop();
});

/** Whether the server routes this subject to anyone: a request gets "no responders" when it does not. */
async function serverHasInterest(subject: string): Promise<boolean> {
  try {
    await publisher.request(subject, 'ping?', { timeout: 300 });
    return true;
  } catch (error) {
    if (error instanceof errors.RequestError && error.isNoResponders()) return false;
    if (error instanceof errors.TimeoutError) return true;
    throw error;
  }
}

async function publishAndSettle(subject: string, data: string): Promise<void> {
  publisher.publish(subject, data);
  await publisher.flush();
  await nc.flush();
}

it('delivers to each local socket of a subject, and ends the subscription with the last one', async () => {
  const [a, b] = [{ name: 'a' }, { name: 'b' }];
  hub.add('dev.x', a);
  hub.add('dev.x', a);
  hub.add('dev.x', b);
  await hub.flush();
  expect(hub.subjectCount).toBe(1);
  await publishAndSettle('dev.x', 'one');
  await eventually(async () => (got.length === 2 ? true : undefined), 2000, 'both sockets');
  expect(got.sort()).toEqual(['dev.x a one', 'dev.x b one']);

  got.length = 0;
  hub.remove('dev.x', a);
  await publishAndSettle('dev.x', 'two');
  await eventually(async () => (got.length === 1 ? true : undefined), 2000, 'the socket left');
  expect(got).toEqual(['dev.x b two']);

  hub.remove('dev.x', b);
  await hub.flush();
  expect(hub.subjectCount).toBe(0);
  expect(await serverHasInterest('dev.x')).toBe(false);
  got.length = 0;
  await publishAndSettle('dev.x', 'three');
  expect(got).toEqual([]);
});

it('subscribes again after the server restarts, for subjects added before and during the outage', async () => {
  const [c, d] = [{ name: 'c' }, { name: 'd' }];
  hub.add('dev.before', c);
  await hub.flush();
  expect(await serverHasInterest('dev.before')).toBe(true);

  await server.kill();
  hub.add('dev.during', d);
  await server.start();
  // Both connections back (a flush fails while one is away), then the server's interest.
  const resubscribed = async () => {
    await Promise.all([nc.flush(), publisher.flush()]);
    return (await serverHasInterest('dev.before')) && (await serverHasInterest('dev.during'));
  };
  await eventually(async () => ((await resubscribed().catch(() => false)) ? true : undefined), 20_000, 'the subscriptions back');

  got.length = 0;
  await publishAndSettle('dev.before', 'x');
  await publishAndSettle('dev.during', 'y');
  await eventually(async () => (got.length === 2 ? true : undefined), 5000, 'both subjects after the restart');
  expect(got.sort()).toEqual(['dev.before c x', 'dev.during d y']);
  expect(errors_).toEqual([]);
  hub.remove('dev.before', c);
  hub.remove('dev.during', d);
});

it('ends its subscriptions when the connection drains', async () => {
  const own = await connectNats(server.url, 'hub-test-drain');
  const drained = new Hub<Socket>(own, () => undefined, () => undefined);
  drained.add('dev.drain', { name: 'e' });
  await drained.flush();
  expect(await serverHasInterest('dev.drain')).toBe(true);
  await own.drain();
  expect(drained.subjectCount).toBe(0);
  expect(await serverHasInterest('dev.drain')).toBe(false);
});
