/**
 * How a crowd of devices came back after losing its gateway, against what the SDK's full-jitter
 * backoff predicts (docs/protocol.md section 13): histograms of instants, their largest slot,
 * Kolmogorov-Smirnov distances, the delays the devices waited, and where their first attempts
 * after the restart fell against where full jitter puts them.
 */
import { backoffCeiling, type Backoff } from '../../../bench/src/loadgen/backoff.js';
import type { DeviceEpisode } from '../../../bench/src/loadgen/reconnecting-messages.js';

/** Counts of `instants` in slots of `slotMs` from `from` (the last slot holds everything later). */
export function histogram(instants: readonly number[], from: number, slotMs: number, slots: number): number[] {
  const counts = new Array<number>(slots).fill(0);
  for (const t of instants) counts[Math.min(slots - 1, Math.max(0, Math.floor((t - from) / slotMs)))]! += 1;
  return counts;
}

/** The largest share of `instants` that falls in one slot of `slotMs` (slots aligned on the first instant). */
export function largestSlotShare(instants: readonly number[], slotMs: number): number {
  if (instants.length === 0) return 0;
  const from = instants.reduce((min, t) => Math.min(min, t), Infinity);
  const slots = new Map<number, number>();
  for (const t of instants) {
    const slot = Math.floor((t - from) / slotMs);
    slots.set(slot, (slots.get(slot) ?? 0) + 1);
  }
  return [...slots.values()].reduce((max, n) => Math.max(max, n), 0) / instants.length;
}

/** The two-sample Kolmogorov-Smirnov distance: the largest gap between the two empirical CDFs. */
export function ksDistance(a: readonly number[], b: readonly number[]): number {
  const x = [...a].sort((p, q) => p - q);
  const y = [...b].sort((p, q) => p - q);
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  return d;
}

/** The Kolmogorov-Smirnov distance of `values` from the uniform distribution on [0, 1). */
export function ksUniform(values: readonly number[]): number {
  const x = [...values].sort((p, q) => p - q);
  const cdf = (v: number) => Math.min(1, Math.max(0, v));
  return x.reduce((d, v, i) => Math.max(d, Math.abs((i + 1) / x.length - cdf(v)), Math.abs(cdf(v) - i / x.length)), 0);
}

/** The critical KS distance at significance 0.001: one sample of n against a distribution, or samples of n and m. */
export const ksCritical = (n: number, m?: number): number => 1.949 * Math.sqrt(m === undefined ? 1 / n : (n + m) / (n * m));

/**
 * Each delay a device waited before an attempt, from the loss of its connection or the end of its
 * previous failed attempt, divided by the ceiling of that step: uniform on [0, 1) under full
 * jitter. `until: 'due'` takes the instant the attempt was due instead of the one it started at,
 * which leaves out how late a busy client ran its timers. `fromStep` skips the first steps.
 */
export function normalizedDelays(episodes: readonly DeviceEpisode[], backoff: Backoff, until: 'started' | 'due', fromStep = 0): number[] {
  const delays: number[] = [];
  for (const e of episodes) {
    if (e.lost === null) continue;
    const lost = e.lost;
    const at = until === 'due' ? (e.due ?? []) : e.attempts;
    const starts = at.filter((_, n) => (e.attempts[n] as number) > lost);
    const ends = [lost, ...e.failures.filter((t) => t > lost)];
    for (let k = fromStep; k < starts.length && k < ends.length; k++) {
      delays.push((starts[k]! - ends[k]!) / backoffCeiling(k, backoff));
    }
  }
  return delays;
}

/** How late each attempt started after it was due (ms), where the client says when it was due. */
export const lateness = (episodes: readonly DeviceEpisode[]): number[] =>
  episodes.flatMap((e) => (e.due ?? []).map((due, n) => (e.attempts[n] as number) - due));

/**
 * Each device's first attempt once the port accepted again (at `upAt`), and where full jitter puts
 * it given the device's own history: after its last failure before `upAt` (or the loss), at step k,
 * the next attempt is uniform in [end, end + ceiling(k)); knowing it came at or after `upAt`, it is
 * uniform in [upAt, end + ceiling(k)). The attempt is placed at the instant it was due where the
 * client says so (a busy load client may run the timer late; real devices do not share a CPU), else
 * where it started. For each device with such an interval, `conditioned` has the instant,
 * `position` where it fell in the interval (uniform on [0, 1) under full jitter) and `predicted`
 * `draws` instants drawn from it. `measured` has every device's first attempt; `early` counts those
 * without an interval: in with an attempt begun before the probe saw the port open, or one a late
 * client clock pushed past its interval.
 */
export function firstAttemptsAfter(episodes: readonly DeviceEpisode[], upAt: number, backoff: Backoff, draws = 5) {
  const measured: number[] = [];
  const conditioned: number[] = [];
  const predicted: number[] = [];
  const position: number[] = [];
  let early = 0;
  for (const e of episodes) {
    if (e.lost === null) continue;
    const lost = e.lost;
    const after = e.attempts.flatMap((start, n) => (start > lost ? [{ start, at: e.due?.[n] ?? start }] : []));
    const ends = [lost, ...e.failures.filter((t) => t > lost)];
    // Attempt j follows ends[j] (the loss, or the failure of attempt j - 1) at step j.
    const j = after.findIndex((a) => a.start >= upAt);
    const next = (j < 0 ? after[after.length - 1] : after[j])?.at;
    if (next === undefined) continue;
    measured.push(next);
    const lower = Math.max(upAt, ends[j] ?? Infinity);
    const latest = (ends[j] ?? -Infinity) + backoffCeiling(j, backoff);
    if (j < 0 || latest <= lower) {
      early += 1;
      continue;
    }
    conditioned.push(next);
    position.push(Math.min(1, Math.max(0, (next - lower) / (latest - lower))));
    for (let d = 0; d < draws; d++) predicted.push(lower + Math.random() * (latest - lower));
  }
  return { measured, conditioned, predicted, position, early };
}

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

/** A spread's figures for the record: slot histogram (shares), largest slot, against a prediction. */
export function describeSpread(measured: readonly number[], predicted: readonly number[], from: number, slotMs: number, slots: number) {
  const share = (counts: number[], n: number) => counts.map((c) => round(c / Math.max(1, n)));
  return {
    slot_ms: slotMs,
    measured_shares: share(histogram(measured, from, slotMs, slots), measured.length),
    predicted_shares: share(histogram(predicted, from, slotMs, slots), predicted.length),
    largest_slot_share: round(largestSlotShare(measured, slotMs)),
    predicted_largest_slot_share: round(largestSlotShare(predicted, slotMs)),
    ks_distance_from_prediction: round(ksDistance(measured, predicted)),
    ks_critical_alpha_0_001: round(ksCritical(measured.length, predicted.length)),
  };
}
