/** One measurement of the bench's processes and of the machine, taken after each ramp step. */
import { cpuSeconds, kernelSocketBytes, machineMemory, openFiles, rssBytes, tcpSocketsInUse, type MachineMemory } from './procfs.js';

export interface ProcessSample {
  rss: number;
  cpu: number;
  openFiles: number;
}

export interface Sample {
  /** ms since the run started */
  at: number;
  held: number;
  gateways: ProcessSample[];
  clientRss: number;
  clientCpu: number;
  natsRss: number;
  memory: MachineMemory;
  tcpSockets: number;
  kernelSocketBytes: number;
  pgConnections: number;
}

export interface SampleSources {
  started: number;
  gatewayPids: number[];
  clientPids: number[];
  natsPid: number | undefined;
  held(): number;
  pgConnections(): Promise<number>;
}

async function processSample(pid: number): Promise<ProcessSample> {
  const [rss, cpu, files] = await Promise.all([rssBytes(pid), cpuSeconds(pid), openFiles(pid)]);
  return { rss, cpu, openFiles: files };
}

export async function takeSample(sources: SampleSources): Promise<Sample> {
  const [gateways, clients, natsRss, memory, tcpSockets, kernelSockets, pgConnections] = await Promise.all([
    Promise.all(sources.gatewayPids.map(processSample)),
    Promise.all(sources.clientPids.map(async (pid) => ({ rss: await rssBytes(pid), cpu: await cpuSeconds(pid) }))),
    sources.natsPid === undefined ? 0 : rssBytes(sources.natsPid),
    machineMemory(),
    tcpSocketsInUse(),
    kernelSocketBytes(),
    sources.pgConnections(),
  ]);
  return {
    at: Date.now() - sources.started,
    held: sources.held(),
    gateways,
    clientRss: clients.reduce((sum, c) => sum + c.rss, 0),
    clientCpu: clients.reduce((sum, c) => sum + c.cpu, 0),
    natsRss,
    memory,
    tcpSockets,
    kernelSocketBytes: kernelSockets,
    pgConnections,
  };
}

export const sum = (values: number[]): number => values.reduce((total, value) => total + value, 0);

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
