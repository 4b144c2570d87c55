/** The gateway's Prometheus metrics, and the admin endpoint that serves them (never exposed to devices). */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mps_gateway_' });
  const metrics = {
    registry,
    connections: new Gauge({ name: 'mps_gateway_connections', help: 'open device sockets', registers: [registry] }),
    subjects: new Gauge({ name: 'mps_gateway_subjects', help: 'NATS subjects this node is subscribed to for its devices', registers: [registry] }),
    framesIn: new Counter({ name: 'mps_gateway_frames_in_total', help: 'frames received from devices', labelNames: ['type'], registers: [registry] }),
    framesOut: new Counter({ name: 'mps_gateway_frames_out_total', help: 'frames sent to devices', registers: [registry] }),
    bytesIn: new Counter({ name: 'mps_gateway_bytes_in_total', help: 'bytes received from devices', registers: [registry] }),
    bytesOut: new Counter({ name: 'mps_gateway_bytes_out_total', help: 'bytes sent to devices', registers: [registry] }),
    acks: new Counter({ name: 'mps_gateway_acks_total', help: 'message ids acked by devices', registers: [registry] }),
    drops: new Counter({ name: 'mps_gateway_drops_total', help: 'frames not sent to a socket over its backpressure limit (they stay pending)', registers: [registry] }),
    closes: new Counter({ name: 'mps_gateway_closes_total', help: 'sockets closed by the gateway, by reason', labelNames: ['reason'], registers: [registry] }),
    natsEvents: new Counter({ name: 'mps_gateway_nats_events_total', help: 'NATS connection events (slow consumer, disconnect, reconnect)', labelNames: ['type'], registers: [registry] }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** GET /metrics (Prometheus), /healthz (the process runs), /readyz (it accepts devices). */
export function serveAdmin(metrics: Metrics, ready: () => boolean, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metrics.registry
        .metrics()
        .then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text))
        .catch((error: unknown) => res.writeHead(500).end(String(error)));
      return;
    }
    if (req.url === '/healthz') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    if (req.url === '/readyz') {
      const ok = ready();
      return void res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready: ok }));
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_FOUND","message":"no such admin route"}}');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
