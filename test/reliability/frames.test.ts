/**
 * Scenario 9: hostile frames against a gateway process. A frame one byte over the limit, and four
 * times over; msgpack headers claiming a 4 GB string, array, map or bin; nesting 10,000 deep; text
 * frames; then a fuzz run of random and mutated frames (bounded in `make test`, 1,000,000 cases
 * under `make soak`), each on a socket of its own from a spread of source addresses. Every bad socket
 * gets a close code of the protocol (or, four times over the limit, a dropped connection as
 * documented); the gateway never dies or hangs; its memory stays bounded; a device connected all
 * along receives every push. The codec, the one boundary where bytes become frames, gets the same
 * cases in-process and may only throw its ProtocolError.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { CloseCode, closeInfo, decodeClientFrame, encodeFrame, FrameType, ProtocolError, type ClientFrame } from '@mps/shared';
import { quantile, record, sized } from './record.js';
import { Devices, startFleet, type Fleet } from './support/fleet.js';

const MAX_FRAME = 64 * 1024;
/** Cases over sockets (one connection each, about 500 a second here): RELIABILITY_FUZZ_SOCKET_CASES sets it, e.g. 1000000. */
const SOCKET_CASES = Number(process.env.RELIABILITY_FUZZ_SOCKET_CASES) || sized(1500, 250_000);
const CODEC_CASES = sized(50_000, 1_000_000);
const CONCURRENCY = sized(16, 48);
const RSS_BOUND_MB = 400;

let fleet: Fleet;
let control: Devices;
const outcomes: Record<string, number> = {};
const unexplained: string[] = [];
const rssSamples: number[] = [];
let checked = 0;

beforeAll(async () => {
  fleet = await startFleet({ gateways: 1, gatewayEnv: { GATEWAY_MAX_FRAMES_PER_S: '1000', GATEWAY_AUTH_TIMEOUT_MS: '2000' } });
  control = new Devices(() => fleet.gatewayUrl(), fleet.app.app);
  await control.connect(1);
}, 120_000);

afterAll(async () => {
  control?.close();
  await fleet?.stop();
});

const gatewayRssMb = (): number => {
  const pid = fleet.gateways()[0]!.service.child.pid;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};

interface Outcome {
  code: number;
  reason: string;
  /** The gateway answered READY (the mutated frame was a valid REGISTER). */
  ready: boolean;
}

let sourceAddress = 0;
/** One case: a new socket, the bytes, and what the gateway did. */
function oneShot(data: Uint8Array | string, ms = 15_000): Promise<Outcome | 'hang' | 'refused'> {
  // Source addresses 127.0.0.2-127.0.0.61: a million short connections need more than one port range.
  const localAddress = `127.0.0.${2 + (sourceAddress++ % 60)}`;
  return new Promise((resolve) => {
    const ws = new WebSocket(fleet.gatewayUrl(), { localAddress, maxPayload: 1024 * 1024 });
    let ready = false;
    const timer = setTimeout(() => {
      ws.terminate();
      resolve('hang');
    }, ms);
    ws.on('open', () => ws.send(data));
    ws.on('message', () => {
      ready = true;
      ws.close(1000);
    });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', () => {
      clearTimeout(timer);
      resolve('refused');
    });
    ws.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString(), ready });
    });
  });
}

/** Runs cases with bounded concurrency, classifying each outcome. */
async function runCases(label: string, count: number, make: (i: number) => { data: Uint8Array | string; expect?: number[] }): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const { data, expect: expected } = make(i);
      const outcome = await oneShot(data);
      checked += 1;
      const key = typeof outcome === 'string' ? outcome : outcome.ready ? 'ready' : `${outcome.code}${outcome.reason ? ` ${outcome.reason}` : ''}`;
      outcomes[`${label}: ${key}`] = (outcomes[`${label}: ${key}`] ?? 0) + 1;
      // A protocol close code, never 4013: a hostile frame must not make the gateway fail.
      const ok =
        typeof outcome !== 'string' &&
        (expected
          ? expected.includes(outcome.code)
          : outcome.ready || (outcome.code !== CloseCode.INTERNAL.code && closeInfo(outcome.code) !== undefined && outcome.reason === closeInfo(outcome.code)?.reason));
      if (!ok && unexplained.length < 50) unexplained.push(`${label} #${i}: ${JSON.stringify(outcome)} for ${Buffer.from(typeof data === 'string' ? Buffer.from(data) : data).subarray(0, 32).toString('hex')}`);
      if (i % 500 === 0) rssSamples.push(gatewayRssMb());
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

