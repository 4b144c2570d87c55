/**
 * report: reads every results/*.json (or BENCH_RESULTS_DIR's) and writes REPORT.md beside them: per
 * benchmark a table of its figures with their targets and whether each is met, its notes, and PNG
 * plots (connections curve, latency distribution and latency by rate, fan-out stream, peer ratios).
 * `npm run bench -- report`.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChartOption } from './support/charts.js';
import { writePng } from './support/charts.js';
import { ascending, quantile, resultsDir } from './support/results.js';

type Json = Record<string, unknown>;

interface Target {
  text: string;
  met(value: number, metrics: Json): boolean;
}

/**
 * Targets of the issues that results do not carry themselves (newer results have a `targets` object;
 * where both exist the result's own word wins).
 */
const TARGETS: Record<string, Record<string, Target>> = {
  connections: {
    connections_held: { text: '1,000,000 per machine (DESIGN.md)', met: (v) => v >= 1_000_000 },
    gateway_rss_bytes_per_connection: { text: '< 3 KiB inside one full process (issue #3)', met: (v) => v < 3072 },
  },
  api: {
    signed_pushes_per_second: { text: '>= 20,000', met: (v) => v >= 20_000 },
  },
  analytics: {
    events_per_second: { text: '>= 500,000', met: (v) => v >= 500_000 },
    report_ms: { text: '<= 200 ms', met: (v) => v <= 200 },
  },
  loss: {
    lost: { text: '0', met: (v) => v === 0 },
    duplicates_shown: { text: '0', met: (v) => v === 0 },
    expired_shown: { text: '0', met: (v) => v === 0 },
  },
  fanout: {
    deliveries_per_second: { text: '> 1,000,000', met: (v) => v > 1_000_000 },
    broadcast_18k_last_ms: {
      text: '<= 1.25 x uws_raw_broadcast_18k_last_ms',
      met: (v, m) => v <= 1.25 * Number(m.uws_raw_broadcast_18k_last_ms),
    },
  },
  latency: {
    p99_ms: { text: '< 10 ms at 10,000 pushes/s', met: (v, m) => v < 10 && Number(m.rate_per_second) >= 10_000 },
    rate_per_second: { text: '>= 10,000 with p99 < 10 ms', met: (v) => v >= 10_000 },
  },
};

/**
 * Peer ratios, above 1 when ours does better. Issue #12: ours should beat every real peer and stay
 * within 0.8 of the bare uWS.js server, the ceiling of our stack.
 */
const PEER_RATIO = /^(.+)_(connect|memory|broadcast|stream)_ratio$/;
const peerTarget = (peer: string): Target =>
  peer === 'uws_raw' ? { text: '>= 0.8 (within 0.8 of the ceiling)', met: (v) => v >= 0.8 } : { text: '> 1 (ours ahead)', met: (v) => v > 1 };

const ORDER = ['connections', 'fanout', 'latency', 'peers', 'api', 'analytics', 'vendor', 'loss'];

const fmt = (v: unknown): string => {
  if (typeof v === 'number') return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 3 });
  if (v === null || v === undefined) return '—';
  return String(v);
};

const asObject = (v: unknown): Json => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const asArray = (v: unknown): Json[] => (Array.isArray(v) ? v.map(asObject) : []);
const num = (v: unknown): number => (typeof v === 'number' ? v : NaN);

function loadOf(result: Json): string {
  const machine = asObject(result.machine);
  const load = machine.load_average ?? machine.load_average_at_start;
  return Array.isArray(load) ? load.map((x) => fmt(x)).join(' / ') : 'not recorded';
}

function metricRows(name: string, result: Json): string[] {
  const metrics = asObject(result.metrics);
  const own = asObject(result.targets);
  const rows = ['| figure | value | target | met? |', '|---|---:|---|---|'];
  for (const [key, value] of Object.entries(metrics)) {
    let target = '—';
    let met = '—';
    const given = asObject(own[key]);
    const known = TARGETS[name]?.[key];
    const ratio = PEER_RATIO.exec(key);
    if (typeof given.target === 'string') {
      target = given.target;
      met = given.met === true ? 'yes' : 'no';
    } else if (known) {
      target = known.text;
      met = typeof value === 'number' && known.met(value, metrics) ? 'yes' : 'no';
    } else if (ratio) {
      const peer = peerTarget(ratio[1]!);
      target = peer.text;
      met = typeof value === 'number' && peer.met(value, metrics) ? 'yes' : 'no';
    }
    rows.push(`| \`${key}\` | ${fmt(value)} | ${target} | ${met} |`);
  }
  return rows;
}

