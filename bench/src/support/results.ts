/**
 * Where bench results go (bench/results, or BENCH_RESULTS_DIR, as `make bench-smoke` sets so that a
 * smoke run never overwrites the committed figures) and what every result records about its run.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './processes.js';

export function resultsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.BENCH_RESULTS_DIR || join(ROOT, 'bench/results');
}

export const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

export interface Machine {
  cores: number;
  memory: number;
  kernel: string;
  node: string;
  /** 1, 5 and 15 minute load averages when the run started: the machine is shared. */
  load_average: number[];
}

export function machineInfo(): Machine {
  return {
    cores: availableParallelism(),
    memory: totalmem(),
    kernel: release(),
    node: process.version,
    load_average: loadavg().map((x) => round(x)),
  };
}

/** The commit measured, and whether the tree differs from it where the measured code lives. */
export function gitCommit(): string {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  try {
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'gateway', 'control-plane', 'shared', 'bench/src') !== '';
    return dirty ? `${commit} with uncommitted changes in gateway/, control-plane/, shared/ or bench/src/` : commit;
  } catch (error) {
    return `unknown (${(error as Error).message.split('\n')[0]})`;
  }
}

/** Writes NAME.json into the results directory and returns its path. */
export async function writeResult(name: string, result: unknown, dir = resultsDir()): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}

/** The value at quantile q (0..1) of ascending `sorted`, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export const ascending = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);

export function medianOf(values: readonly number[]): number {
  return quantile(ascending(values), 0.5);
}
