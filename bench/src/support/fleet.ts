/**
 * A fleet of receiver processes (loadgen/receiver-client.ts) holding the sockets of one server under
 * test: started, connected, asked for fresh counts, and killed with the run.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Endpoint } from '../loadgen/protocols.js';
import type { FromReceiver, ReceiverConfig, ReceiverStatus, ToReceiver } from '../loadgen/receiver-messages.js';
import { newReceiverStatus } from '../loadgen/receiver-messages.js';
import { wallClockMs } from '../loadgen/stamp.js';
import { kill, ROOT, type Child, type RunFrom } from './processes.js';
import { sum } from './sampler.js';
import { sleep } from './util.js';

/** Sockets one receiver process holds at most: every process here may have 20,000 open files. */
export const MAX_SOCKETS_PER_RECEIVER = 19_000;

export interface FleetOptions {
  runFrom: RunFrom;
  endpoint: Endpoint;
  sockets: number;
  processes: number;
  /** The first device index (mps: of the run's seeded devices). */
  firstDevice?: number;
  inFlight: number;
  socketsPerAddress: number;
  stamps?: boolean;
}

interface Receiver extends Child {
  send(message: ToReceiver): void;
}

export interface ConnectResult {
  held: number;
  seconds: number;
  connects_per_second: number;
  failed: number;
  retries: number;
  reasons: Record<string, number>;
}

export class Fleet {
  private readonly statuses: ReceiverStatus[];
  private stampListener: ((samples: number[]) => void) | undefined;

  private constructor(
    readonly options: FleetOptions,
    private readonly receivers: Receiver[],
    readonly shares: number[],
  ) {
    this.statuses = receivers.map(() => newReceiverStatus());
    for (const [i, receiver] of receivers.entries()) {
      receiver.process.on('message', (raw) => {
        const message = raw as FromReceiver;
        if (message.type === 'status') this.statuses[i] = message;
        else if (message.type === 'stamps') this.stampListener?.(message.samples);
      });
    }
  }

  static async start(options: FleetOptions): Promise<Fleet> {
    const processes = Math.max(options.processes, Math.ceil(options.sockets / MAX_SOCKETS_PER_RECEIVER));
    const shares = Array.from({ length: processes }, (_, i) => Math.floor(options.sockets / processes) + (i < options.sockets % processes ? 1 : 0));
    const receivers: Receiver[] = [];
    const ready: Promise<void>[] = [];
    let first = options.firstDevice ?? 0;
    try {
      for (const share of shares) {
        const config: ReceiverConfig = {
          ...options.endpoint,
          firstDevice: first,
          devices: share,
          maxInFlight: options.inFlight,
          socketsPerAddress: options.socketsPerAddress,
          handshakeTimeoutMs: 60_000,
          maxAttempts: 3,
          stamps: options.stamps ?? false,
        };
        first += share;
        const receiver = await startReceiver(options.runFrom, config);
        receivers.push(receiver);
        ready.push(
          new Promise<void>((resolve, reject) => {
            receiver.process.on('message', (message: FromReceiver) => message.type === 'ready' && resolve());
            receiver.process.once('exit', () => reject(new Error(`receiver ${receiver.pid} exited:\n${receiver.output()}`)));
          }),
        );
      }
      await Promise.all(ready);
    } catch (error) {
      await kill(receivers);
      throw error;
    }
    return new Fleet(options, receivers, shares);
  }

  get pids(): number[] {
    return this.receivers.map((r) => r.pid);
  }

  get held(): number {
    return sum(this.statuses.map((s) => s.held));
  }

  get messages(): number {
    return sum(this.statuses.map((s) => s.messages));
  }

  get lastMessageAt(): number {
    return Math.max(0, ...this.statuses.map((s) => s.lastMessageAt));
  }