async function connectionsChart(dir: string, result: Json): Promise<string | undefined> {
  const curve = asArray(result.curve);
  if (curve.length === 0) return undefined;
  const mib = (v: unknown) => Math.round(num(v) / 1024 / 1024);
  const option: ChartOption = {
    title: { text: 'Connections held: memory and connect rate', left: 'center' },
    legend: { top: 36 },
    grid: { top: 80, left: 80, right: 80, bottom: 60 },
    xAxis: { type: 'value', name: 'connections held', nameLocation: 'middle', nameGap: 30 },
    yAxis: [
      { type: 'value', name: 'MiB' },
      { type: 'value', name: 'connects/s', position: 'right', splitLine: { show: false } },
    ],
    series: [
      { name: 'gateways RSS (MiB)', type: 'line', data: curve.map((p) => [num(p.connections), mib(p.gateway_rss_bytes)]) },
      { name: 'machine used (MiB)', type: 'line', data: curve.map((p) => [num(p.connections), mib(p.machine_used_bytes)]) },
      { name: 'kernel TCP sockets (MiB)', type: 'line', data: curve.map((p) => [num(p.connections), mib(p.kernel_socket_bytes)]) },
      {
        name: 'connects/s during the step',
        type: 'bar',
        yAxisIndex: 1,
        barWidth: 8,
        data: curve.filter((p) => num(p.connects_per_second) > 0).map((p) => [num(p.connections), num(p.connects_per_second)]),
      },
    ],
  };
  await writePng(join(dir, 'connections.png'), option);
  return 'connections.png';
}

const PERCENTILES = [50, 75, 90, 95, 99, 99.5, 99.9, 99.99];

async function latencyCharts(dir: string, result: Json): Promise<string[]> {
  const steps = asArray(result.steps).filter((s) => Array.isArray(s.samples_ms) && (s.samples_ms as unknown[]).length > 0);
  if (steps.length === 0) return [];
  const distribution: ChartOption = {
    title: { text: 'End-to-end latency distribution (API call due -> device), by rate', left: 'center' },
    legend: { top: 36 },
    grid: { top: 80, left: 80, right: 40, bottom: 60 },
    xAxis: { type: 'category', name: 'percentile', nameLocation: 'middle', nameGap: 30, data: [...PERCENTILES.map((p) => `p${p}`), 'max'] },
    yAxis: { type: 'log', name: 'ms', min: 0.1 },
    series: steps.map((s) => {
      const sorted = ascending((s.samples_ms as number[]).filter((x) => Number.isFinite(x)));
      const scheduled = num(s.scheduled) || sorted.length;
      // A push not delivered counts as slower than all: those percentiles are left out of the line.
      const at = (q: number) => {
        const rank = Math.ceil((q / 100) * scheduled) - 1;
        return rank < sorted.length ? Math.max(0.1, sorted[Math.max(0, rank)]!) : null;
      };
      return {
        name: `${fmt(s.rate_per_second)}/s`,
        type: 'line',
        data: [...PERCENTILES.map(at), sorted.length === scheduled ? Math.max(0.1, sorted.at(-1)!) : null],
      };
    }),
  };
  await writePng(join(dir, 'latency.png'), distribution);
  const byRate: ChartOption = {
    title: { text: 'Latency percentiles by offered rate (signed API -> device)', left: 'center' },
    legend: { top: 36 },
    grid: { top: 80, left: 80, right: 40, bottom: 60 },
    xAxis: { type: 'log', name: 'pushes per second', nameLocation: 'middle', nameGap: 30 },
    yAxis: { type: 'log', name: 'ms', min: 0.1 },
    series: [
      ...(['p50_ms', 'p99_ms', 'p999_ms'] as const).map((key) => ({
        name: key.replace('_ms', ''),
        type: 'line' as const,
        data: steps.filter((s) => typeof s[key] === 'number').map((s) => [num(s.rate_per_second), Math.max(0.1, num(s[key]))]),
      })),
      {
        name: 'target p99 10 ms',
        type: 'line',
        symbol: 'none',
        lineStyle: { type: 'dashed' },
        data: [
          [Math.min(...steps.map((s) => num(s.rate_per_second))), 10],
          [10_000, 10],
        ],
      },
    ],
  };
  await writePng(join(dir, 'latency-rates.png'), byRate);
  return ['latency.png', 'latency-rates.png'];
}

