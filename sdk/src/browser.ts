/** @mps/sdk in browsers: the device client on the global WebSocket. */
export * from './device/client.js';
export { DeviceClientError } from './device/errors.js';
export { WebStorageCredentialStore, type WebStorage } from './device/web-store.js';
export type { MessageFrame, Platform, PushType } from '@mps/shared/protocol';
