/**
 * What every reliability scenario shares: its size (CI size by default, full size under
 * `RELIABILITY_SCALE=full`) and the record of what it injected and what it counted, one JSON file
 * per scenario in `RELIABILITY_RESULTS_DIR` (a folder under the system's temp dir by default, so
 * that `make test` never touches bench/results; `npm run bench -- reliability` collects the files
 * into bench/results/reliability.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const FULL = process.env.RELIABILITY_SCALE === 'full';
export const SCALE: 'ci' | 'full' = FULL ? 'full' : 'ci';

/** `ci` in `make test`, `full` under `make soak`. */
export const sized = <T>(ci: T, full: T): T => (FULL ? full : ci);

export function resultsDir(): string {
  return process.env.RELIABILITY_RESULTS_DIR || join(tmpdir(), 'mps-reliability');
}

/** The counts every scenario reports; a scenario that checks requests or frames counts those as messages. */
export interface Counts {
  /** Messages (or requests, frames) whose outcome the scenario checked. */
  messages_checked: number;
  /** Due to a device and never shown, or accepted by the API and never delivered, with no gap or expiry record. */
  lost: number;
  /** Shown by the SDK more than once (after its dedup). */
  duplicates_shown: number;
  /** Shown although past their expiry. */
  expired_shown: number;
  /** Service processes (or the in-process gateway/control plane) that died or stopped answering, not killed by the test. */
  crashes: number;
}

export interface ScenarioRecord extends Counts {
  /** Issue #10's number of the scenario, e.g. "1" or "9". */
  scenario: string;
  title: string;
  /** What the scenario did to the system: kills, restarts, outages, hostile inputs, with their numbers. */
  injected: Record<string, unknown>;
  /** Further figures (latencies, memory, per-case outcomes): recorded, never asserted as timings. */
  detail?: Record<string, unknown>;
}

/**
 * Records one scenario's result (its file is overwritten by a later run of the same scenario).
 * `key` names the file: a scenario with several parts records each under its own key.
 */
export function record(key: string, result: Omit<ScenarioRecord, 'scale' | 'recorded_at'>): ScenarioRecord {
  const dir = resultsDir();
  mkdirSync(dir, { recursive: true });
  const full = { ...result, scale: SCALE, recorded_at: new Date().toISOString() };
  writeFileSync(join(dir, `${key}.json`), `${JSON.stringify(full, null, 2)}\n`);
  console.log(`reliability ${key}: ${JSON.stringify({ ...pick(result), injected: result.injected })}`);
  return full;
}

const pick = (c: Counts): Counts => ({
  messages_checked: c.messages_checked,
  lost: c.lost,
  duplicates_shown: c.duplicates_shown,
  expired_shown: c.expired_shown,
  crashes: c.crashes,
});

/** The nearest-rank quantile of `values` (for latency figures in `detail`). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
