/** The control plane as a library: main.ts wires it to real dependencies. */
export { buildApp, type AppDeps } from './app.js';
export { loadControlPlaneConfig, controlPlaneSpec, type ControlPlaneConfig } from './config.js';
export { KeyStore, type CreatedApp } from './keys.js';
export { NonceGuard } from './nonces.js';
export { startLedger } from './ledger.js';
export { ErrorCode, ApiError } from './errors.js';
export { startReceipts, type ReceiptBatch, type Receipt } from './receipts.js';
export { startExpirySweep } from './expiry.js';
