/**
 * The loss test at full size (10,000 devices x 100 messages by default): the harness of the test
 * suite (test/support/loss.ts, which runs it small in `make test`) with real gateway and
 * control-plane processes, devices disconnecting and reconnecting at random while the messages go
 * out. Writes bench/results/loss.json with a flat `metrics` object: expected, acked_once,
 * duplicates_shown, expired_shown, lost. It imports the test tree, so it runs from source only.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { int, loadConfig } from '@mps/shared';
import { runLossTest } from '../../test/support/loss.js';

const spec = {
  BENCH_LOSS_DEVICES: int({ min: 2, default: 10_000, desc: 'devices, each a real SDK client' }),
  BENCH_LOSS_MESSAGES: int({ min: 10, default: 100, desc: 'messages per device (a tenth broadcasts, a third to users, the rest to the device)' }),
  BENCH_LOSS_GATEWAYS: int({ min: 1, default: 2, desc: 'gateway processes' }),
  BENCH_LOSS_DISCONNECTS_PER_S: int({ min: 1, default: 20, desc: 'random disconnects per second while sending' }),
  BENCH_LOSS_SETTLE_S: int({ min: 10, default: 900, desc: 'how long to wait at the end for everything to arrive' }),
};

export async function main(): Promise<void> {
  const config = loadConfig(spec);
  const say = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  const started = Date.now();
  const metrics = await runLossTest({
    devices: config.BENCH_LOSS_DEVICES,
    messagesPerDevice: config.BENCH_LOSS_MESSAGES,
    gateways: config.BENCH_LOSS_GATEWAYS,
    disconnectsPerSecond: config.BENCH_LOSS_DISCONNECTS_PER_S,
    settleMs: config.BENCH_LOSS_SETTLE_S * 1000,
    log: say,
  });
  const { expected, acked_once, duplicates_shown, expired_shown, lost, ...detail } = metrics;
  const result = {
    name: 'loss',
    date: new Date().toISOString(),
    machine: { cores: cpus().length, memory_bytes: totalmem(), load_average: loadavg().map((l) => Number(l.toFixed(2))) },
    params: {
      devices: config.BENCH_LOSS_DEVICES,
      messages_per_device: config.BENCH_LOSS_MESSAGES,
      gateways: config.BENCH_LOSS_GATEWAYS,
      disconnects_per_second: config.BENCH_LOSS_DISCONNECTS_PER_S,
    },
    metrics: { expected, acked_once, duplicates_shown, expired_shown, lost },
    detail: { ...detail, seconds: Math.round((Date.now() - started) / 1000) },
    notes:
      'Real gateway and control-plane processes, real SDK clients in the bench process. A (device, message) counts when the SDK showed it to the app; ' +
      'acked_once = shown exactly once; lost = expected but never shown by the end of the settle time.',
  };
  say(`loss: ${JSON.stringify(result.metrics)} ${JSON.stringify(result.detail)}`);
  await mkdir(new URL('../results/', import.meta.url), { recursive: true });
  await writeFile(new URL('../results/loss.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
}
