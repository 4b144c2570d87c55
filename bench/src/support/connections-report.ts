/** The connections bench's result file, and the words that explain it. */
import { availableParallelism, loadavg, totalmem } from 'node:os';
import type { ClientStatus } from '../loadgen/messages.js';
import { median, sum, type Sample } from './sampler.js';
import { formatBytes, formatCount } from './util.js';

export interface CurvePoint {
  connections: number;
  gateway_rss_bytes: number;
  machine_used_bytes: number;
  gateway_cpu_s: number;
  client_rss_bytes: number;
  nats_rss_bytes: number;
  /** TCP sockets in the kernel (/proc/net/sockstat): two per loopback connection. */
  tcp_sockets: number;
  /** Kernel slab objects and buffers of all TCP sockets (procfs.ts kernelSocketBytes). */
  kernel_socket_bytes: number;
  pg_connections: number;
  elapsed_s: number;
  /** Handshakes per second while this step ramped (0 for the idle and hold points). */
  connects_per_second: number;
}

export interface GatewayFigures {
  pid: number;
  /** Open files at full load minus open files idle: its device sockets. */
  connections: number;
  rss_idle_bytes: number;
  rss_full_bytes: number;
  rss_bytes_per_connection: number;
}

export interface ConnectionsResult {
  name: 'connections';
  date: string;
  machine: { cores: number; memory: number; load_average_at_start: number[] };
  params: Record<string, string | number>;
  metrics: {
    connections_held: number;
    gateway_rss_bytes_per_connection: number;
    connects_per_second: number;
    machine_bytes_per_connection: number;
  };
  curve: CurvePoint[];
  gateways: GatewayFigures[];
  /** Bytes per held connection by where they went; rest = machine - the others (PostgreSQL, page tables, other programs' churn, ...). */
  breakdown: { gateways: number; load_clients: number; nats: number; kernel_sockets: number; rest: number; server_side: number };
  /** Shares of the machine's CPU capacity while devices connected. */
  ramp_cpu: Record<string, number>;
  failures: { failed: number; retries: number; dropped: number; reasons: Record<string, number> };
  notes: string;
}

export type StopReason = 'memory' | 'time' | 'stalled' | 'interrupted';

