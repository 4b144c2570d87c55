/**
 * A load-client process of the connections bench: holds up to ~19,000 device sockets (a process here
 * may have 20,000 open files). Its config comes as the first argument; targets come over IPC, and it
 * reports its status every half second and whenever it settles on a target.
 */
import { DeviceSockets } from './device-sockets.js';
import type { ClientConfig, ClientStatus, FromClient, ToClient } from './messages.js';

const REPORT_MS = 500;

function send(message: FromClient): void {
  process.send?.(message);
}

// Written by connections.ts, which forked this process.
const config = JSON.parse(process.argv[2] ?? '{}') as ClientConfig;
const report = (status: ClientStatus) => send({ type: 'status', ...status });
const sockets = new DeviceSockets(config, report);

process.on('message', (message: ToClient) => {
  if (message.type === 'target') sockets.setTarget(message.connections);
  else sockets.stop();
});
// The bench is gone (finished or killed): so are its sockets.
process.on('disconnect', () => process.exit(0));
setInterval(() => report(sockets.status), REPORT_MS);
send({ type: 'ready' });
