import { describe, expect, it } from 'vitest';
import { SDK_BACKOFF } from '../../../bench/src/loadgen/backoff.js';
import type { DeviceEpisode } from '../../../bench/src/loadgen/reconnecting-messages.js';
import { firstAttemptsAfter, histogram, ksDistance, ksUniform, largestSlotShare, normalizedDelays } from './spread.js';

const grid = (n: number) => Array.from({ length: n }, (_, i) => (i + 0.5) / n);
const episode = (e: Partial<DeviceEpisode>): DeviceEpisode => ({ device: 0, lost: 0, ready: null, losses: 1, attempts: [], failures: [], ...e });

describe('Kolmogorov-Smirnov distances', () => {
  it('are near 0 for a uniform sample and 1 for one outside [0, 1)', () => {
    expect(ksUniform(grid(1000))).toBeLessThan(0.001);
    expect(ksUniform(grid(1000).map((v) => v / 2))).toBeCloseTo(0.5, 2);
    // Late values count as the top of the distribution, not by how late they are.
    expect(ksUniform([...grid(99).map((v) => v * 0.99), 5])).toBeLessThan(0.02);
    expect(ksUniform([1.5, 2, 3])).toBe(1);
    expect(ksDistance(grid(100), grid(100))).toBe(0);
    expect(ksDistance([1, 2, 3], [10, 11])).toBe(1);
  });
});

describe('slots', () => {
  it('count instants per slot and find the largest share', () => {
    expect(histogram([0, 10, 260, 999, 5000], 0, 250, 4)).toEqual([2, 1, 0, 2]);
    expect(largestSlotShare([0, 10, 20, 300], 250)).toBe(0.75);
  });
});

describe('normalizedDelays', () => {
  it('divides each delay, from the loss or the last failure, by its step ceiling', () => {
    const e = episode({ lost: 1000, attempts: [1250, 2000, 4000], failures: [1300, 2100], due: [1240, 1990, 3900] });
    expect(normalizedDelays([e], SDK_BACKOFF, 'started')).toEqual([0.5, 0.7, 0.95]);
    expect(normalizedDelays([e], SDK_BACKOFF, 'due')).toEqual([0.48, 0.69, 0.9]);
    expect(normalizedDelays([e], SDK_BACKOFF, 'started', 1)).toEqual([0.7, 0.95]);
  });
});

describe('firstAttemptsAfter', () => {
  it("places each device's first attempt after the port opened in its full-jitter interval", () => {
    // Lost at 0; refused at 300 (step 0) and 900 (step 1); the port opened at 1000; next at 2400.
    const e = episode({ lost: 0, attempts: [300, 900, 2400], failures: [310, 910], ready: 2500 });
    const first = firstAttemptsAfter([e], 1000, SDK_BACKOFF, 4);
    expect(first.measured).toEqual([2400]);
    expect(first.conditioned).toEqual([2400]);
    // Step 2 after the failure at 910: uniform in [910, 2910), known to be past 1000.
    expect(first.position[0]).toBeCloseTo((2400 - 1000) / (2910 - 1000), 6);
    expect(first.predicted).toHaveLength(4);
    for (const t of first.predicted) expect(t >= 1000 && t < 2910).toBe(true);
    expect(first.early).toBe(0);
  });

  it('takes an attempt begun just before the probe saw the port open as it is', () => {
    const e = episode({ lost: 0, attempts: [300, 995], failures: [310], ready: 1100 });
    expect(firstAttemptsAfter([e], 1000, SDK_BACKOFF, 2)).toEqual({ measured: [995], conditioned: [], predicted: [], position: [], early: 1 });
  });
});
