import { commonSpec, int, loadConfig, port, str } from '@mps/shared';

export const gatewaySpec = {
  ...commonSpec,
  GATEWAY_HOST: str({ default: '0.0.0.0', desc: 'the address devices connect to' }),
  GATEWAY_PORT: port({ default: 8081, desc: 'the WebSocket port (shared by all gateway processes of a machine)' }),
  GATEWAY_AUTH_TIMEOUT_MS: int({ min: 100, default: 5000, desc: 'ms a new socket has to send its auth or register frame' }),
  GATEWAY_IDLE_TIMEOUT_S: int({ min: 8, default: 120, desc: 'seconds without traffic before a socket is considered dead' }),
  GATEWAY_MAX_FRAME_BYTES: int({ min: 1024, default: 64 * 1024, desc: 'the largest frame a device may send, in bytes' }),
  GATEWAY_MAX_BUFFERED_BYTES: int({ min: 65536, default: 1024 * 1024, desc: 'unsent bytes queued for one socket before it is closed' }),
};

export type GatewayConfig = ReturnType<typeof loadGatewayConfig>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(gatewaySpec, env);
}
