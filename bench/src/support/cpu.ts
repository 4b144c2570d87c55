/** Who used the machine's CPU while devices connected: the bench's processes and the services it drives. */
import { cpuByCommand, cpuSeconds, machineCpu } from './procfs.js';
import { sum } from './sampler.js';

/** Services measured by command name; `node` also counts node processes this bench did not start. */
const COMMANDS = ['postgres', 'pgbouncer', 'nats-server', 'node'] as const;

/** CPU seconds by consumer, and the machine's busy and total CPU seconds (all cores). */
export interface CpuUse {
  machineBusy: number;
  machineTotal: number;
  byConsumer: Record<string, number>;
}

export const noCpuUse = (): CpuUse => ({ machineBusy: 0, machineTotal: 0, byConsumer: {} });

export async function cpuUse(pids: { gateways: number[]; clients: number[] }): Promise<CpuUse> {
  const [machine, commands, gateways, clients] = await Promise.all([
    machineCpu(),
    cpuByCommand(COMMANDS),
    Promise.all(pids.gateways.map(cpuSeconds)),
    Promise.all(pids.clients.map(cpuSeconds)),
  ]);
  const own = sum(gateways) + sum(clients) + ownCpuSeconds();
  return {
    machineBusy: machine.busy,
    machineTotal: machine.total,
    byConsumer: {
      gateways: sum(gateways),
      load_clients: sum(clients),
      bench: ownCpuSeconds(),
      postgres: commands.get('postgres') ?? 0,
      pgbouncer: commands.get('pgbouncer') ?? 0,
      'nats-server': commands.get('nats-server') ?? 0,
      other_node_processes: (commands.get('node') ?? 0) - own,
    },
  };
}

function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

function combine(a: CpuUse, b: CpuUse, sign: 1 | -1): CpuUse {
  const byConsumer: Record<string, number> = { ...a.byConsumer };
  for (const [name, seconds] of Object.entries(b.byConsumer)) byConsumer[name] = (byConsumer[name] ?? 0) + sign * seconds;
  return { machineBusy: a.machineBusy + sign * b.machineBusy, machineTotal: a.machineTotal + sign * b.machineTotal, byConsumer };
}

export const addCpuUse = (a: CpuUse, b: CpuUse): CpuUse => combine(a, b, 1);
export const cpuUsedSince = (now: CpuUse, before: CpuUse): CpuUse => combine(now, before, -1);

/** Shares of the machine's CPU capacity: how busy it was, who kept it busy, and what no process accounts for. */
export function cpuShares(use: CpuUse): Record<string, number> {
  const share = (seconds: number) => (use.machineTotal > 0 ? Math.round((seconds / use.machineTotal) * 1000) / 1000 : 0);
  const shares: Record<string, number> = { machine_busy: share(use.machineBusy) };
  for (const [name, seconds] of Object.entries(use.byConsumer)) shares[name] = share(seconds);
  shares.kernel_and_other = share(use.machineBusy - sum(Object.values(use.byConsumer)));
  return shares;
}
