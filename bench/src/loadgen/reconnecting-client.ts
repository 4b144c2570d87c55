/**
 * A load-client process of reconnecting bench devices (reconnecting-devices.ts): up to ~19,000 of
 * them (a process here may have 20,000 open files). Its config comes as the first argument; the
 * driver's requests come over IPC and each gets a reply with the same `seq`.
 */
import type { FromReconnecting, ReconnectingConfig, ReconnectingRequest } from './reconnecting-messages.js';
import { ReconnectingDevices } from './reconnecting-devices.js';

const send = (message: FromReconnecting) => process.send?.(message);

const config = JSON.parse(process.argv[2] ?? '{}') as ReconnectingConfig;
const devices = new ReconnectingDevices(config);

function answer(request: ReconnectingRequest): unknown {
  switch (request.op) {
    case 'connect':
      return devices.connect();
    case 'status':
      return devices.status();
    case 'mark':
      return devices.mark();
    case 'episode':
      return devices.episode();
    case 'received':
      return devices.receivedCounts(request.ids);
    case 'stop':
      return devices.stop();
  }
}

process.on('message', (request: ReconnectingRequest) => send({ type: 'reply', seq: request.seq, body: answer(request) ?? null }));
// The driver is gone (finished or killed): so are these devices.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
