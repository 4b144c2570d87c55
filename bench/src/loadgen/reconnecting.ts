/**
 * The driver of reconnecting bench devices: forks the load-client processes (reconnecting-client.ts,
 * from the sources), gives each its range of devices, and gathers their status, episodes and
 * received counts. The devices must already be in the database (identity.ts's INSERT_DEVICES).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type {
  DeviceEpisode,
  FromReconnecting,
  ReceivedCounts,
  ReconnectingConfig,
  ReconnectingRequest,
  ReconnectingStatus,
} from './reconnecting-messages.js';

/** Devices per process: every process here may have 20,000 open files. */
export const DEVICES_PER_PROCESS = 19_000;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./reconnecting-client.ts', import.meta.url));

/** A request before the client numbers it. */
type Request<R = ReconnectingRequest> = R extends unknown ? Omit<R, 'seq'> : never;

class Client {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (body: unknown) => void; reject: (error: Error) => void }>();
  private output = '';
  readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    const keep = (d: Buffer) => (this.output = (this.output + d.toString()).slice(-8192));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.ready = new Promise((resolve, reject) => {
      child.on('message', (message: FromReconnecting) => {
        if (message.type === 'ready') return resolve();
        const waiter = this.waiting.get(message.seq);
        this.waiting.delete(message.seq);
        waiter?.resolve(message.body);
      });
      child.once('exit', (code, signal) => {
        const error = new Error(`reconnecting load client ${child.pid} exited (${code ?? signal}):\n${this.output}`);
        reject(error);
        for (const waiter of this.waiting.values()) waiter.reject(error);
        this.waiting.clear();
      });
    });
  }

  ask<T>(request: Request): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`reconnecting load client ${this.child.pid} is gone:\n${this.output}`));
      this.waiting.set(seq, { resolve: resolve as (body: unknown) => void, reject });
      this.child.send({ ...request, seq });
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }
}

export interface ReconnectingFleet {
  processes: number;
  /** Connects every device (paced), resolving once each one is READY or `ms` passed. */
  connect(ms: number): Promise<ReconnectingStatus>;
  status(): Promise<ReconnectingStatus>;
  mark(): Promise<void>;
  episode(): Promise<DeviceEpisode[]>;
  received(ids: string[]): Promise<ReceivedCounts>;
  /** Load-client processes that died. */
  crashed(): number;
  stop(): Promise<void>;
}

const sumStatus = (all: ReconnectingStatus[]): ReconnectingStatus => {
  const total: ReconnectingStatus = { devices: 0, ready: 0, connecting: 0, waiting: 0, stopped: 0, handshakes: 0, reasons: {}, lagMs: { p99: 0, max: 0 } };
  for (const s of all) {
    total.devices += s.devices;
    total.ready += s.ready;
    total.connecting += s.connecting;
    total.waiting += s.waiting;
    total.stopped += s.stopped;
    total.handshakes += s.handshakes;
    total.lagMs = { p99: Math.max(total.lagMs.p99, s.lagMs.p99), max: Math.max(total.lagMs.max, s.lagMs.max) };
    for (const [reason, n] of Object.entries(s.reasons)) total.reasons[reason] = (total.reasons[reason] ?? 0) + n;
  }
  return total;
};

/** Starts ceil(devices / DEVICES_PER_PROCESS) processes (at least `minProcesses`) for bench devices [0, devices). */
export async function startReconnectingDevices(
  base: Omit<ReconnectingConfig, 'firstDevice' | 'devices'>,
  devices: number,
  minProcesses = 1,
): Promise<ReconnectingFleet> {
  const processes = Math.max(minProcesses, Math.ceil(devices / DEVICES_PER_PROCESS));
  const clients: Client[] = [];
  for (let p = 0; p < processes; p++) {
    const firstDevice = Math.floor((devices * p) / processes);
    const config: ReconnectingConfig = { ...base, firstDevice, devices: Math.floor((devices * (p + 1)) / processes) - firstDevice };
    const child = fork(SCRIPT, [JSON.stringify(config)], {
      cwd: ROOT,
      execArgv: ['--conditions=source', '--import', 'tsx'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    clients.push(new Client(child));
  }
  const all = <T>(request: Request) => Promise.all(clients.map((c) => c.ask<T>(request)));
  const stop = async () => {
    await Promise.all(
      clients.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exited) return resolve();
            c.child.once('exit', () => resolve());
            c.child.kill('SIGKILL');
          }),
      ),
    );
  };
  try {
    await Promise.all(clients.map((c) => c.ready));
  } catch (error) {
    await stop();
    throw error;
  }
  const status = async () => sumStatus(await all<ReconnectingStatus>({ op: 'status' }));
  return {
    processes,
    connect: async (ms) => {
      await all({ op: 'connect' });
      const deadline = Date.now() + ms;
      for (;;) {
        const s = await status();
        if (s.ready + s.stopped === s.devices || Date.now() > deadline) return s;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    status,
    mark: async () => {
      await all({ op: 'mark' });
    },
    episode: async () => (await all<DeviceEpisode[]>({ op: 'episode' })).flat(),
    received: async (ids) => {
      const counts = await all<ReceivedCounts>({ op: 'received', ids });
      return counts.reduce((sum, c) => ({ once: sum.once + c.once, never: sum.never + c.never, more: sum.more + c.more, other: sum.other + c.other }));
    },
    crashed: () => clients.filter((c) => c.exited).length,
    stop,
  };
}
