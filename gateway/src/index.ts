/** The gateway as a library: main.ts wires it to real dependencies. */
export { createGateway, type Gateway, type GatewayDeps } from './gateway.js';
export { loadGatewayConfig, gatewaySpec, type GatewayConfig } from './config.js';
export { createMetrics, serveAdmin, type Metrics } from './metrics.js';
export { Hub, type Deliverer } from './hub.js';
