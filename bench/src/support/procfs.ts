/** What the bench reads from /proc: a process's memory, CPU time and open files, and the machine's. */
import { execFileSync } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Clock ticks per second, the unit of utime and stime in /proc/PID/stat. */
const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100; // what every Linux x86-64 kernel uses; getconf is only missing on stripped images
  }
})();

/** Resident set size in bytes (VmRSS), or 0 when the process is gone. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return kb === undefined ? 0 : Number(kb) * 1024;
}

/** User plus system CPU time in seconds, or 0 when the process is gone. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / CLOCK_TICKS : 0;
}

export async function openFiles(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`).catch(() => [])).length;
}

export interface MachineMemory {
  total: number;
  available: number;
  /** MemTotal - MemAvailable: what processes and the kernel hold that cannot simply be dropped. */
  used: number;
}

export async function machineMemory(): Promise<MachineMemory> {
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? NaN) * 1024;
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  return { total, available, used: total - available };
}

/** TCP sockets the kernel holds (both ends of a loopback connection count). */
export async function tcpSocketsInUse(): Promise<number> {
  const sockstat = await readFile('/proc/net/sockstat', 'utf8');
  return Number(/^TCP: inuse (\d+)/m.exec(sockstat)?.[1] ?? 0);
}

/** Sockets listening on 127.0.0.1/0.0.0.0 `port` (one per gateway process sharing it with SO_REUSEPORT). */
export async function listenersOn(port: number): Promise<number> {
  const tcp = await readFile('/proc/net/tcp', 'utf8');
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let count = 0;
  for (const line of tcp.split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state === '0A' && local?.endsWith(`:${hexPort}`)) count++;
  }
  return count;
}

/** Busy and total CPU seconds of all cores since boot (/proc/stat), to tell how busy the machine was. */
export async function machineCpu(): Promise<{ busy: number; total: number }> {
  const stat = await readFile('/proc/stat', 'utf8');
  const [, ...values] = (stat.split('\n')[0] ?? '').trim().split(/\s+/);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = values.map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / CLOCK_TICKS, total: (busy + idle + iowait) / CLOCK_TICKS };
}

/** The share of the machine's CPU (all cores) busy between two readings of machineCpu(). */
export const busyShare = (before: { busy: number; total: number }, after: { busy: number; total: number }): number =>
  (after.busy - before.busy) / Math.max(1e-9, after.total - before.total);

/** CPU seconds of every process whose command name is one of `names`, summed per name. */
export async function cpuByCommand(names: readonly string[]): Promise<Map<string, number>> {
  const totals = new Map(names.map((name) => [name, 0]));
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = (await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')).trim();
    if (totals.has(comm)) totals.set(comm, (totals.get(comm) ?? 0) + (await cpuSeconds(Number(entry))));
  }
  return totals;
}

/** The process named `command` that listens on `port` (e.g. the nats-server at NATS_URL), if any. */
export async function pidListeningOn(port: number, command: string): Promise<number | undefined> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] === '0A' && fields[1]?.endsWith(`:${hexPort}`) && fields[9]) inodes.add(`socket:[${fields[9]}]`);
    }
  }
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = (await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '')).trim();
    if (comm !== command) continue;
    for (const fd of await readdir(`/proc/${entry}/fd`).catch(() => [])) {
      if (inodes.has(await readlink(`/proc/${entry}/fd/${fd}`).catch(() => ''))) return Number(entry);
    }
  }
  return undefined;
}

/** Slab caches that grow by one object per TCP socket (struct tcp_sock, its inode, its struct file). */
const SOCKET_SLABS = ['TCP', 'sock_inode_cache', 'filp'];

/**
 * Kernel memory held for TCP sockets: their slab objects plus their buffers (/proc/net/sockstat
 * "mem", in pages). Unlike MemAvailable it does not move with whatever else runs on the machine.
 */
export async function kernelSocketBytes(): Promise<number> {
  const [slabinfo, sockstat] = await Promise.all([readFile('/proc/slabinfo', 'utf8').catch(() => ''), readFile('/proc/net/sockstat', 'utf8')]);
  let bytes = 0;
  for (const line of slabinfo.split('\n')) {
    const [name, active, , size] = line.split(/\s+/);
    if (name && SOCKET_SLABS.includes(name)) bytes += Number(active) * Number(size);
  }
  const pages = Number(/^TCP: .* mem (\d+)/m.exec(sockstat)?.[1] ?? 0);
  return bytes + pages * 4096;
}
