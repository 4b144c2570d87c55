/** The public API of @mps/shared for the services (Node). Browser code imports '@mps/shared/protocol'. */
export * from './protocol/index.js';
export * from './subjects.js';
export * from './config.js';
export * from './log.js';
export * from './ids.js';
export * from './signing.js';
export * from './sealed.js';
export * from './db.js';
export * from './events.js';
export * from './nats.js';
export * from './messages.js';
export * from './schema.js';
export * from './app-keys.js';
export * from './master-key.js';
export * from './tokens.js';
export * from './condition.js';
export * from './broadcast.js';