const u8 = (...parts: (number[] | Uint8Array)[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const fixstr = (s: string) => [0xa0 | s.length, ...Buffer.from(s)];

const SEEDS: ClientFrame[] = [
  { t: FrameType.REGISTER, v: 1, app: 'app_AAAAAAAAAAAAAAAA', platform: 'android' },
  { t: FrameType.AUTH, v: 1, app: 'app_AAAAAAAAAAAAAAAA', device: '0190a6f2-7b7e-7c4e-9f3a-1c2d3e4f5a6b', secret: 'x'.repeat(43), platform: 'ios' },
  { t: FrameType.ACK, ids: ['0190a6f3-0c1d-7a2b-8c3d-4e5f6a7b8c9d'] },
  { t: FrameType.PING },
  { t: FrameType.BIND, token: 'eyJhbGciOiJIUzI1NiJ9.e30.x' },
  { t: FrameType.TAGS, add: ['a', 'b'], remove: ['c'] },
  { t: FrameType.ATTRIBUTES, set: { tier: 'gold', city: null } },
  { t: FrameType.TRACK, events: [{ id: '0190a6f3-0c1d-7a2b-8c3d-4e5f6a7b8c9d', ev: 'opened', at: 1 }] },
  { t: FrameType.VENDOR_TOKEN, vendor: 'fcm', token: 'tok' },
];
const seedBytes = SEEDS.map((f) => encodeFrame(f));

/** A random frame: random bytes, or a valid frame with bytes flipped, inserted, cut or duplicated. */
function fuzzCase(i: number): Uint8Array {
  if (i % 4 === 0) return randomBytes(1 + Math.floor(Math.random() * 300));
  const seed = Buffer.from(seedBytes[i % seedBytes.length] as Uint8Array);
  const bytes = [...seed];
  const edits = 1 + Math.floor(Math.random() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(Math.random() * bytes.length);
    switch (Math.floor(Math.random() * 5)) {
      case 0:
        bytes[at] = Math.floor(Math.random() * 256);
        break;
      case 1:
        bytes.splice(at, 0, ...randomBytes(1 + Math.floor(Math.random() * 8)));
        break;
      case 2:
        bytes.splice(at, 1 + Math.floor(Math.random() * 4));
        break;
      case 3:
        bytes.length = Math.max(1, at);
        break;
      default:
        // A length prefix to its extremes.
        bytes.splice(at, 0, [0xdb, 0xdd, 0xdf, 0xc6][Math.floor(Math.random() * 4)]!, 0xff, 0xff, 0xff, 0xff);
    }
  }
  return Uint8Array.from(bytes.length === 0 ? [0xc1] : bytes);
}

it('keeps every codec failure inside ProtocolError', () => {
  let thrown = 0;
  const others: string[] = [];
  for (let i = 0; i < CODEC_CASES; i++) {
    try {
      decodeClientFrame(fuzzCase(i));
    } catch (error) {
      thrown += 1;
      if (!(error instanceof ProtocolError) && others.length < 10) others.push(String(error));
    }
  }
  outcomes['codec: cases'] = CODEC_CASES;
  outcomes['codec: refused'] = thrown;
  expect(others).toEqual([]);
  expect(thrown).toBeGreaterThan(CODEC_CASES / 2);
}, sized(60_000, 1_800_000));

it('closes every hostile socket with a code, and the gateway and other devices carry on', async () => {
  const f = fleet;
  onTestFailed(() => console.error(f.output().slice(-10_000)));
  rssSamples.push(gatewayRssMb());
  const api = f.api();

  // The control device receives a push every 200 ms throughout; its latency is recorded.
  const latencies: number[] = [];
  const sentIds: string[] = [];
  let pushing = true;
  const pusher = (async () => {
    while (pushing) {
      const started = Date.now();
      const before = control.shown[0]!.size;
      const r = await api.pushSimple({ target: { device: control.ids[0]! }, title: 'still here' });
      sentIds.push(r.messageId);
      await eventuallyShown(r.messageId);
      if (control.shown[0]!.size > before) latencies.push(Date.now() - started);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  let fuzzSeconds = 0;
  try {
    fuzzSeconds = await hostileCases();
  } finally {
    pushing = false;
    await pusher.catch(() => undefined);
  }
  const tally = control.tally([new Set(sentIds)]);
  const crashes = f.crashes();
  const maxRss = Math.max(...rssSamples);

  record('9-frames', {
    scenario: '9',
    title: 'Hostile frames: over the size limit, 4 GB headers, 10,000-deep nesting, random and mutated frames',
    injected: { socket_cases: checked, fuzz_socket_cases: SOCKET_CASES, codec_cases: CODEC_CASES, concurrency: CONCURRENCY },
    messages_checked: checked + tally.expected,
    lost: tally.lost,
    duplicates_shown: tally.duplicates,
    expired_shown: control.expiredShown,
    crashes,
    detail: {
      outcomes,
      unexplained,
      fuzz_cases_per_s: Math.round(SOCKET_CASES / fuzzSeconds),
      gateway_rss_mb: { first: Math.round(rssSamples[0]!), max: Math.round(maxRss), last: Math.round(rssSamples.at(-1)!) },
      control_device_pushes: tally.expected,
      control_push_to_shown_ms: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), samples: latencies.length },
    },
  });
  expect(unexplained).toEqual([]);
  expect(crashes).toBe(0);
  expect(maxRss).toBeLessThan(RSS_BOUND_MB);
  expect(tally).toMatchObject({ lost: 0, duplicates: 0 });
  expect(tally.expected).toBeGreaterThan(0);
  // Not hung: a new device registers and is pushed to.
  const fresh = new Devices(() => f.gatewayUrl(), f.app.app);
  await fresh.connect(1);
  const r = await api.pushSimple({ target: { device: fresh.ids[0]! }, title: 'after' });
  await fresh.settle([new Set([r.messageId])], 10_000);
  expect(fresh.tally([new Set([r.messageId])]).once).toBe(1);
  fresh.close();
}, sized(240_000, 3 * 3_600_000));

/** The fixed hostile cases, then the fuzz run; returns the fuzz run's seconds. */
async function hostileCases(): Promise<number> {
  const mapOf = (key: string, value: number[]) => u8([0x82], fixstr('t'), [FrameType.REGISTER], fixstr(key), value);
  await runCases('over limit by one byte', 5, () => ({ data: randomBytes(MAX_FRAME + 1), expect: [CloseCode.FRAME_TOO_LARGE.code] }));
  await runCases('exactly the limit, trailing bytes', 5, () => ({ data: u8([0x81], fixstr('t'), [0x04], new Uint8Array(MAX_FRAME - 4)) }));
  await runCases('four times over', 3, () => ({ data: randomBytes(4 * MAX_FRAME + 1), expect: [1006, 1009] }));
  await runCases('4 GB string header', 5, () => ({ data: mapOf('app', [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62]), expect: [CloseCode.BAD_FRAME.code] }));
  await runCases('4 GB array header', 5, () => ({ data: mapOf('app', [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]), expect: [CloseCode.BAD_FRAME.code] }));
  await runCases('4 GB map header', 5, () => ({ data: u8([0xdf, 0xff, 0xff, 0xff, 0xff], fixstr('t'), [0x01]), expect: [CloseCode.BAD_FRAME.code] }));
  await runCases('4 GB bin header', 5, () => ({ data: mapOf('app', [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]), expect: [CloseCode.BAD_FRAME.code] }));
  const deep = 10_000;
  await runCases('arrays nested 10,000 deep', 3, () => ({ data: u8(new Array(deep).fill(0x91), [0x01]) }));
  await runCases('maps nested 10,000 deep in a field', 3, () => ({
    data: u8([0x83], fixstr('t'), [FrameType.PING], fixstr('x'), ...new Array(deep).fill(u8([0x81], fixstr('a'))), [0xc0], fixstr('v'), [0x01]),
  }));
  await runCases('U+0000 in a string', 5, () => ({
    data: encodeFrame({ t: FrameType.REGISTER, v: 1, app: 'app_\u0000', platform: 'android' }),
    expect: [CloseCode.INVALID_FRAME.code],
  }));
  await runCases('text frame', 5, () => ({ data: '{"t":4}', expect: [CloseCode.BAD_FRAME.code] }));
  await runCases('empty frame', 5, () => ({ data: new Uint8Array(0) }));

  const started = Date.now();
  await runCases('fuzz', SOCKET_CASES, (i) => ({ data: fuzzCase(i) }));
  rssSamples.push(gatewayRssMb());
  return (Date.now() - started) / 1000;

}

async function eventuallyShown(id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!control.shown[0]!.has(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
