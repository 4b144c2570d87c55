/**
 * The peer servers of the peers bench, each started for the run on free loopback ports and stopped
 * after it, with a publisher that hands it broadcasts over one connection:
 * - uws_raw: uws-raw.ts (bare uWS.js publish); publisher: a WebSocket on /publish, a tick's
 *   broadcasts in one message (batch.ts), as ours get a tick's broadcasts in one read from NATS.
 * - ws: ws-server.ts (plain Node `ws`); publisher: the same.
 * - nats_ws: a nats-server of our own with a websocket block; subscribers on its WebSocket
 *   listener, the publisher on its TCP port.
 * - mosquitto: a mosquitto of our own (MQTT 3.1.1 over TCP, QoS 0); the publisher is one more client.
 * The system's own NATS (4222) and Mosquitto (1883) are not touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { Endpoint } from '../loadgen/protocols.js';
import { mqttConnect, mqttPublish } from '../loadgen/mqtt.js';
import { packBatch } from './batch.js';
import { ROOT, type RunFrom } from '../support/processes.js';
import { listenersOn } from '../support/procfs.js';
import { freePort } from '../support/service.js';
import { sleep } from '../support/util.js';

export const PEERS = ['uws_raw', 'ws', 'nats_ws', 'mosquitto'] as const;
export type PeerName = (typeof PEERS)[number];

/** Hands broadcasts to the server under test over one connection. */
export interface Publisher {
  /** Each frame is one broadcast; they leave back to back. */
  publish(frames: readonly Uint8Array[]): void;
  close(): Promise<void>;
}

export interface PeerServer {
  name: PeerName;
  endpoint: Endpoint;
  /** The process whose memory and CPU are the server's. */
  pid: number;
  publisher: Publisher;
  stop(): Promise<void>;
}

export const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server'].find((path) => existsSync(path));
export const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((path) => existsSync(path));

const TOPIC = 'bench.all';
const NO_ENDPOINT_EXTRAS = { app: '', seed: '', topic: TOPIC };

function capture(child: ChildProcess): () => string {
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

async function waitListening(child: ChildProcess, output: () => string, ports: number[]): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`peer server exited:\n${output()}`);
    const listening = await Promise.all(ports.map((port) => listenersOn(port)));
    if (listening.every((n) => n > 0)) return;
    await sleep(100);
  }
  throw new Error(`peer server did not listen on ${ports.join(', ')}:\n${output()}`);
}

function stopper(child: ChildProcess, publisher: () => Publisher | undefined, dir?: string): () => Promise<void> {
  return async () => {
    await publisher()?.close().catch((error: unknown) => process.stderr.write(`publisher close: ${String(error)}\n`));
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  };
}

async function wsPublisher(url: string): Promise<Publisher> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    publish: (frames) => ws.send(packBatch(frames), { binary: true }),
    close: async () => ws.close(),
  };
}

/** uws_raw and ws: a node script of this folder, from the sources or the build. */
async function startScriptPeer(name: 'uws_raw' | 'ws', runFrom: RunFrom): Promise<PeerServer> {
  const file = name === 'uws_raw' ? 'uws-raw' : 'ws-server';
  const port = await freePort();
  const args =
    runFrom === 'source'
      ? ['--conditions=source', '--import', 'tsx', fileURLToPath(new URL(`./${file}.ts`, import.meta.url))]
      : [`${ROOT}bench/dist/peers/${file}.js`];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = capture(child);
  let publisher: Publisher | undefined;
  const stop = stopper(child, () => publisher);
  try {
    await waitListening(child, output, [port]);
    publisher = await wsPublisher(`ws://127.0.0.1:${port}/publish`);
  } catch (error) {
    await stop();
    throw error;
  }
  return { name, endpoint: { protocol: 'ws', host: '127.0.0.1', port, path: '/ws', ...NO_ENDPOINT_EXTRAS }, pid: child.pid!, publisher, stop };
}

async function startNatsWs(): Promise<PeerServer> {
  if (!NATS_SERVER) throw new Error('nats-server is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'mps-bench-nats-'));
  const [port, wsPort] = [await freePort(), await freePort()];
  const config = join(dir, 'nats.conf');
  await writeFile(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      'max_connections: 1000000',
      'max_pending: 67108864',
      'websocket {',
      `  listen: "127.0.0.1:${wsPort}"`,
      '  no_tls: true',
      '  compression: false',
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn(NATS_SERVER, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = capture(child);
  let publisher: Publisher | undefined;
  const stop = stopper(child, () => publisher, dir);
  try {
    await waitListening(child, output, [port, wsPort]);
    const nc = await natsConnect({ servers: `nats://127.0.0.1:${port}`, name: 'bench-peer-publisher' });
    publisher = {
      publish: (frames) => {
        for (const frame of frames) nc.publish(TOPIC, frame);
      },
      close: () => nc.close(),
    };
  } catch (error) {
    await stop();
    throw error;
  }
  return { name: 'nats_ws', endpoint: { protocol: 'nats_ws', host: '127.0.0.1', port: wsPort, path: '/', ...NO_ENDPOINT_EXTRAS }, pid: child.pid!, publisher, stop };
}

async function mqttPublisher(port: number): Promise<Publisher> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () => socket.write(mqttConnect('bench-publisher')));
    // CONNACK: 0x20 0x02 flags code
    socket.once('data', (data: Buffer) => (data[0] === 0x20 && data[3] === 0 ? resolve() : reject(new Error(`mqtt connack ${data.toString('hex')}`))));
  });
  socket.on('data', () => undefined); // nothing else is expected at QoS 0; keep the socket flowing
  return {
    publish: (frames) => {
      socket.write(Buffer.concat(frames.map((frame) => mqttPublish(TOPIC, frame))));
    },
    close: async () => {
      socket.end();
    },
  };
}

async function startMosquitto(): Promise<PeerServer> {
  if (!MOSQUITTO) throw new Error('mosquitto is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'mps-bench-mosquitto-'));
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  await writeFile(
    config,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'max_connections -1', 'persistence false', 'log_dest stderr', 'log_type error', ''].join('\n'),
  );
  const child = spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = capture(child);
  let publisher: Publisher | undefined;
  const stop = stopper(child, () => publisher, dir);
  try {
    await waitListening(child, output, [port]);
    publisher = await mqttPublisher(port);
  } catch (error) {
    await stop();
    throw error;
  }
  return { name: 'mosquitto', endpoint: { protocol: 'mqtt', host: '127.0.0.1', port, path: '', ...NO_ENDPOINT_EXTRAS }, pid: child.pid!, publisher, stop };
}

export async function startPeer(name: PeerName, runFrom: RunFrom): Promise<PeerServer> {
  switch (name) {
    case 'uws_raw':
    case 'ws':
      return startScriptPeer(name, runFrom);
    case 'nats_ws':
      return startNatsWs();
    case 'mosquitto':
      return startMosquitto();
  }
}
