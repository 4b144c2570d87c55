/**
 * A receiver process of the fan-out benches (fanout, latency, peers): holds up to ~19,000 sockets (a
 * process here may have 20,000 open files) and reports what they received. Its config comes as the
 * first argument; targets come over IPC.
 */
import type { FromReceiver, ReceiverConfig, ReceiverStatus, ToReceiver } from './receiver-messages.js';
import { Receivers } from './receivers.js';
import { wallClockMs } from './stamp.js';

const REPORT_MS = 250;

function send(message: FromReceiver): void {
  process.send?.(message);
}

const config = JSON.parse(process.argv[2] ?? '{}') as ReceiverConfig;
const report = (status: ReceiverStatus) => send({ type: 'status', ...status, at: wallClockMs() });
const receivers = new Receivers(config, report);

process.on('message', (message: ToReceiver) => {
  if (message.type === 'target') receivers.setTarget(message.connections);
  else if (message.type === 'stop') receivers.stop();
  else report(receivers.status);
});
// The bench is gone (finished or killed): so are these sockets.
process.on('disconnect', () => process.exit(0));
setInterval(() => {
  const samples = receivers.takeStamps();
  if (samples.length > 0) send({ type: 'stamps', samples });
  report(receivers.status);
}, REPORT_MS);
send({ type: 'ready' });
