import { commonSpec, EVENT_MESSAGE_MAX_EVENTS, masterKeySpec, int, loadConfig, port, str } from '@mps/shared';

export const gatewaySpec = {
  ...commonSpec,
  GATEWAY_HOST: str({ default: '0.0.0.0', desc: 'the address devices connect to' }),
  GATEWAY_PORT: port({ default: 8081, desc: 'the WebSocket port (shared by all gateway processes of a machine)' }),
  GATEWAY_ADMIN_HOST: str({ default: '127.0.0.1', desc: 'the address of the admin endpoint (metrics, health); keep it away from devices' }),
  GATEWAY_ADMIN_PORT: int({ min: 0, default: 9091, desc: 'the admin port of this process (0: no admin endpoint); one per process' }),
  ...masterKeySpec,
  GATEWAY_AUTH_TIMEOUT_MS: int({ min: 100, default: 5000, desc: 'ms a new socket has to send its auth or register frame' }),
  GATEWAY_IDLE_TIMEOUT_S: int({ min: 8, max: 960, default: 120, desc: 'seconds without traffic before a socket is considered dead (8-960, a uWS bound)' }),
  GATEWAY_MAX_FRAME_BYTES: int({ min: 1024, default: 64 * 1024, desc: 'the largest frame a device may send, in bytes' }),
  GATEWAY_MAX_BUFFERED_BYTES: int({ min: 65536, default: 1024 * 1024, desc: 'unsent bytes queued for one socket before it is closed' }),
  GATEWAY_MAX_FRAMES_PER_S: int({ min: 1, default: 20, desc: 'frames per second a device may send (bursts of twice that)' }),
  GATEWAY_MAX_CONNECTIONS: int({
    min: 0,
    default: 0,
    desc: 'sockets this process holds at most; past it an upgrade gets 503 with Retry-After and the device tries again, reaching another process (0: its open-file limit less 200)',
  }),
  GATEWAY_MAX_CONNECTIONS_PER_IP: int({ min: 1, default: 10_000, desc: 'connections one IP address may hold on this process' }),
  GATEWAY_TOKEN_GRACE_MS: int({
    min: 0,
    default: 30_000,
    desc: 'a connection authenticated with a connect token is closed (4007 token_expired) this long after the token expires',
  }),
  GATEWAY_INBOX_CAP: int({
    min: 1,
    default: 1000,
    desc: 'pending messages a device gets on connecting; older ones are dropped and the device is told of them in a GAP frame',
  }),
  GATEWAY_TRACK_BATCH: int({
    min: 1,
    max: EVENT_MESSAGE_MAX_EVENTS,
    default: EVENT_MESSAGE_MAX_EVENTS,
    desc: 'tracking events (acks, reports) of one app and kind published as one JetStream message at most (1: each alone)',
  }),
  GATEWAY_TRACK_FLUSH_MS: int({
    min: 0,
    max: 1000,
    default: 5,
    desc: 'longest a tracking event waits for others before it is published (an ack reaches the delivery ledger this much later)',
  }),
  GATEWAY_DRAIN_WINDOW_MS: int({ min: 0, default: 10_000, desc: 'on SIGTERM, devices are told to reconnect at random times within this window' }),
};

export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(gatewaySpec, env);
}
