/**
 * The plain Node peer of the peers bench: the `ws` package doing the uWS.js ceiling's job. Every
 * socket on /ws joins the broadcast list; every frame of the batches a publisher sends on /publish
 * (batch.ts) goes to each of them with ws.send (a write per message per socket, as a typical Node
 * server does). Run as
 * a process: PORT in the environment; it says "listening".
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { unpackBatch } from './batch.js';

const port = Number(process.env.PORT);
const subscribers = new Set<WebSocket>();

const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false, backlog: 4096 });
server.on('connection', (ws, request) => {
  if (request.url === '/publish') {
    ws.on('message', (data: Buffer) => {
      unpackBatch(data, (frame) => {
        for (const subscriber of subscribers) subscriber.send(frame, { binary: true });
      });
    });
    return;
  }
  subscribers.add(ws);
  ws.on('close', () => subscribers.delete(ws));
  ws.on('error', () => ws.terminate());
});
server.on('listening', () => process.stdout.write('listening\n'));
server.on('error', (error) => {
  process.stderr.write(`ws server: ${error.message}\n`);
  process.exit(1);
});

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
