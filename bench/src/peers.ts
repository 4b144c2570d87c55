/**
 * peers: our gateway beside other servers doing the same job in the same run (issue #12, item 6):
 * a bare uWS.js publish server (the ceiling: no auth, no NATS, no state), a plain Node `ws` server,
 * nats-server's own WebSocket listener and Mosquitto (MQTT over TCP), each a process of its own on
 * free loopback ports. Workloads, at BENCH_PEERS_DEVICES sockets per server:
 * - connect: sockets connected per second (ours: upgrade + AUTH checked against PostgreSQL + READY;
 *   the others: their own handshake, no auth) and server RSS per held socket;
 * - broadcast: one message to every socket, time until the last has it (median, interleaved rounds);
 * - stream: broadcasts at one offered rate for a few seconds, deliveries per second counted.
 * Each peer's figure becomes a ratio to ours, oriented so that above 1 means we do better.
 * Writes results/peers.json; `npm run bench -- peers`; bench/README.md lists the knobs.
 */
import { execFileSync } from 'node:child_process';
import { int, loadConfig, str, url } from '@mps/shared';
import type { Endpoint } from './loadgen/protocols.js';
import { PEERS, startPeer, type PeerName } from './peers/servers.js';
import { runStream, timeOneBroadcast, type StreamStep } from './support/fanout-measure.js';
import { Fleet, type ConnectResult } from './support/fleet.js';
import { rssBytes } from './support/procfs.js';
import { ROOT, type RunFrom } from './support/processes.js';
import { guardRun } from './support/guard.js';
import { gitCommit, machineInfo, medianOf, round, writeResult } from './support/results.js';
import { broadcastPublisher, startService } from './support/service.js';
import { raiseSocketLimits } from './support/sysctl.js';
import { CleanupStack, formatCount, sleep } from './support/util.js';

const spec = {
  BENCH_PEERS_DEVICES: int({ min: 1, max: 19_000, default: 18_000, desc: 'sockets per server (one process each: at most 19,000 here)' }),
  BENCH_PEERS: str({ default: PEERS.join(','), desc: `the peers to run, of ${PEERS.join(', ')}` }),
  BENCH_PEERS_REPEAT: int({ min: 1, default: 5, desc: 'broadcast rounds (each server once per round)' }),
  BENCH_PEERS_STREAM_OFFERED: int({ min: 1, default: 1_800_000, desc: 'offered deliveries per second of the stream' }),
  BENCH_PEERS_STREAM_S: int({ min: 1, default: 5, desc: 'measured seconds of the stream (after 1 s of warm-up)' }),
  BENCH_PEERS_SETTLE_MS: int({ min: 0, default: 2000, desc: 'pause before a server\'s idle RSS and after its sockets connected, before its RSS is read again' }),
  BENCH_IN_FLIGHT: int({ min: 1, default: 200, desc: 'handshakes under way at once per receiver process' }),
  BENCH_RUN_FROM: str({ choices: ['source', 'dist'], default: 'source', desc: 'source (tsx) or dist (tsc -b output)' }),
  BENCH_TIMEOUT_S: int({ min: 30, default: 1800, desc: 'the whole run' }),
  DATABASE_URL: url({ default: 'postgres://postgres@127.0.0.1:5432/mps', desc: 'the PostgreSQL server' }),
  NATS_URL: url({ default: 'nats://127.0.0.1:4222', desc: 'the NATS server (ours)' }),
};

type ServerName = 'ours' | PeerName;

interface Contender {
  name: ServerName;
  endpoint: Endpoint;
  pid: number;
  publish(frames: readonly Uint8Array[]): void;
  fleet?: Fleet;
  idleRss: number;
  connect?: ConnectResult;
  rssPerSocket?: number;
  broadcasts: number[];
  broadcastIncomplete: number;
  stream?: StreamStep;
  stop(): Promise<void>;
}

export interface ServerFigures {
  connects_per_second: number;
  rss_bytes_per_socket: number;
  broadcast_last_ms: number;
  broadcast_samples_ms: number[];
  broadcast_incomplete: number;
  stream_deliveries_per_second: number;
  stream: StreamStep | undefined;
  connect: ConnectResult | undefined;
}