  get failures(): { failed: number; retries: number; dropped: number; reasons: Record<string, number> } {
    const reasons: Record<string, number> = {};
    for (const status of this.statuses) for (const [reason, n] of Object.entries(status.reasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
    return {
      failed: sum(this.statuses.map((s) => s.failed)),
      retries: sum(this.statuses.map((s) => s.retries)),
      dropped: sum(this.statuses.map((s) => s.dropped)),
      reasons,
    };
  }

  onStamps(listener: (samples: number[]) => void): void {
    this.stampListener = listener;
  }

  /** Asks every receiver for its status and waits until all have answered. */
  async refresh(): Promise<void> {
    const asked = wallClockMs();
    for (const receiver of this.receivers) receiver.send({ type: 'report' });
    // A receiver busy with a flood of messages answers late, but it answers.
    const deadline = Date.now() + 60_000;
    while (!this.statuses.every((s) => s.at >= asked)) {
      this.checkAlive();
      if (Date.now() > deadline) throw new Error('receivers did not report within 60 s');
      await sleep(5);
    }
  }

  /** Opens every socket and waits until each is held or has failed; `check` throws to give up. */
  async connect(check: () => void, log?: (line: string) => void): Promise<ConnectResult> {
    const started = performance.now();
    let logged = started;
    for (const [i, receiver] of this.receivers.entries()) receiver.send({ type: 'target', connections: this.shares[i]! });
    while (!this.statuses.every((s, i) => s.reached >= this.shares[i]!)) {
      this.checkAlive();
      check();
      if (log && performance.now() - logged > 30_000) {
        logged = performance.now();
        log(`  ${this.held} of ${sum(this.shares)} sockets held after ${Math.round((logged - started) / 1000)} s`);
      }
      await sleep(50);
    }
    const seconds = (performance.now() - started) / 1000;
    const failures = this.failures;
    return {
      held: this.held,
      seconds: Math.round(seconds * 100) / 100,
      connects_per_second: Math.round(this.held / seconds),
      failed: failures.failed,
      retries: failures.retries,
      reasons: failures.reasons,
    };
  }

  /**
   * Waits until `count` more messages than `before` have arrived, or `timeoutMs` passes;
   * returns the messages that arrived and the wall-clock time of the last one.
   */
  async waitForMessages(before: number, count: number, timeoutMs: number): Promise<{ arrived: number; lastAt: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages - before < count && Date.now() < deadline) {
      this.checkAlive();
      await sleep(20);
    }
    await this.refresh();
    return { arrived: this.messages - before, lastAt: this.lastMessageAt };
  }

  /** Waits until the count stops growing for `quietMs` (or `timeoutMs` passes). */
  async settle(quietMs: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let since = Date.now();
    while (Date.now() < deadline) {
      await this.refresh();
      if (this.messages !== last) {
        last = this.messages;
        since = Date.now();
      } else if (Date.now() - since >= quietMs) {
        return;
      }
      await sleep(100);
    }
  }

  private checkAlive(): void {
    const dead = this.receivers.find((r) => r.process.exitCode !== null || r.process.signalCode !== null);
    if (dead) throw new Error(`receiver ${dead.pid} exited:\n${dead.output()}`);
  }

  async kill(): Promise<void> {
    await kill(this.receivers);
  }
}

function capture(child: ChildProcess): () => string {
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

async function startReceiver(runFrom: RunFrom, config: ReceiverConfig): Promise<Receiver> {
  const [script, execArgv] =
    runFrom === 'source'
      ? [fileURLToPath(new URL('../loadgen/receiver-client.ts', import.meta.url)), ['--conditions=source', '--import', 'tsx']]
      : [`${ROOT}bench/dist/loadgen/receiver-client.js`, []];
  const child = fork(script, [JSON.stringify(config)], { cwd: ROOT, execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  if (child.pid === undefined) throw new Error('receiver process did not start');
  // Bench processes are the OOM killer's first choice, before PostgreSQL or NATS.
  await writeFile(`/proc/${child.pid}/oom_score_adj`, '1000').catch((error: unknown) => {
    process.stderr.write(`warning: cannot set oom_score_adj of ${child.pid}: ${String(error)}\n`);
  });
  return {
    process: child,
    pid: child.pid,
    output: capture(child),
    send: (message) => {
      if (child.connected) child.send(message);
    },
  };
}
