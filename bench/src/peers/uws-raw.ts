/**
 * The ceiling of the peers bench: a bare uWebSockets.js server that only publishes. Every socket on
 * /ws is subscribed to one topic; every frame of the batches a publisher sends on /publish (batch.ts)
 * is published to it (uWS fans it out in C++, coalescing what one event-loop turn publishes into one
 * write per socket). No auth, no NATS, no state. Measured here: publishing inside the /publish message
 * handler itself wrote each message out at once (about 200k deliveries/s at 18,000 sockets), while
 * publishing right after it, as the gateway does from its NATS callback, coalesced (1.2M/s at 6,000).
 * Run as a process: PORT in the environment; it says "listening".
 */
import uWS from 'uWebSockets.js';
import { unpackBatch } from './batch.js';

const TOPIC = 'all';
const port = Number(process.env.PORT);

const app = uWS
  .App()
  .ws('/ws', {
    idleTimeout: 960,
    maxBackpressure: 1024 * 1024,
    sendPingsAutomatically: true,
    open: (ws) => {
      ws.subscribe(TOPIC);
    },
  })
  .ws('/publish', {
    idleTimeout: 960,
    maxPayloadLength: 16 * 1024 * 1024,
    message: (_ws, data) => {
      // Published after the handler returns, from the event loop like our gateway's NATS callback:
      // inside a uWS message handler each publish is written out at once, uncoalesced.
      const batch = Buffer.from(new Uint8Array(data)); // a copy: uWS reuses `data` after the handler
      setImmediate(() => unpackBatch(batch, (frame) => app.publish(TOPIC, frame, true)));
    },
  })
  .listen('127.0.0.1', port, (socket) => {
    if (!socket) {
      process.stderr.write(`cannot listen on 127.0.0.1:${port}\n`);
      process.exit(1);
    }
    process.stdout.write('listening\n');
  });

// Ends with the bench that started it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