async function fanoutChart(dir: string, result: Json): Promise<string | undefined> {
  const sizes = asArray(result.sizes).filter((s) => asArray(s.stream).length > 0);
  if (sizes.length === 0) return undefined;
  const all = sizes.flatMap((s) => asArray(s.stream).map((p) => num(p.offered_deliveries_per_second)));
  const option: ChartOption = {
    title: { text: 'Fan-out stream: deliveries per second, delivered vs offered', left: 'center' },
    legend: { top: 36 },
    grid: { top: 80, left: 90, right: 40, bottom: 60 },
    xAxis: { type: 'value', name: 'offered deliveries/s', nameLocation: 'middle', nameGap: 30 },
    yAxis: { type: 'value', name: 'delivered/s' },
    series: [
      ...sizes.map((s) => ({
        name: `${fmt(s.devices)} devices / ${fmt(s.gateways)} gw`,
        type: 'line' as const,
        data: asArray(s.stream).map((p) => [num(p.offered_deliveries_per_second), num(p.delivered_per_second)]),
      })),
      { name: 'delivered = offered', type: 'line', symbol: 'none', lineStyle: { type: 'dashed' }, data: [[0, 0], [Math.max(...all), Math.max(...all)]] },
      { name: 'target 1,000,000/s', type: 'line', symbol: 'none', lineStyle: { type: 'dotted' }, data: [[0, 1_000_000], [Math.max(...all), 1_000_000]] },
    ],
  };
  await writePng(join(dir, 'fanout.png'), option);
  return 'fanout.png';
}

async function peersChart(dir: string, result: Json): Promise<string | undefined> {
  const metrics = asObject(result.metrics);
  const peers = new Map<string, Record<string, number>>();
  for (const [key, value] of Object.entries(metrics)) {
    const m = PEER_RATIO.exec(key);
    if (!m || typeof value !== 'number') continue;
    peers.set(m[1]!, { ...peers.get(m[1]!), [m[2]!]: value });
  }
  if (peers.size === 0) return undefined;
  const workloads = ['broadcast', 'stream', 'connect', 'memory'];
  const option: ChartOption = {
    title: { text: 'Peers: their figure as a ratio to ours (above 1: ours better)', left: 'center' },
    legend: { top: 36 },
    grid: { top: 80, left: 60, right: 40, bottom: 50 },
    xAxis: { type: 'category', data: workloads },
    yAxis: { type: 'log', name: 'ratio (log)', min: 0.01 },
    series: [...peers.entries()].map(([peer, ratios]) => ({
      name: peer,
      type: 'bar' as const,
      data: workloads.map((w) => (ratios[w] !== undefined && ratios[w]! > 0 ? ratios[w]! : null)),
      markLine: { symbol: 'none', data: [{ yAxis: 1 }], lineStyle: { type: 'dashed' }, label: { show: false } },
    })),
  };
  await writePng(join(dir, 'peers.png'), option);
  return 'peers.png';
}

function latencyTable(result: Json): string[] {
  const steps = asArray(result.steps);
  if (steps.length === 0) return [];
  const rows = ['| rate/s | sent/s | delivered | unanswered | p50 ms | p99 ms | p999 ms | API answer p99 ms |', '|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const s of steps) {
    rows.push(
      `| ${fmt(s.rate_per_second)} | ${fmt(s.sent_per_second)} | ${fmt(s.delivered)}/${fmt(s.scheduled)} | ${fmt(s.unanswered)} | ${fmt(s.p50_ms)} | ${fmt(s.p99_ms)} | ${fmt(s.p999_ms)} | ${fmt(s.api_p99_ms)} |`,
    );
  }
  const sorted = ascending(steps.flatMap((s) => (Array.isArray(s.samples_ms) ? (s.samples_ms as number[]) : [])));
  if (sorted.length > 0) rows.push('', `All steps together: ${fmt(sorted.length)} samples, median ${fmt(quantile(sorted, 0.5))} ms.`);
  return ['', ...rows];
}

