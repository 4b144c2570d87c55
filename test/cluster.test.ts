/**
 * The local cluster (`make cluster`, scripts/cluster.sh) as a whole: three NATS nodes with
 * JetStream, two control planes and two gateways behind HAProxy, analytics and a sender. A device
 * on each gateway gets a user push and a broadcast sent through HAProxy; then one gateway drains
 * (its device comes back through HAProxy on the other) and one NATS node is killed, and new pushes
 * still reach every device and are still accounted for.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeviceClient, PushClient, type MessageFrame } from '@mps/sdk';
import { createSubjects } from '@mps/shared';
import { eventually } from './support/services.js';
import { alive, gatewayMetric, natsConnectionNames, startLocalCluster, type ClusterProcess, type LocalCluster } from './support/cluster.js';

interface Device {
  client: DeviceClient;
  shown: MessageFrame[];
  gateway: ClusterProcess;
}

describe('a local cluster behind HAProxy', () => {
  let cluster: LocalCluster;
  let api: PushClient;
  const devices: Device[] = [];
  const streams = (() => {
    const s = createSubjects('mps');
    return [s.eventStream, s.vendorStream, `KV_${s.nonceBucket}`];
  })();

  beforeAll(async () => {
    cluster = await startLocalCluster({ gateways: 2, controlPlanes: 2, maxS: 600, env: { GATEWAY_DRAIN_WINDOW_MS: '500' } });
    api = new PushClient({ baseUrl: cluster.info.api_url, keyId: cluster.credentials.keyId, secret: cluster.credentials.secret });
  }, 240_000);

  afterAll(async () => {
    for (const d of devices) d.client.close();
    await cluster?.stop();
  }, 90_000);

  const gateways = () => cluster.info.processes.filter((p) => p.name.startsWith('gateway-'));
  const natsNodes = () => cluster.info.processes.filter((p) => p.name.startsWith('nats-'));
  const connectionsOn = (gateway: ClusterProcess) => gatewayMetric(gateway.admin_port as number, 'mps_gateway_connections');

  async function reportOnFailure(): Promise<void> {
    console.error(await cluster.output());
  }

  /** Waits until every device has been shown these message ids (in any order, each once). */
  async function allShown(ids: string[], what: string): Promise<void> {
    await eventually(async () => (devices.every((d) => ids.every((id) => d.shown.some((m) => m.id === id))) ? true : undefined), 30_000, what);
    for (const d of devices) for (const id of ids) expect(d.shown.filter((m) => m.id === id)).toHaveLength(1);
  }

  async function pushBoth(label: string): Promise<string[]> {
    const user = await api.pushSimple({ target: { user: 'carol' }, title: `user ${label}` });
    expect(user.targeted).toBe(2);
    const broadcast = await api.pushBroadcast({ title: `everyone ${label}` });
    expect(broadcast.targeted).toBe(2);
    return [user.messageId, broadcast.messageId];
  }

  it('has replicated streams, and a device on each gateway gets a user push and a broadcast sent through HAProxy', async () => {
    onTestFailed(reportOnFailure);
    const nc = await connect({ servers: cluster.info.nats_urls.split(','), name: 'cluster-test' });
    try {
      const jsm = await jetstreamManager(nc);
      for (const name of streams) expect((await jsm.streams.info(name)).config.num_replicas, name).toBe(3);
    } finally {
      await nc.close();
    }

    // Through HAProxy's device frontend; leastconn puts the second device on the other gateway.
    for (const platform of ['ios', 'android'] as const) {
      const shown: MessageFrame[] = [];
      const client = new DeviceClient({
        url: cluster.info.device_url,
        app: cluster.credentials.app,
        platform,
        onMessage: (m) => {
          shown.push(m);
        },
        reconnect: { initialMs: 100, maxMs: 1000 },
      });
      await client.connect();
      await client.bind(await api.bindToken('carol'));
      const counts = await Promise.all(gateways().map(connectionsOn));
      const gateway = gateways().find((g, i) => counts[i] === 1 && !devices.some((d) => d.gateway === g));
      if (!gateway) throw new Error(`HAProxy did not put this device on a gateway of its own: connections per gateway ${counts.join(', ')}`);
      devices.push({ client, shown, gateway });
    }

    await allShown(await pushBoth('one'), 'the first user push and broadcast on both gateways');

    // Both control planes answered through the API frontend (HAProxy's stats: requests per server).
    const stats = await (await fetch(`${cluster.info.stats_url};csv`)).text();
    const served = stats
      .split('\n')
      .map((line) => line.split(','))
      .filter((f) => f[0] === 'control_planes' && f[1]?.startsWith('cp'))
      .map((f) => Number(f[7]));
    expect(served).toHaveLength(2);
    expect(served.every((n) => n > 0), `requests per control plane: ${served.join(', ')}`).toBe(true);
  }, 90_000);

  it('survives a gateway drained with SIGTERM and a NATS node killed with SIGKILL', async () => {
    onTestFailed(reportOnFailure);
    expect(devices).toHaveLength(2);
    const [first, second] = devices as [Device, Device];

    // Drain the first device's gateway: the device is told to reconnect and comes back through
    // HAProxy on the other gateway, which then holds both.
    const states: string[] = [];
    first.client.on('state', (s) => states.push(s));
    process.kill(first.gateway.pid, 'SIGTERM');
    await eventually(async () => (alive(first.gateway.pid) ? undefined : true), 30_000, 'the drained gateway to exit');
    await eventually(async () => ((await connectionsOn(second.gateway)) === 2 ? true : undefined), 30_000, 'both devices on the remaining gateway');
    await eventually(async () => (first.client.state === 'ready' ? true : undefined), 10_000, 'the moved device to be ready');
    // It went through a new connection (connecting or reconnecting), then ready again.
    expect(states.length).toBeGreaterThanOrEqual(2);
    expect(states.at(-1)).toBe('ready');
    first.gateway = second.gateway;

    // Kill the NATS node the remaining gateway is connected to: it must reconnect to another node,
    // subscribe again and get what was published meanwhile.
    const gatewayName = `gateway-${second.gateway.pid}`;
    const nodes = natsNodes();
    const names = await Promise.all(nodes.map((n) => natsConnectionNames(n.monitor_port as number)));
    const victim = nodes[names.findIndex((list) => list.includes(gatewayName))];
    if (!victim) throw new Error(`no NATS node holds ${gatewayName}: ${JSON.stringify(names)}`);
    process.kill(victim.pid, 'SIGKILL');
    const survivors = nodes.filter((n) => n !== victim);

    // Every live service is connected to a surviving node again.
    const services = cluster.info.processes.filter((p) => /^(gateway|control-plane|analytics|sender)/.test(p.name) && alive(p.pid));
    await eventually(
      async () => {
        const held = (await Promise.all(survivors.map((n) => natsConnectionNames(n.monitor_port as number)))).flat();
        const missing = services.filter((p) => !held.some((name) => name.endsWith(`-${p.pid}`)));
        return missing.length === 0 ? true : undefined;
      },
      60_000,
      'every service to reconnect to a surviving NATS node',
    );
    // Every replicated stream has a leader on a surviving node (the API claims nonces in one of them).
    const nc: NatsConnection = await connect({ servers: survivors.map((n) => `nats://127.0.0.1:${n.port}`), name: 'cluster-test' });
    try {
      // No API check here: while JetStream elects new leaders its requests may time out, and are retried below.
      const jsm = await jetstreamManager(nc, { checkAPI: false, timeout: 10_000 });
      const victimName = `n${victim.name.slice('nats-'.length)}`;
      for (const name of streams) {
        await eventually(
          async () => {
            const leader = (await jsm.streams.info(name)).cluster?.leader;
            return leader && leader !== victimName ? true : undefined;
          },
          60_000,
          `a leader for ${name} on a surviving node`,
        );
      }
    } finally {
      await nc.close();
    }

    const ids = await pushBoth('two');
    await allShown(ids, 'the user push and broadcast after the gateway and the NATS node went away');
    // The ledger (a JetStream consumer of the control planes) still records the acks.
    const status = await eventually(async () => {
      const s = await api.message(ids[0] as string);
      return s.counts.delivered === 2 ? s : undefined;
    }, 30_000, 'both deliveries of the user push to be recorded');
    expect(status.counts).toMatchObject({ targeted: 2, delivered: 2, pending: 0 });
  }, 180_000);
});
