/**
 * `npm run bench -- NAME`: runs the main() of bench/src/NAME.ts. With BENCH_SETTLE_S (make bench
 * sets it), it first waits, for at most that many seconds, until the machine is quiet: the bench
 * before it may leave work behind (a million sockets closing, a database dropped, processes
 * exiting) that would otherwise land in this one's figures.
 */
import { readdir } from 'node:fs/promises';
import { busyShare, machineCpu } from './support/procfs.js';
import { sleep } from './support/util.js';

/** Quiet: under this share of the machine's CPU busy over one window. */
const QUIET_BUSY = 0.15;
const WINDOW_MS = 2000;

async function settle(maxS: number): Promise<void> {
  const started = Date.now();
  let busy = 1;
  while (Date.now() - started < maxS * 1000) {
    const before = await machineCpu();
    await sleep(WINDOW_MS);
    const after = await machineCpu();
    busy = busyShare(before, after);
    if (busy < QUIET_BUSY) break;
  }
  const waited = Math.round((Date.now() - started) / 1000);
  process.stderr.write(
    busy < QUIET_BUSY
      ? `machine quiet (${Math.round(busy * 100)}% busy) after ${waited} s\n`
      : `machine still ${Math.round(busy * 100)}% busy after ${waited} s (BENCH_SETTLE_S); going on\n`,
  );
}

const name = process.argv[2] ?? '';
const benches = (await readdir(new URL('.', import.meta.url)))
  .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && file !== 'run.ts')
  .map((file) => file.slice(0, -3));
if (!benches.includes(name)) {
  process.stderr.write(`usage: npm run bench -- NAME, where NAME is one of: ${benches.join(', ')}\n`);
  process.exit(2);
}
const settleS = Number(process.env.BENCH_SETTLE_S ?? 0);
if (!Number.isFinite(settleS) || settleS < 0) {
  process.stderr.write(`BENCH_SETTLE_S must be a number of seconds, not ${process.env.BENCH_SETTLE_S}\n`);
  process.exit(2);
}
if (settleS > 0) await settle(settleS);
const bench = (await import(`./${name}.js`)) as { main(): Promise<void> };
await bench.main();