function fanoutTable(result: Json): string[] {
  const rows: string[] = [];
  for (const size of asArray(result.sizes)) {
    rows.push('', `${fmt(size.devices)} devices on ${fmt(size.gateways)} gateway process(es):`, '');
    rows.push('| offered/s | broadcasts/s | targeted/s | delivered/s | delivered within 15 s of the end | sustained |', '|---:|---:|---:|---:|---:|---|');
    for (const s of asArray(size.stream)) {
      rows.push(
        `| ${fmt(s.offered_deliveries_per_second)} | ${fmt(s.broadcasts_per_second)} | ${fmt(s.targeted_per_second)} | ${fmt(s.delivered_per_second)} | ${fmt(Math.round(num(s.delivered_fraction) * 1000) / 10)}% | ${s.sustained ? 'yes' : 'no'} |`,
      );
    }
  }
  return rows;
}

function peersTable(result: Json): string[] {
  const servers = asObject(result.servers);
  const names = Object.keys(servers);
  if (names.length === 0) return [];
  const rows = ['', '| server | connects/s | server RSS per socket (B) | one broadcast, last ms | stream deliveries/s |', '|---|---:|---:|---:|---:|'];
  for (const name of names) {
    const s = asObject(servers[name]);
    rows.push(`| ${name} | ${fmt(s.connects_per_second)} | ${fmt(s.rss_bytes_per_socket)} | ${fmt(s.broadcast_last_ms)} | ${fmt(s.stream_deliveries_per_second)} |`);
  }
  return rows;
}

export async function writeReport(dir = resultsDir()): Promise<string> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const results = new Map<string, Json>();
  for (const file of files) {
    const parsed = asObject(JSON.parse(await readFile(join(dir, file), 'utf8')));
    results.set(typeof parsed.name === 'string' ? parsed.name : file.slice(0, -5), parsed);
  }
  const names = [...results.keys()].sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));
  const lines = [
    '# Benchmark report',
    '',
    `Written by \`npm run bench -- report\` from the result files beside it (${names.map((n) => `${n}.json`).join(', ')}). ` +
      'Every figure comes from a run on this machine (loopback only); the machine is shared with other work, so each section gives the load average when its run started. ' +
      'Ratios of the peers bench are oriented so that above 1 means ours does better.',
    '',
    '## Summary',
    '',
    '| benchmark | figure | value | target | met? |',
    '|---|---|---:|---|---|',
  ];
  const sections: string[] = [];
  for (const name of names) {
    const result = results.get(name)!;
    const rows = metricRows(name, result);
    for (const row of rows.slice(2)) {
      if (!row.endsWith('| — |') || name === 'peers') lines.push(`| ${name} ${row}`);
    }
    const machine = asObject(result.machine);
    sections.push(
      '',
      `## ${name}`,
      '',
      `Run ${fmt(result.date)}; ${fmt(machine.cores)} cores, ${fmt(Math.round(num(machine.memory ?? machine.memory_bytes) / 2 ** 30))} GiB; load average at the start ${loadOf(result)}` +
        (result.commit ? `; commit ${fmt(result.commit)}` : '') +
        '.',
      '',
      ...rows,
    );
    const images: string[] = [];
    if (name === 'connections') images.push(...[await connectionsChart(dir, result)].filter((x): x is string => !!x));
    if (name === 'latency') {
      sections.push(...latencyTable(result));
      images.push(...(await latencyCharts(dir, result)));
    }
    if (name === 'fanout') {
      sections.push(...fanoutTable(result));
      images.push(...[await fanoutChart(dir, result)].filter((x): x is string => !!x));
    }
    if (name === 'peers') {
      sections.push(...peersTable(result));
      images.push(...[await peersChart(dir, result)].filter((x): x is string => !!x));
    }
    if (typeof result.notes === 'string' && result.notes) sections.push('', result.notes);
    for (const image of images) sections.push('', `![${name}](${image})`);
  }
  const path = join(dir, 'REPORT.md');
  await writeFile(path, `${[...lines, ...sections].join('\n')}\n`);
  return path;
}

export async function main(): Promise<void> {
  const path = await writeReport();
  console.log(`report: written to ${path}`);
}
