/**
 * A PgBouncer in transaction mode between the gateways and PostgreSQL. Each gateway process keeps a
 * pool of up to 10 server connections; the ~55 processes that hold a million sockets (20,000 open
 * files each) would ask for ~550, more than a default server allows (max_connections 100). PgBouncer
 * multiplexes them onto a few, as a deployment of that size would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_PGBOUNCER = '/usr/sbin/pgbouncer';

export interface PgBouncer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export function pgBouncerAvailable(path: string): boolean {
  return existsSync(path);
}

export async function startPgBouncer(options: {
  path: string;
  serverUrl: string;
  database: string;
  port: number;
  /** Server connections to PostgreSQL, at most. */
  serverConnections: number;
  maxClients: number;
}): Promise<PgBouncer> {
  const server = new URL(options.serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const dir = await mkdtemp(join(tmpdir(), 'mps-bench-pgbouncer-'));
  // PgBouncer refuses to run as root; it switches to `user` and must still read its files.
  await chmod(dir, 0o755);
  const password = server.password ? ` password=${decodeURIComponent(server.password)}` : '';
  await writeFile(join(dir, 'userlist.txt'), `"${user}" ""\n`, { mode: 0o644 });
  await writeFile(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${options.database} = host=${server.hostname} port=${server.port || 5432} dbname=${options.database} user=${user}${password}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${options.port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${options.serverConnections}`,
      `max_db_connections = ${options.serverConnections}`,
      `max_client_conn = ${options.maxClients}`,
      'ignore_startup_parameters = extra_float_digits,options',
      'log_connections = 0',
      'log_disconnections = 0',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = [join(dir, 'pgbouncer.ini')];
  if (process.getuid?.() === 0) args.unshift('-u', user);
  const child: ChildProcess = spawn(options.path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 10_000;
    const check = () => {
      if (child.exitCode !== null) return reject(new Error(`pgbouncer exited:\n${output}`));
      if (output.includes('process up')) return resolve();
      if (Date.now() > deadline) return reject(new Error(`pgbouncer did not start:\n${output}`));
      setTimeout(check, 50);
    };
    check();
  });
  return {
    url: `postgres://${encodeURIComponent(user)}@127.0.0.1:${options.port}/${options.database}`,
    pid: child.pid ?? 0,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
