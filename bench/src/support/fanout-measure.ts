/**
 * The two fan-out workloads, for any server a Fleet holds sockets on (our gateways or a peer):
 * - one broadcast: the time from handing it to the server until the last socket has it;
 * - a stream: broadcasts (and, for our gateways, targeted pushes) at a fixed offered rate on a fixed
 *   tick; deliveries counted by the receivers per second over the steady part of the run.
 */
import { encodeMessage, newId } from '@mps/shared';
import { wallClockMs } from '../loadgen/stamp.js';
import type { Fleet } from './fleet.js';
import { busyShare, cpuSeconds, machineCpu } from './procfs.js';
import { round } from './results.js';
import { sum } from './sampler.js';
import { sleep } from './util.js';

/** A MESSAGE frame as the control plane encodes it (about 110 bytes), with a new id. */
export function messageFrame(text = 'fan-out bench message'): Uint8Array {
  return encodeMessage({
    id: newId(),
    pushType: 'notification',
    content: { title: 'bench', body: text },
    expiresAt: new Date(Date.now() + 3_600_000),
  });
}

export interface BroadcastTimings {
  /** ms from the publish until the last socket had it, one per broadcast. */
  samples_ms: number[];
  median_ms: number;
  /** Broadcasts that did not reach every socket within the timeout (their sample is the timeout). */
  incomplete: number;
}

/** Times `repeat` broadcasts, one at a time; `publish` hands one frame to the server. */
export async function timeBroadcasts(
  fleet: Fleet,
  publish: (frame: Uint8Array) => void | Promise<unknown>,
  options: { repeat: number; pauseMs: number; timeoutMs: number },
): Promise<BroadcastTimings> {
  const samples: number[] = [];
  let incomplete = 0;
  for (let i = 0; i < options.repeat; i++) samples.push(await timeOneBroadcast(fleet, publish, options.timeoutMs, () => incomplete++));
  await sleep(options.pauseMs);
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples_ms: samples, median_ms: sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN, incomplete };
}

/** One broadcast: ms from its publish until the last of the held sockets had it. */
export async function timeOneBroadcast(
  fleet: Fleet,
  publish: (frame: Uint8Array) => void | Promise<unknown>,
  timeoutMs: number,
  onIncomplete: () => void = () => undefined,
): Promise<number> {
  const frame = messageFrame();
  await fleet.settle(300, 5000);
  const before = fleet.messages;
  const expected = fleet.held;
  const started = wallClockMs();
  await publish(frame);
  const { arrived, lastAt } = await fleet.waitForMessages(before, expected, timeoutMs);
  if (arrived < expected) {
    onIncomplete();
    return timeoutMs;
  }
  return round(lastAt - started, 1);
}

export interface StreamOptions {
  /** Broadcasts per second (fractions accumulate over ticks). */
  broadcastsPerSecond: number;
  /** Targeted pushes per second, one device each (0: none). */
  targetedPerSecond: number;
  seconds: number;
  warmupSeconds: number;
  tickMs: number;
  publishBroadcasts(frames: Uint8Array[]): void;
  publishTargeted?(count: number): void;
  /** Processes whose CPU time is reported, by name. */
  cpuOf: Record<string, number[]>;
}

export interface StreamStep {
  broadcasts_per_second: number;
  targeted_per_second: number;
  devices: number;
  offered_deliveries_per_second: number;
  /** Deliveries counted per second over the measured window (after the warm-up). */
  delivered_per_second: number;
  /**
   * Of everything published, the share delivered by the time the counts settled after the stream
   * stopped (quiet for 1 s, or 15 s at most): below 1, a backlog still draining or messages lost.
   */
  delivered_fraction: number;
  /** Delivered at least 95% of the offered rate during the window and 99% of everything by the end. */
  sustained: boolean;
  window_s: number;
  /** Shares of one core used during the window, by process group, and the machine's busy share (all cores). */
  cpu: Record<string, number>;
}

export async function runStream(fleet: Fleet, options: StreamOptions): Promise<StreamStep> {
  await fleet.settle(300, 10_000);
  const devices = fleet.held;
  const base = fleet.messages;
  let broadcasts = 0;
  let targeted = 0;
  const started = performance.now();
  const total = options.warmupSeconds + options.seconds;
  let window: { messages: number; at: number; broadcasts: number; targeted: number; cpu: Record<string, number>; machine: { busy: number; total: number } } | undefined;
  const cpuNow = async () => {
    const cpu: Record<string, number> = {};
    for (const [name, pids] of Object.entries(options.cpuOf)) cpu[name] = sum(await Promise.all(pids.map(cpuSeconds)));
    return cpu;
  };
  // A paced publisher: on each tick, whatever the schedule says is due (so a late tick catches up).
  for (;;) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= total) break;
    const dueBroadcasts = Math.floor(elapsed * options.broadcastsPerSecond) - broadcasts;
    if (dueBroadcasts > 0) {
      options.publishBroadcasts(Array.from({ length: dueBroadcasts }, () => messageFrame()));
      broadcasts += dueBroadcasts;
    }
    const dueTargeted = Math.floor(elapsed * options.targetedPerSecond) - targeted;
    if (dueTargeted > 0 && options.publishTargeted) {
      options.publishTargeted(dueTargeted);
      targeted += dueTargeted;
    }
    if (!window && elapsed >= options.warmupSeconds) {
      await fleet.refresh();
      window = { messages: fleet.messages, at: wallClockMs(), broadcasts, targeted, cpu: await cpuNow(), machine: await machineCpu() };
    }
    await sleep(options.tickMs);
  }
  await fleet.refresh();
  const end = { messages: fleet.messages, at: wallClockMs(), cpu: await cpuNow(), machine: await machineCpu() };
  const start = window ?? { messages: base, at: end.at, broadcasts: 0, targeted: 0, cpu: end.cpu, machine: end.machine };
  const windowS = (end.at - start.at) / 1000;
  const deliveredPerSecond = windowS > 0 ? (end.messages - start.messages) / windowS : 0;
  const offeredPerSecond = options.broadcastsPerSecond * devices + options.targetedPerSecond;
  await fleet.settle(1000, 15_000);
  const expected = broadcasts * devices + targeted;
  const fraction = expected > 0 ? (fleet.messages - base) / expected : 1;
  const cpu: Record<string, number> = {};
  for (const name of Object.keys(end.cpu)) cpu[name] = windowS > 0 ? round((end.cpu[name]! - start.cpu[name]!) / windowS, 3) : 0;
  cpu.machine_busy = round(busyShare(start.machine, end.machine), 3);
  return {
    broadcasts_per_second: round(options.broadcastsPerSecond, 2),
    targeted_per_second: options.targetedPerSecond,
    devices,
    offered_deliveries_per_second: Math.round(offeredPerSecond),
    delivered_per_second: Math.round(deliveredPerSecond),
    delivered_fraction: round(fraction, 4),
    sustained: deliveredPerSecond >= 0.95 * offeredPerSecond && fraction >= 0.99,
    window_s: round(windowS, 2),
    cpu,
  };
}