export async function main(): Promise<void> {
  const c = loadConfig(spec, process.env);
  const runFrom = c.BENCH_RUN_FROM as RunFrom;
  const peers = c.BENCH_PEERS.split(',').filter((p): p is PeerName => (PEERS as readonly string[]).includes(p));
  const log = (line: string) => console.log(line);
  const check = guardRun('peers', c.BENCH_TIMEOUT_S);
  const machine = machineInfo();
  if (runFrom === 'dist') {
    execFileSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '-b', 'gateway', 'bench'], { cwd: ROOT, stdio: 'inherit' });
  }
  const limits = await raiseSocketLimits(log);
  const cleanup = new CleanupStack(log);
  const contenders: Contender[] = [];
  const n = c.BENCH_PEERS_DEVICES;
  try {
    // Ours: one gateway process with its database and NATS, broadcasts published as the control plane does.
    const service = await startService(
      { devices: n, gateways: 1, runFrom, databaseUrl: c.DATABASE_URL, natsUrl: c.NATS_URL, controlPlane: false, log, check },
      cleanup,
    );
    contenders.push({
      name: 'ours',
      endpoint: { protocol: 'mps', host: '127.0.0.1', port: service.port, path: '/v1/device', app: service.app, seed: service.seed, topic: '' },
      pid: service.gateways[0]!.pid,
      publish: broadcastPublisher(service),
      idleRss: 0,
      broadcasts: [],
      broadcastIncomplete: 0,
      stop: async () => undefined,
    });
    for (const name of peers) {
      const server = await startPeer(name, runFrom);
      cleanup.push(`stop ${name}`, () => server.stop());
      contenders.push({
        name,
        endpoint: server.endpoint,
        pid: server.pid,
        publish: (frames) => server.publisher.publish(frames),
        idleRss: 0,
        broadcasts: [],
        broadcastIncomplete: 0,
        stop: () => server.stop(),
      });
    }

    // connect, one server at a time
    for (const contender of contenders) {
      check();
      await sleep(c.BENCH_PEERS_SETTLE_MS / 2);
      contender.idleRss = await rssBytes(contender.pid);
      const fleet = await Fleet.start({
        runFrom,
        endpoint: contender.endpoint,
        sockets: n,
        processes: 1,
        inFlight: c.BENCH_IN_FLIGHT,
        socketsPerAddress: 500,
      });
      cleanup.push(`stop the receivers of ${contender.name}`, () => fleet.kill());
      contender.fleet = fleet;
      contender.connect = await fleet.connect(check, log);
      await sleep(c.BENCH_PEERS_SETTLE_MS);
      const held = fleet.held;
      contender.rssPerSocket = held > 0 ? Math.round(((await rssBytes(contender.pid)) - contender.idleRss) / held) : 0;
      log(
        `${contender.name}: ${formatCount(held)} sockets in ${contender.connect.seconds} s (${formatCount(contender.connect.connects_per_second)}/s), ` +
          `${formatCount(contender.rssPerSocket)} B of server RSS each` +
          (contender.connect.failed ? `, ${contender.connect.failed} failed ${JSON.stringify(contender.connect.reasons)}` : ''),
      );
    }

    // broadcast rounds, interleaved
    for (let round = 1; round <= c.BENCH_PEERS_REPEAT; round++) {
      check();
      const line: string[] = [];
      for (const contender of contenders) {
        const ms = await timeOneBroadcast(contender.fleet!, (frame) => contender.publish([frame]), 30_000, () => contender.broadcastIncomplete++);
        contender.broadcasts.push(ms);
        line.push(`${contender.name} ${ms} ms`);
      }
      log(`broadcast round ${round}: ${line.join(', ')}`);
    }

    // streams, one server at a time; each server stops after its stream (a server that queued may hold a lot)
    for (const contender of contenders) {
      check();
      const fleet = contender.fleet!;
      contender.stream = await runStream(fleet, {
        broadcastsPerSecond: c.BENCH_PEERS_STREAM_OFFERED / Math.max(fleet.held, 1),
        targetedPerSecond: 0,
        seconds: c.BENCH_PEERS_STREAM_S,
        warmupSeconds: 1,
        tickMs: 10,
        publishBroadcasts: (frames) => contender.publish(frames),
        cpuOf: { server: [contender.pid], receivers: fleet.pids, bench: [process.pid] },
      });
      log(
        `${contender.name} stream: ${formatCount(contender.stream.delivered_per_second)} delivered/s of ${formatCount(contender.stream.offered_deliveries_per_second)} offered, ` +
          `cpu ${JSON.stringify(contender.stream.cpu)}`,
      );
      await fleet.kill();
      await contender.stop();
    }
  } finally {
    await cleanup.run();
    await limits.restore();
  }

  const figures: Partial<Record<ServerName, ServerFigures>> = {};
  for (const contender of contenders) {
    figures[contender.name] = {
      connects_per_second: contender.connect?.connects_per_second ?? 0,
      rss_bytes_per_socket: contender.rssPerSocket ?? 0,
      broadcast_last_ms: medianOf(contender.broadcasts),
      broadcast_samples_ms: contender.broadcasts,
      broadcast_incomplete: contender.broadcastIncomplete,
      stream_deliveries_per_second: contender.stream?.delivered_per_second ?? 0,
      stream: contender.stream,
      connect: contender.connect,
    };
  }
  const ours = figures.ours!;
  const metrics: Record<string, number> = {
    ours_connects_per_second: ours.connects_per_second,
    ours_rss_bytes_per_socket: ours.rss_bytes_per_socket,
    ours_broadcast_last_ms: ours.broadcast_last_ms,
    ours_stream_deliveries_per_second: ours.stream_deliveries_per_second,
  };
  for (const peer of peers) {
    const p = figures[peer];
    if (!p) continue;
    metrics[`${peer}_connect_ratio`] = round(ours.connects_per_second / p.connects_per_second, 3);
    metrics[`${peer}_memory_ratio`] = round(p.rss_bytes_per_socket / ours.rss_bytes_per_socket, 3);
    metrics[`${peer}_broadcast_ratio`] = round(p.broadcast_last_ms / ours.broadcast_last_ms, 3);
    metrics[`${peer}_stream_ratio`] = round(ours.stream_deliveries_per_second / p.stream_deliveries_per_second, 3);
  }
  const notes = [
    `Every server held ${formatCount(n)} sockets from lean receivers (one process per server) on loopback, and got its broadcasts from one publisher connection: ` +
      'ours from NATS as the control plane publishes them (envelope on the app\'s broadcast subject, through the machine\'s nats-server), uws_raw and ws over a WebSocket on /publish ' +
      '(a tick\'s broadcasts in one message, published one by one in one event-loop turn, as ours gets a tick\'s broadcasts in one read from NATS), ' +
      'nats_ws from a NATS client on the peer nats-server\'s TCP port, mosquitto from an MQTT client (QoS 0). The message is the same ~110-byte MESSAGE frame for all.',
    'Ratios: above 1 means ours does better. connect = our connects/s / theirs; memory = their server RSS per socket / ours; broadcast = their last-delivery ms / ours; stream = our deliveries/s / theirs.',
    'Ours does more per socket than any peer: the connect handshake checks the device secret in PostgreSQL and subscribes NATS subjects; our RSS per socket excludes the machine nats-server\'s share (about 0.7 KB per device, connections.json).',
    `Stream: ${formatCount(c.BENCH_PEERS_STREAM_OFFERED)} deliveries/s offered on a 10 ms tick for ${c.BENCH_PEERS_STREAM_S} s (after 1 s of warm-up); a server that cannot keep up queues (ws, Mosquitto) or skips slow sockets (uWS maxBackpressure): the figure is what arrived per second during the window.`,
    `Load average at the start: ${machine.load_average.join(' ')} (the machine is shared); system limits: ${JSON.stringify(limits.changes.length ? limits.changes : limits.notes)}.`,
  ];
  const result = {
    name: 'peers',
    date: new Date().toISOString(),
    machine,
    commit: gitCommit(),
    params: {
      devices: n,
      peers,
      repeat: c.BENCH_PEERS_REPEAT,
      stream_offered_deliveries_per_second: c.BENCH_PEERS_STREAM_OFFERED,
      stream_seconds: c.BENCH_PEERS_STREAM_S,
      in_flight: c.BENCH_IN_FLIGHT,
      run_from: runFrom,
      system_limits: limits.changes,
    },
    metrics,
    servers: figures,
    notes: notes.join(' '),
  };
  const path = await writeResult('peers', result);
  console.log(`\nwritten to ${path}\n\n${result.notes}\n`);
  const table = peers
    .filter((peer) => figures[peer])
    .map((peer) => `${peer}: broadcast ${metrics[`${peer}_broadcast_ratio`]}, stream ${metrics[`${peer}_stream_ratio`]}, connect ${metrics[`${peer}_connect_ratio`]}, memory ${metrics[`${peer}_memory_ratio`]}`);
  console.log(`peers (ratio to ours, > 1 = ours better): ${table.join('; ')}`);
}
