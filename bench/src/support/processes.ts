/** The processes a bench starts: gateways and load clients, from the sources (tsx) or the build. */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ClientConfig, FromClient, ToClient } from '../loadgen/messages.js';
import { listenersOn } from './procfs.js';
import { sleep } from './util.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * `source`: TypeScript through tsx, as the tests run; `dist`: the tsc -b output, as `make run`
 * deploys (tsx's loader thread and esbuild service cost ~60 MB per process, which adds up over the
 * ~110 processes of a million-socket run).
 */
export type RunFrom = 'source' | 'dist';

const TSX = ['--conditions=source', '--import', 'tsx'];

/**
 * Loaded into each gateway: ends it when the bench that started it is gone (even killed with
 * SIGKILL), so that no gateway outlives its run.
 */
const EXIT_WITH_PARENT =
  'data:text/javascript,const p=process.ppid;setInterval(()=>{if(process.ppid!==p)process.exit(1)},1000).unref()';

export interface Child {
  process: ChildProcess;
  pid: number;
  output(): string;
}

function capture(child: ChildProcess): () => string {
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-8192);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

/** Makes the kernel's OOM killer pick bench processes before PostgreSQL or NATS, should memory run out. */
async function preferForOom(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/oom_score_adj`, '1000').catch((error: unknown) => {
    process.stderr.write(`warning: cannot set oom_score_adj of ${pid}: ${String(error)}\n`);
  });
}

async function startGateway(runFrom: RunFrom, env: Record<string, string>): Promise<Child> {
  const args =
    runFrom === 'source'
      ? [...TSX, '--import', EXIT_WITH_PARENT, 'gateway/src/main.ts']
      : ['--import', EXIT_WITH_PARENT, 'gateway/dist/main.js'];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('gateway process did not start');
  await preferForOom(child.pid);
  return { process: child, pid: child.pid, output: capture(child) };
}

export interface LoadClient extends Child {
  send(message: ToClient): void;
  /** Called with every message it sends. */
  onMessage(listener: (message: FromClient) => void): void;
}

async function startLoadClient(runFrom: RunFrom, config: ClientConfig): Promise<LoadClient> {
  const [script, execArgv] =
    runFrom === 'source'
      ? [fileURLToPath(new URL('../loadgen/client.ts', import.meta.url)), TSX]
      : [`${ROOT}bench/dist/loadgen/client.js`, []];
  const child = fork(script, [JSON.stringify(config)], { cwd: ROOT, execArgv, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  if (child.pid === undefined) throw new Error('load client process did not start');
  await preferForOom(child.pid);
  return {
    process: child,
    pid: child.pid,
    output: capture(child),
    send: (message) => {
      if (child.connected) child.send(message);
    },
    onMessage: (listener) => child.on('message', (message) => listener(message as FromClient)),
  };
}

/** Starts `count` gateways on one port and waits until each listens; `check` throws to give up. */
export async function startGateways(
  count: number,
  runFrom: RunFrom,
  env: Record<string, string>,
  add: (child: Child) => void,
  check: () => void,
): Promise<void> {
  const gateways: Child[] = [];
  for (let i = 0; i < count; i++) {
    const gateway = await startGateway(runFrom, env);
    gateways.push(gateway);
    add(gateway);
  }
  while ((await listenersOn(Number(env.GATEWAY_PORT))) < count) {
    const dead = gateways.find((g) => g.process.exitCode !== null);
    if (dead) throw new Error(`gateway ${dead.pid} exited:\n${dead.output()}`);
    check();
    await sleep(250);
  }
}

/** Starts a load client per config and waits until each says it is ready. */
export async function startLoadClients(runFrom: RunFrom, configs: ClientConfig[], add: (client: LoadClient) => void): Promise<void> {
  const ready: Promise<void>[] = [];
  for (const config of configs) {
    const client = await startLoadClient(runFrom, config);
    add(client);
    ready.push(
      new Promise<void>((resolve, reject) => {
        client.onMessage((message) => message.type === 'ready' && resolve());
        client.process.once('exit', () => reject(new Error(`load client ${client.pid} exited:\n${client.output()}`)));
      }),
    );
  }
  await Promise.all(ready);
}

/** Kills with SIGKILL (a gateway draining 19,000 sockets would only slow the end of the run) and waits. */
export async function kill(children: Child[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.process.exitCode !== null || child.process.signalCode !== null) return resolve();
          child.process.once('exit', () => resolve());
          child.process.kill('SIGKILL');
        }),
    ),
  );
}