export interface Measured {
  params: Record<string, string | number>;
  requested: number;
  minAvailableBytes: number;
  loadAverage: number[];
  idle: Sample;
  full: Sample;
  curve: CurvePoint[];
  statuses: ClientStatus[];
  gatewayPids: number[];
  connectsPerSecond: number;
  rampCpu: Record<string, number>;
  stopReason: StopReason | undefined;
  natsRttMs: number;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

export function curvePoint(s: Sample, connectsPerSecond: number): CurvePoint {
  return {
    connections: s.held,
    gateway_rss_bytes: sum(s.gateways.map((g) => g.rss)),
    machine_used_bytes: s.memory.used,
    gateway_cpu_s: round(sum(s.gateways.map((g) => g.cpu)), 2),
    client_rss_bytes: s.clientRss,
    nats_rss_bytes: s.natsRss,
    tcp_sockets: s.tcpSockets,
    kernel_socket_bytes: s.kernelSocketBytes,
    pg_connections: s.pgConnections,
    elapsed_s: round(s.at / 1000, 1),
    connects_per_second: Math.round(connectsPerSecond),
  };
}

export function buildResult(m: Measured): ConnectionsResult {
  const { idle, full } = m;
  const gateways = m.gatewayPids.map((pid, i): GatewayFigures => {
    const before = idle.gateways[i]!;
    const after = full.gateways[i]!;
    const connections = after.openFiles - before.openFiles;
    return {
      pid,
      connections,
      rss_idle_bytes: before.rss,
      rss_full_bytes: after.rss,
      rss_bytes_per_connection: connections > 0 ? Math.round((after.rss - before.rss) / connections) : 0,
    };
  });
  const held = full.held;
  const perConnection = (bytes: number) => (held > 0 ? Math.round(bytes / held) : 0);
  const machine = perConnection(full.memory.used - idle.memory.used);
  const breakdown = {
    gateways: perConnection(sum(full.gateways.map((g) => g.rss)) - sum(idle.gateways.map((g) => g.rss))),
    load_clients: perConnection(full.clientRss - idle.clientRss),
    nats: perConnection(full.natsRss - idle.natsRss),
    kernel_sockets: perConnection(full.kernelSocketBytes - idle.kernelSocketBytes),
    rest: 0,
    server_side: 0,
  };
  // What a deployment pays per device on its gateway machines: no load clients, one socket end.
  breakdown.server_side = breakdown.gateways + breakdown.nats + Math.round(breakdown.kernel_sockets / 2);
  breakdown.rest = machine - breakdown.gateways - breakdown.load_clients - breakdown.nats - breakdown.kernel_sockets;
  const reasons: Record<string, number> = {};
  for (const status of m.statuses) {
    for (const [reason, n] of Object.entries(status.reasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
  }
  const result: ConnectionsResult = {
    name: 'connections',
    date: new Date().toISOString(),
    machine: { cores: availableParallelism(), memory: totalmem(), load_average_at_start: m.loadAverage.map((x) => round(x, 2)) },
    params: m.params,
    metrics: {
      connections_held: held,
      gateway_rss_bytes_per_connection: Math.round(median(gateways.filter((g) => g.connections > 0).map((g) => g.rss_bytes_per_connection))),
      connects_per_second: Math.round(m.connectsPerSecond),
      machine_bytes_per_connection: machine,
    },
    curve: m.curve,
    gateways,
    breakdown,
    ramp_cpu: m.rampCpu,
    failures: {
      failed: sum(m.statuses.map((s) => s.failed)),
      retries: sum(m.statuses.map((s) => s.retries)),
      dropped: sum(m.statuses.map((s) => s.dropped)),
      reasons,
    },
    notes: '',
  };
  result.notes = explain(result, m);
  return result;
}

export const currentLoadAverage = (): number[] => loadavg();

/** What limited the run, and where the memory and CPU went, in words. */
function explain(r: ConnectionsResult, m: Measured): string {
  const notes: string[] = [];
  const held = r.metrics.connections_held;
  const perConnection = r.metrics.machine_bytes_per_connection;
  if (m.stopReason === 'memory') {
    notes.push(`Stopped at ${formatCount(held)} connections: MemAvailable fell under ${formatBytes(m.minAvailableBytes)}, the floor kept for PostgreSQL, NATS and the rest of the machine.`);
  } else if (m.stopReason === 'time') {
    notes.push(`Stopped at ${formatCount(held)} connections: the ramp ran out of time (BENCH_TIMEOUT_S).`);
  } else if (m.stopReason === 'interrupted') {
    notes.push(`Stopped at ${formatCount(held)} connections: interrupted during the ramp (measured at once, without the hold).`);
  } else if (m.stopReason === 'stalled') {
    notes.push(`Stopped at ${formatCount(held)} connections: no handshake completed or failed for a minute.`);
  } else if (held === m.requested) {
    const room = perConnection > 0 ? Math.max(0, Math.floor((m.full.memory.available - m.minAvailableBytes) / perConnection)) : 0;
    notes.push(
      `Held all ${formatCount(held)} requested connections, with ${formatBytes(m.full.memory.available)} still available ` +
        `(room for about ${formatCount(room)} more at ${formatBytes(perConnection)} each, not counting more processes' baselines).`,
    );
  } else {
    notes.push(`Held ${formatCount(held)} of the ${formatCount(m.requested)} connections requested.`);
  }
  if (r.failures.failed > 0 || r.failures.dropped > 0 || r.failures.retries > 0) {
    notes.push(
      `${formatCount(r.failures.retries)} handshakes were retried, ${formatCount(r.failures.failed)} devices failed after 3 tries, ` +
        `${formatCount(r.failures.dropped)} sockets closed after READY; reasons: ${JSON.stringify(r.failures.reasons)}.`,
    );
  }
  const cpu = r.ramp_cpu;
  const pct = (x: number | undefined) => `${Math.round((x ?? 0) * 100)}%`;
  const consumers = Object.entries(cpu)
    .filter(([name]) => name !== 'machine_busy')
    .sort(([, a], [, b]) => b - a)
    .map(([name, share]) => `${name} ${pct(share)}`);
  notes.push(
    `While devices connected, the ${r.machine.cores} cores were ${pct(cpu.machine_busy)} busy (${consumers.join(', ')})` +
      `${(cpu.machine_busy ?? 0) > 0.9 ? ': the connect rate is bound by CPU' : ''}.`,
  );
  const b = r.breakdown;
  notes.push(
    `Per connection: ${formatBytes(perConnection)} of machine memory = ${formatBytes(b.gateways)} gateway RSS + ${formatBytes(b.load_clients)} load-client RSS + ` +
      `${formatBytes(b.nats)} nats-server RSS + ${formatBytes(b.kernel_sockets)} kernel TCP sockets (both ends) + ${formatBytes(b.rest)} other ` +
      `(PostgreSQL, page tables, and whatever else ran on the machine meanwhile); ` +
      `a gateway machine without the load clients would pay about ${formatBytes(b.server_side)} (gateway + nats-server + its end of the socket). ` +
      `The processes' own baselines come on top: ${formatBytes(m.idle.gateways[0]?.rss ?? 0)} per gateway, ` +
      `${formatBytes(m.idle.clientRss / Math.max(m.statuses.length, 1))} per load client.`,
  );
  notes.push(`At full load: NATS round trip ${m.natsRttMs} ms, ${m.full.pgConnections} PostgreSQL client connections open.`);
  return notes.join(' ');
}

export function summary(r: ConnectionsResult): string {
  const cell = (text: string, width: number) => text.padStart(width);
  return [
    `connections bench, ${r.date}, ${r.machine.cores} cores, ${formatBytes(r.machine.memory)}`,
    `params: ${JSON.stringify(r.params)}`,
    '',
    '  connections   gateways RSS   machine used   gateway CPU s   connects/s',
    ...r.curve.map(
      (p) =>
        `  ${cell(formatCount(p.connections), 11)}   ${cell(formatBytes(p.gateway_rss_bytes), 12)}   ${cell(formatBytes(p.machine_used_bytes), 12)}` +
        `   ${cell(p.gateway_cpu_s.toFixed(1), 13)}   ${p.connects_per_second ? cell(formatCount(p.connects_per_second), 10) : ''}`,
    ),
    '',
    r.notes,
    '',
    `gateway RSS per connection:    ${formatCount(r.metrics.gateway_rss_bytes_per_connection)} B (median of ${r.gateways.length} gateway processes)`,
    `machine memory per connection: ${formatCount(r.metrics.machine_bytes_per_connection)} B (kernel and load clients included)`,
    `connects per second:           ${formatCount(r.metrics.connects_per_second)}`,
    `connections held:              ${formatCount(r.metrics.connections_held)}`,
  ].join('\n');
}
