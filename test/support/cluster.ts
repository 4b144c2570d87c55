/**
 * The local cluster of `make cluster` (scripts/cluster.sh), started from a test: the script itself
 * runs, from the TypeScript sources, on ports and a folder of the test's own, and stops by itself
 * when the test process is gone or its time is up. What it started is read from its cluster.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './services.js';

export interface ClusterProcess {
  name: string;
  pid: number;
  port?: number;
  admin_port?: number;
  monitor_port?: number;
}

export interface ClusterInfo {
  dir: string;
  database: string;
  nats_urls: string;
  api_url: string;
  device_url: string;
  stats_url: string;
  credentials: string;
  processes: ClusterProcess[];
}

export interface Credentials {
  app: string;
  keyId: string;
  secret: string;
}

export interface LocalCluster {
  info: ClusterInfo;
  credentials: Credentials;
  process(name: string): ClusterProcess;
  /** What the script printed, and the tail of every process's log (for a failing test's report). */
  output(): Promise<string>;
  /** Stops the script (which stops everything it started and drops its database), then checks. */
  stop(): Promise<void>;
}

export interface ClusterOptions {
  gateways?: number;
  controlPlanes?: number;
  /** Seconds after which the cluster stops by itself, whatever happens to the test. */
  maxS?: number;
  env?: Record<string, string>;
  startTimeoutMs?: number;
}

const SCRIPT = join(ROOT, 'scripts/cluster.sh');

export async function startLocalCluster(options: ClusterOptions = {}): Promise<LocalCluster> {
  // A port base of its own, below the ephemeral range (32768 and up here) that busy clients use up:
  // the script refuses to start when one of its 83 ports is taken.
  for (let attempt = 1; ; attempt++) {
    const base = 10_000 + 100 * Math.floor(Math.random() * 220);
    try {
      return await startOnce(base, options);
    } catch (error) {
      if (attempt >= 3 || !(error instanceof PortTakenError)) throw error;
    }
  }
}

class PortTakenError extends Error {}

async function startOnce(base: number, options: ClusterOptions): Promise<LocalCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'mps-cluster-test-'));
  const child = spawn('bash', [SCRIPT], {
    cwd: ROOT,
    // Its own process group: the last resort of stop() kills the whole group.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      CLUSTER_RUN_FROM: 'src',
      CLUSTER_GATEWAYS: String(options.gateways ?? 2),
      CLUSTER_CONTROL_PLANES: String(options.controlPlanes ?? 2),
      CLUSTER_PORT_BASE: String(base),
      CLUSTER_DIR: dir,
      CLUSTER_MAX_S: String(options.maxS ?? 600),
      CLUSTER_PARENT_PID: String(process.pid),
      LOG_LEVEL: 'warn',
      ...options.env,
    },
  });
  let printed = '';
  child.stdout?.on('data', (d: Buffer) => (printed += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (printed += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(60_000).then(() => false)]);
      if (!done && child.pid) process.kill(-child.pid, 'SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };

  const file = join(dir, 'cluster.json');
  const deadline = Date.now() + (options.startTimeoutMs ?? 200_000);
  while (!existsSync(file)) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const message = `scripts/cluster.sh exited (${child.exitCode ?? child.signalCode}) before the cluster was up:\n${printed}\n${await logTails(dir)}`;
      await rm(dir, { recursive: true, force: true });
      throw /port \d+ is taken|address already in use/.test(message) ? new PortTakenError(message) : new Error(message);
    }
    if (Date.now() > deadline) {
      const logs = await logTails(dir);
      await stop();
      throw new Error(`the cluster was not up within ${options.startTimeoutMs ?? 200_000} ms:\n${printed}\n${logs}`);
    }
    await sleep(200);
  }
  const info = JSON.parse(await readFile(file, 'utf8')) as ClusterInfo;
  const credentials = JSON.parse(await readFile(info.credentials, 'utf8')) as Credentials;
  return {
    info,
    credentials,
    process: (name) => {
      const found = info.processes.find((p) => p.name === name);
      if (!found) throw new Error(`the cluster has no process ${name}`);
      return found;
    },
    output: async () => `${printed}\n${await logTails(dir)}`,
    stop: async () => {
      await stop();
      const left = info.processes.filter((p) => alive(p.pid));
      for (const p of left) process.kill(p.pid, 'SIGKILL');
      if (left.length > 0) throw new Error(`the cluster script left ${left.map((p) => p.name).join(', ')} running (killed now)`);
      if (exitedWith(child) !== 0) throw new Error(`scripts/cluster.sh exited with ${exitedWith(child)}:\n${printed}`);
    },
  };
}

function exitedWith(child: ChildProcess): number | string | null {
  return child.exitCode ?? child.signalCode;
}

async function logTails(dir: string): Promise<string> {
  const { readdir } = await import('node:fs/promises');
  const names = await readdir(join(dir, 'logs')).catch(() => [] as string[]);
  const tails = await Promise.all(
    names.map(async (name) => {
      const text = await readFile(join(dir, 'logs', name), 'utf8').catch(() => '');
      return `--- ${name}\n${text.split('\n').slice(-15).join('\n')}`;
    }),
  );
  return tails.join('\n');
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but is not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A gauge's value from a Prometheus text page, e.g. mps_gateway_connections. */
export async function gatewayMetric(adminPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} on the admin port ${adminPort}`);
  return Number(line.slice(name.length + 1));
}

/** The names of the client connections a nats-server holds (its monitoring endpoint's /connz). */
export async function natsConnectionNames(monitorPort: number): Promise<string[]> {
  const body = (await (await fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1000`)).json()) as { connections?: Array<{ name?: string }> };
  return (body.connections ?? []).map((c) => c.name ?? '');
}
