/**
 * Vendor sends per second: our vendor clients (the real @parse/node-apn and firebase-admin, and our
 * Huawei and Xiaomi HTTPS client) against the local fakes of each vendor's wire protocol, in a
 * process of their own. A send is one notification reaching one token, BENCH_VENDOR_IN_FLIGHT of
 * them outstanding: APNs over one HTTP/2 connection (a stream per token), FCM as sendEach batches
 * over keep-alive HTTP/1.1 (a request per token), Huawei and Xiaomi a request per token (their
 * multicast of up to 1,000 tokens per request is not used, so the four figures compare).
 * Writes bench/results/vendor.json (apns_per_second, fcm_per_second, huawei_per_second,
 * xiaomi_per_second). The figures say what our side sustains on this machine; the real vendors'
 * quotas and latencies are not modelled.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { commonSpec, int, loadConfig, newId, type ChannelConfigs, type Vendor } from '@mps/shared';
import { apnsClient, fcmClient, huaweiClient, xiaomiClient, type Endpoints, type OutgoingMessage, type SendResult, type VendorClient } from '@mps/sender';

const spec = {
  LOG_LEVEL: commonSpec.LOG_LEVEL,
  BENCH_VENDOR_SENDS: int({ min: 100, default: 20_000, desc: 'sends per vendor in the measured run' }),
  BENCH_VENDOR_IN_FLIGHT: int({ min: 1, default: 500, desc: 'sends in flight at once' }),
  BENCH_VENDOR_BATCH: int({ min: 1, max: 500, default: 50, desc: 'APNs and FCM: tokens per client call (each still one request on the wire)' }),
};

const VENDORS: Vendor[] = ['apns', 'fcm', 'huawei', 'xiaomi'];

interface FakeProcess {
  endpoints: Endpoints;
  configs: ChannelConfigs;
  count(): Promise<Record<Vendor, number>>;
  stop(): Promise<void>;
}

async function startFakeProcess(): Promise<FakeProcess> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', 'bench/src/support/vendor-fakes.ts'], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  const first = JSON.parse(await next()) as { endpoints: Endpoints; configs: ChannelConfigs };
  return {
    ...first,
    count: async () => {
      const answer = next();
      child.stdin.write('count\n');
      return JSON.parse(await answer) as Record<Vendor, number>;
    },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
      }),
  };
}

function clientOf(vendor: Vendor, fakes: FakeProcess): VendorClient {
  const app = `bench-${vendor}`;
  switch (vendor) {
    case 'apns':
      return apnsClient(app, fakes.configs.apns, fakes.endpoints);
    case 'fcm':
      return fcmClient(app, fakes.configs.fcm, fakes.endpoints);
    case 'huawei':
      return huaweiClient(app, fakes.configs.huawei, fakes.endpoints);
    case 'xiaomi':
      return xiaomiClient(app, fakes.configs.xiaomi, fakes.endpoints);
  }
}

const tokenOf = (vendor: Vendor, i: number) =>
  vendor === 'apns' ? Buffer.from(`${i}`.padStart(32, '0')).toString('hex') : `${vendor}-bench-token-${i}`;

function message(i: number): OutgoingMessage {
  return {
    id: newId(),
    pushType: 'notification',
    content: { title: `Order ${i}`, body: 'Your order has shipped and arrives on Tuesday.', extras: { order: String(i) } },
    expiresAt: new Date(Date.now() + 3600_000),
    options: {},
  };
}

interface Run {
  sends: number;
  seconds: number;
  perSecond: number;
  failed: number;
  firstFailure: string | null;
}

/** `total` sends as client calls of `batch` tokens each, about `inFlight` sends outstanding. */
async function run(client: VendorClient, vendor: Vendor, total: number, inFlight: number, batch: number, offset: number): Promise<Run> {
  let next = 0;
  let failed = 0;
  let firstFailure: string | null = null;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < total) {
      const from = next;
      next = Math.min(total, next + batch);
      const tokens = Array.from({ length: next - from }, (_, k) => tokenOf(vendor, offset + from + k));
      const results: SendResult[] = await client.send(message(offset + from), tokens);
      for (const r of results) {
        if (r.status === 'sent') continue;
        failed++;
        firstFailure ??= `${r.status}: ${'reason' in r ? r.reason : ''}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(inFlight / batch)) }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { sends: total, seconds: Number(seconds.toFixed(3)), perSecond: Math.round((total - failed) / seconds), failed, firstFailure };
}

export async function main(): Promise<void> {
  const config = loadConfig(spec);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const fakes = await startFakeProcess();
  const runs: Partial<Record<Vendor, Run & { accepted_by_fake: number }>> = {};
  try {
    for (const vendor of VENDORS) {
      // A batch changes only how the client is called for APNs and FCM (each token is still its own
      // request); for Huawei and Xiaomi it would become one multicast request, so they get 1.
      const batch = vendor === 'huawei' || vendor === 'xiaomi' ? 1 : config.BENCH_VENDOR_BATCH;
      const client = clientOf(vendor, fakes);
      try {
        await run(client, vendor, Math.min(1000, config.BENCH_VENDOR_SENDS), config.BENCH_VENDOR_IN_FLIGHT, batch, 10_000_000);
        const before = (await fakes.count())[vendor];
        const measured = await run(client, vendor, config.BENCH_VENDOR_SENDS, config.BENCH_VENDOR_IN_FLIGHT, batch, 0);
        const accepted = (await fakes.count())[vendor] - before;
        runs[vendor] = { ...measured, accepted_by_fake: accepted };
        say(`${vendor}: ${measured.perSecond.toLocaleString('en-US')} sends/s (${measured.sends} in ${measured.seconds} s, ${measured.failed} failed, fake accepted ${accepted})`);
      } finally {
        await client.close();
      }
    }
  } finally {
    await fakes.stop();
  }
  const perSecond = (v: Vendor) => runs[v]?.perSecond ?? 0;
  const result = {
    name: 'vendor',
    date: new Date().toISOString(),
    machine: { cores: cpus().length, memory_bytes: totalmem(), load_average: loadavg().map((l) => Number(l.toFixed(2))) },
    params: { sends: config.BENCH_VENDOR_SENDS, in_flight: config.BENCH_VENDOR_IN_FLIGHT, batch: config.BENCH_VENDOR_BATCH },
    metrics: {
      apns_per_second: perSecond('apns'),
      fcm_per_second: perSecond('fcm'),
      huawei_per_second: perSecond('huawei'),
      xiaomi_per_second: perSecond('xiaomi'),
    },
    detail: runs,
    notes:
      'Our vendor clients against local fakes of each vendor (TLS on loopback, fakes in a separate process, 2 cores shared by both). ' +
      'Each send is one notification to one token: APNs through @parse/node-apn over one HTTP/2 connection (concurrent streams), ' +
      'FCM through firebase-admin sendEach (HTTP/1.1 keep-alive, one request per message), Huawei and Xiaomi one HTTPS request per token. ' +
      'The fakes check auth and payloads like the vendors but answer at once: real vendor latency and quotas are not modelled.',
  };
  await mkdir(new URL('../results/', import.meta.url), { recursive: true });
  await writeFile(new URL('../results/vendor.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  say(JSON.stringify(result.metrics));
}
