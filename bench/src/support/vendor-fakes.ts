/**
 * The four vendor fakes of the test tree in a process of their own (so that they do not share the
 * bench client's event loop): prints one JSON line with the endpoints and the credentials that
 * reach them, and answers "count" lines with how many notifications each fake accepted.
 * Stops when its stdin closes.
 */
import { createInterface } from 'node:readline';
import { startFakes } from '../../../test/support/vendors.js';

const fakes = await startFakes();
const counts = () => ({
  apns: fakes.apns.received.length,
  fcm: fakes.fcm.received.length,
  huawei: fakes.huawei.received.length,
  xiaomi: fakes.xiaomi.received.length,
});
process.stdout.write(`${JSON.stringify({ endpoints: fakes.endpoints, configs: fakes.configs })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'count') process.stdout.write(`${JSON.stringify(counts())}\n`);
});
lines.on('close', () => {
  void fakes.close().then(() => process.exit(0));
});
